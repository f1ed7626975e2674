package queue_test

import (
	"context"
	"testing"
	"time"

	"github.com/coursedl/worker/internal/queue"
	"github.com/coursedl/worker/internal/rdb"
	"github.com/coursedl/worker/internal/testutil"
)

// TestRestoreAfterFlush: the locks of running tasks come back after Redis lost
// them, with their own tokens, so that their renewals go on and no other worker
// takes them; a released lock does not come back.
func TestRestoreAfterFlush(t *testing.T) {
	ctx := context.Background()
	rc := testutil.Redis(t)
	locks := queue.NewLocks(queue.LocksParams{Redis: rdb.New(rc, rdb.Options{Queue: "q", Worker: "w1"}), TTL: 3 * time.Second})
	held, err := locks.Acquire(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	done, err := locks.Acquire(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := done.Release(ctx); err != nil {
		t.Fatal(err)
	}
	want := rc.Get(ctx, rdb.LockKey(1)).Val()
	rc.FlushDB(ctx)
	if n, err := locks.Restore(ctx); err != nil || n != 1 {
		t.Fatalf("restored %d, %v", n, err)
	}
	if got := rc.Get(ctx, rdb.LockKey(1)).Val(); got != want {
		t.Fatalf("lock of task 1 %q, want %q", got, want)
	}
	if n := rc.Exists(ctx, rdb.LockKey(2)).Val(); n != 0 {
		t.Fatal("a released lock came back")
	}
	other, err := queue.NewLocks(queue.LocksParams{Redis: rdb.New(rc, rdb.Options{Queue: "q", Worker: "w2"})}).Acquire(ctx, 1)
	if err == nil {
		_ = other.Release(ctx)
		t.Fatal("another worker took the restored lock")
	}
	// The renewal (every TTL/3) finds its own token: the task is not stopped.
	select {
	case <-held.Lost():
		t.Fatal("lock reported lost after the restore")
	case <-time.After(1500 * time.Millisecond):
	}
	if err := held.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if n, err := locks.Restore(ctx); err != nil || n != 0 {
		t.Fatalf("restored %d after release, %v", n, err)
	}
}
