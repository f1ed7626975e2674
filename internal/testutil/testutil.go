// Package testutil gives integration tests the project's real services: a Redis
// database and a MariaDB schema of their own, started by scripts/services.sh. It
// holds the testing.TB side only; package testsvc finds and hands out the
// services, for programs that are not tests too.
//
// Nothing here skips: a test that needs Redis or MariaDB fails with the command that
// starts them when they cannot be reached.
package testutil

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/redis/go-redis/v9"

	"github.com/coursedl/worker/internal/testsvc"
)

// RedisAddr is the address of the test Redis (testsvc.RedisAddr).
func RedisAddr() string { return testsvc.RedisAddr() }

// MySQLDSN is the server DSN (no database) of the test MariaDB (testsvc.MySQLDSN).
func MySQLDSN() string { return testsvc.MySQLDSN() }

// Redis returns a client on a Redis database (1-15) that no other running test holds,
// emptied first. The database is released when the test ends.
func Redis(t testing.TB) *redis.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, release, err := testsvc.OpenRedis(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(release)
	return c
}

// RedisDB is the database number a client from Redis uses.
func RedisDB(c *redis.Client) int { return c.Options().DB }

// MySQL creates a database of its own holding the contract schema and returns a
// handle on it with its DSN. Task ids start at a random offset so that tests running
// at once in several packages never share one (progress events on Redis are global).
// The database is dropped when the test ends.
func MySQL(t testing.TB) (*sqlx.DB, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, dsn, drop, err := testsvc.OpenMySQL(ctx, filepath.Join(Root(t), "deploy", "schema.sql"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(drop)
	return db, dsn
}

// Root is the repository's top folder (the one holding go.mod).
func Root(t testing.TB) string {
	t.Helper()
	dir, err := testsvc.Root()
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// Eventually polls cond every 20 ms until it holds or timeout passes, then fails the
// test with msg.
func Eventually(t testing.TB, timeout time.Duration, cond func() bool, msg string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: "+msg, append([]any{timeout}, args...)...)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Consistently fails the test when cond does not hold at any of its checks
// during d: what must not happen (a job taken while intake is closed) within a
// time the code would have done it in.
func Consistently(t testing.TB, d time.Duration, cond func() bool, msg string, args ...any) {
	t.Helper()
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if !cond() {
			t.Fatalf("within %s: "+msg, append([]any{d}, args...)...)
		}
	}
}
