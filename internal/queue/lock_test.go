package queue

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/coursedl/worker/internal/rdb"
	"github.com/coursedl/worker/internal/testutil"
)

// A lock of this worker that no task of the process holds (its release failed
// while Redis was away) is taken over at once; one held by a running task of
// the process, or by another worker, is not.
func TestLockLeftoverOfThisWorkerIsTakenOver(t *testing.T) {
	ctx := context.Background()
	rc := testutil.Redis(t)
	locks := NewLocks(LocksParams{Redis: rdb.New(rc, rdb.Options{Queue: "q", Worker: "w1"}), Log: zaptest.NewLogger(t)})
	lk, err := locks.Acquire(ctx, 7)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := locks.Acquire(ctx, 7); !errors.Is(err, ErrLocked) {
		t.Fatalf("lock held by a running task of this process taken again: %v", err)
	}
	// The release does not reach Redis: the key stays.
	gone, cancel := context.WithCancel(ctx)
	cancel()
	if err := lk.Release(gone); err == nil {
		t.Fatal("release with a canceled context succeeded")
	}
	if rc.Exists(ctx, rdb.LockKey(7)).Val() != 1 {
		t.Fatal("the leftover lock is not there")
	}
	again, err := locks.Acquire(ctx, 7)
	if err != nil {
		t.Fatalf("leftover lock of this worker not taken over: %v", err)
	}
	if ttl := rc.PTTL(ctx, rdb.LockKey(7)).Val(); ttl <= 0 || ttl > DefaultLockTTL {
		t.Fatalf("taken-over lock has TTL %s", ttl)
	}
	if err := again.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if rc.Exists(ctx, rdb.LockKey(7)).Val() != 0 {
		t.Fatal("taken-over lock not released")
	}
	// Another worker's lock, and a lock of w10 for w1, are left alone.
	for _, v := range []string{"w2/abc", "w10/abc"} {
		rc.Set(ctx, rdb.LockKey(8), v, time.Minute)
		if _, err := locks.Acquire(ctx, 8); !errors.Is(err, ErrLocked) {
			t.Fatalf("lock %q of another worker taken: %v", v, err)
		}
		if got := rc.Get(ctx, rdb.LockKey(8)).Val(); got != v {
			t.Fatalf("lock of another worker changed to %q", got)
		}
	}
}
