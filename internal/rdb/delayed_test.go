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
	before := rc.Time(ctx).Val()
	if err := r.Delay(ctx, p, 500*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	after := rc.Time(ctx).Val()
	if rc.LLen(ctx, rdb.ProcessingKey("w1")).Val() != 0 || rc.ZCard(ctx, rdb.DelayedKey).Val() != 1 {
		t.Fatal("delay did not move the job")
	}
	// Due on Redis's clock: TIME when delayed, plus the delay.
	if at := int64(rc.ZScore(ctx, rdb.DelayedKey, p).Val()); at < before.Add(500*time.Millisecond).UnixMilli() ||
		at > after.Add(500*time.Millisecond).UnixMilli() {
		t.Fatalf("due at %d, want Redis's time plus 500 ms", at)
	}
	n, next, err := r.PromoteDue(ctx)
	if err != nil || n != 0 {
		t.Fatalf("promoted %d before due, %v", n, err)
	}
	if next <= 0 || next > 500*time.Millisecond {
		t.Fatalf("next due in %v, want within 500 ms", next)
	}
	testutil.Eventually(t, 3*time.Second, func() bool { n, _, _ := r.PromoteDue(ctx); return n == 1 }, "promoted when due")
	if _, next, _ := r.PromoteDue(ctx); next != 0 {
		t.Fatalf("next due in %v with nothing delayed, want 0", next)
	}
	if p, _ := r.Fetch(ctx, time.Second); p != "job" {
		t.Fatalf("next = %q, want the retried job first", p)
	}
}

// A job no longer in the processing list (a recoverer gave it back while its
// worker could not reach Redis) is not delayed: it would be in two places.
func TestDelayOfAJobNoLongerInHand(t *testing.T) {
	ctx := context.Background()
	rc := testutil.Redis(t)
	r := rdb.New(rc, rdb.Options{Queue: "q", Worker: "w1"})
	rc.LPush(ctx, "q", "job")
	p, _ := r.Fetch(ctx, time.Second)
	if _, err := rdb.New(rc, rdb.Options{Queue: "q", Worker: "w2"}).RecoverWorker(ctx, "w1", time.Second); err != nil {
		t.Fatal(err)
	}
	if err := r.Delay(ctx, p, time.Second); err != nil {
		t.Fatal(err)
	}
	if n := rc.ZCard(ctx, rdb.DelayedKey).Val(); n != 0 {
		t.Fatalf("%d jobs delayed, want none: the job is back in the queue", n)
	}
	if l := rc.LRange(ctx, "q", 0, -1).Val(); len(l) != 1 || l[0] != "job" {
		t.Fatalf("queue %v", l)
	}
}
