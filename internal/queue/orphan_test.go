package queue

import (
	"context"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/coursedl/worker/internal/rdb"
	"github.com/coursedl/worker/internal/testutil"
)

// A job in the processing list that the consumer was never handed (Redis ran
// the BLMOVE and stopped before answering) goes back to the queue and runs; a
// job the consumer holds, however long its task, stays where it is.
func TestConsumerReclaimsJobsItWasNeverHanded(t *testing.T) {
	ctx := context.Background()
	rc := testutil.Redis(t)
	r := rdb.New(rc, rdb.Options{Queue: "q", Worker: "w1"})
	rc.LPush(ctx, rdb.ProcessingKey("w1"), "orphan") // as a lost BLMOVE reply leaves it
	rc.LPush(ctx, "q", "slow")
	release := make(chan struct{})
	started := make(chan struct{})
	var mu sync.Mutex
	var handled []string
	var reclaimed []string
	c := NewConsumer(ConsumerParams{Redis: r, Concurrency: 2, OrphanCheck: 50 * time.Millisecond, Log: zaptest.NewLogger(t),
		OnReclaimed: func(p string) { mu.Lock(); reclaimed = append(reclaimed, p); mu.Unlock() },
		Handler: handlerFunc(func(_ context.Context, p string) Result {
			mu.Lock()
			handled = append(handled, p)
			mu.Unlock()
			if p == "slow" {
				close(started)
				<-release
			}
			return Result{Outcome: Ack}
		})})
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- c.Run(rctx) }()
	<-started
	testutil.Eventually(t, 5*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(handled) == 2
	}, "the orphan was not given back and run")
	// Six orphan checks pass while "slow" runs: none gives it back.
	testutil.Consistently(t, 300*time.Millisecond, func() bool {
		l := rc.LRange(ctx, rdb.ProcessingKey("w1"), 0, -1).Val()
		return len(l) == 1 && l[0] == "slow" && rc.LLen(ctx, "q").Val() == 0
	}, "the processing list is not [slow] or the queue is not empty: a held job was given back")
	close(release)
	testutil.Eventually(t, 5*time.Second, func() bool { return rc.LLen(ctx, rdb.ProcessingKey("w1")).Val() == 0 }, "jobs not acknowledged")
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(reclaimed) != 1 || reclaimed[0] != "orphan" || handled[1] != "orphan" {
		t.Errorf("reclaimed %q, handled %q; want the orphan reclaimed once and run", reclaimed, handled)
	}
}

func TestHeldExtra(t *testing.T) {
	var h held
	h.add("a")
	h.add("b")
	h.add("b")
	h.remove("a")
	got := h.extra([]string{"a", "b", "b", "b", "c"})
	want := map[string]int{"a": 1, "b": 1, "c": 1}
	if len(got) != len(want) {
		t.Fatalf("extra = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("extra = %v, want %v", got, want)
		}
	}
}
