package rdb_test

import (
	"context"
	"testing"
	"time"

	"github.com/coursedl/worker/internal/rdb"
	"github.com/coursedl/worker/internal/testutil"
)

func TestFreeLocksOfDeadOwner(t *testing.T) {
	ctx := context.Background()
	rc := testutil.Redis(t)
	dead := rdb.New(rc, rdb.Options{Queue: "q", Worker: "w1"})
	other := rdb.New(rc, rdb.Options{Queue: "q", Worker: "w10"})
	acquire := func(r *rdb.Client, taskID int64) bool {
		t.Helper()
		ok, err := r.AcquireLock(ctx, taskID, r.LockToken("x"), time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !acquire(dead, 1) || !acquire(other, 2) {
		t.Fatal("locks not taken")
	}
	n, err := rdb.New(rc, rdb.Options{Queue: "q", Worker: "me"}).FreeLocks(ctx, "w1")
	if err != nil || n != 1 {
		t.Fatalf("freed %d, %v", n, err)
	}
	if !acquire(other, 1) {
		t.Fatal("lock of the dead owner still held")
	}
	if acquire(dead, 2) {
		t.Fatal("another owner's lock freed or taken (w1 is a prefix of w10)")
	}
	if v := rc.Get(ctx, rdb.LockKey(2)).Val(); v != "w10/x" {
		t.Fatalf("lock of w10 now %q", v)
	}
}

// Locks lists the tasks running: each lock's owner and, from a token made with
// LockSuffix, since when it is held.
func TestLocksListsRunningTasks(t *testing.T) {
	ctx := context.Background()
	rc := testutil.Redis(t)
	w := rdb.New(rc, rdb.Options{Queue: "q", Worker: "host/a"})
	since := time.Date(2026, 11, 28, 20, 0, 0, 0, time.UTC)
	if ok, err := w.AcquireLock(ctx, 7, w.LockToken(rdb.LockSuffix("r1", since)), time.Minute); err != nil || !ok {
		t.Fatalf("lock 7: %v %v", ok, err)
	}
	if ok, err := w.AcquireLock(ctx, 3, w.LockToken("old"), time.Minute); err != nil || !ok {
		t.Fatalf("lock 3: %v %v", ok, err)
	}
	locks, err := rdb.New(rc, rdb.Options{Queue: "q"}).Locks(ctx)
	if err != nil || len(locks) != 2 {
		t.Fatalf("Locks = %+v, %v", locks, err)
	}
	if l := locks[0]; l.TaskID != 3 || l.Worker != "host/a" || !l.Since.IsZero() || l.TTL <= 0 {
		t.Errorf("lock of task 3 (token without a time): %+v", l)
	}
	if l := locks[1]; l.TaskID != 7 || l.Worker != "host/a" || !l.Since.Equal(since) {
		t.Errorf("lock of task 7: %+v", l)
	}
}
