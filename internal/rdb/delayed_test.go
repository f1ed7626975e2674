package rdb_test

import (
	"context"
	"testing"
	"time"

	"github.com/coursedl/worker/internal/rdb"
	"github.com/coursedl/worker/internal/testutil"
)

func TestDelayAndPromoteDue(t *testing.T) {
	ctx := context.Background()
	rc := testutil.Redis(t)
	r := rdb.New(rc, rdb.Options{Queue: "q", Worker: "w1"})
	rc.LPush(ctx, "q", "job", "next")
	p, _ := r.Fetch(ctx, time.Second)
	due := time.Now().Add(200 * time.Millisecond)
	if err := r.Delay(ctx, p, due); err != nil {
		t.Fatal(err)
	}
	if rc.LLen(ctx, rdb.ProcessingKey("w1")).Val() != 0 || rc.ZCard(ctx, rdb.DelayedKey).Val() != 1 {
		t.Fatal("delay did not move the job")
	}
	n, next, err := r.PromoteDue(ctx, time.Now())
	if err != nil || n != 0 {
		t.Fatalf("promoted %d before due, %v", n, err)
	}
	if !next.Equal(time.UnixMilli(due.UnixMilli())) {
		t.Fatalf("next due %v, want %v", next, due)
	}
	testutil.Eventually(t, 3*time.Second, func() bool { n, _, _ := r.PromoteDue(ctx, time.Now()); return n == 1 }, "promoted when due")
	if p, _ := r.Fetch(ctx, time.Second); p != "job" {
		t.Fatalf("next = %q, want the retried job first", p)
	}
}
