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
