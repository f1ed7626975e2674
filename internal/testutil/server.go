package testutil

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/coursedl/worker/internal/testsvc"
)

// RedisServer starts a redis-server of the test's own (testsvc.StartRedis)
// with the extra arguments, stopped when the test ends, and returns it with a
// client on it.
func RedisServer(t testing.TB, extra ...string) (*testsvc.RedisServer, *redis.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := testsvc.StartRedis(ctx, t.TempDir(), extra...)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(&redis.Options{Addr: s.Addr})
	t.Cleanup(func() {
		_ = c.Close()
		if err := s.Stop(); err != nil {
			t.Errorf("stop redis-server %s: %v", s.Addr, err)
		}
	})
	return s, c
}
