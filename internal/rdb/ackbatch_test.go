package rdb_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/coursedl/worker/internal/rdb"
	"github.com/coursedl/worker/internal/testutil"
)

// pipelineHook sees every pipeline and transaction of a client that holds an
// LMOVE: it reports how many on entered, waits until release is closed, then
// runs it, or fails it with fail when that is set.
type pipelineHook struct {
	entered chan int
	release chan struct{}
	fail    error
}

func (h *pipelineHook) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (h *pipelineHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (h *pipelineHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		n := 0
		for _, c := range cmds {
			if c.Name() == "lmove" {
				n++
			}
		}
		if n == 0 { // a new connection's SELECT, say
			return next(ctx, cmds)
		}
		h.entered <- n
		<-h.release
		if h.fail != nil {
			return h.fail
		}
		return next(ctx, cmds)
	}
}

// Calls made while a batch is on its way go together in the next one, each
// with its own ack and its own next job.
func TestAckFetchGathersCalls(t *testing.T) {
	ctx := context.Background()
	rc := testutil.Redis(t)
	hook := &pipelineHook{entered: make(chan int, 10), release: make(chan struct{})}
	rc.AddHook(hook)
	r := rdb.New(rc, rdb.Options{Queue: "q", Worker: "w1"})
	for i := 1; i <= 8; i++ {
		rc.LPush(ctx, "q", fmt.Sprintf("j%d", i))
	}
	for range 4 {
		if _, err := r.Fetch(ctx, 0); err != nil {
			t.Fatal(err)
		}
	}
	type result struct{ done, next string }
	results := make(chan result, 4)
	call := func(done string) {
		next, err := r.AckFetch(ctx, done)
		if err != nil {
			t.Errorf("AckFetch(%s): %v", done, err)
		}
		results <- result{done, next}
	}
	go call("j1")
	if n := <-hook.entered; n != 1 {
		t.Fatalf("the first batch holds %d calls, want 1", n)
	}
	for _, j := range []string{"j2", "j3", "j4"} {
		go call(j)
	}
	testutil.Eventually(t, 10*time.Second, func() bool { return r.AckFetchesWaiting() == 3 }, "3 calls never waited")
	close(hook.release)
	if n := <-hook.entered; n != 3 {
		t.Fatalf("the second batch holds %d calls, want 3", n)
	}
	got := map[string]string{}
	for range 4 {
		res := <-results
		got[res.done] = res.next
	}
	if got["j1"] != "j5" {
		t.Fatalf("j1 was followed by %q, want j5 (the first batch went alone)", got["j1"])
	}
	nexts := []string{got["j2"], got["j3"], got["j4"]}
	slices.Sort(nexts)
	if !slices.Equal(nexts, []string{"j6", "j7", "j8"}) {
		t.Fatalf("the second batch took %v, want j6, j7, j8 one each", got)
	}
	list := rc.LRange(ctx, rdb.ProcessingKey("w1"), 0, -1).Val()
	slices.Sort(list)
	if !slices.Equal(list, []string{"j5", "j6", "j7", "j8"}) {
		t.Fatalf("processing holds %v, want the four next jobs alone", list)
	}
}

// Slots acking and taking jobs at once take each job exactly once, and the
// last acks leave nothing in hand.
func TestAckFetchConcurrentSlots(t *testing.T) {
	const slots, jobs = 16, 3000
	ctx := context.Background()
	rc := testutil.Redis(t)
	r := rdb.New(rc, rdb.Options{Queue: "q", Worker: "w1"})
	for i := range jobs {
		rc.LPush(ctx, "q", fmt.Sprintf("job-%d", i))
	}
	var mu sync.Mutex
	taken := map[string]int{}
	var wg sync.WaitGroup
	for range slots {
		wg.Go(func() {
			job, err := r.Fetch(ctx, 0)
			for job != "" && err == nil {
				mu.Lock()
				taken[job]++
				mu.Unlock()
				job, err = r.AckFetch(ctx, job)
			}
			if err != nil {
				t.Errorf("slot: %v", err)
			}
		})
	}
	wg.Wait()
	if len(taken) != jobs {
		t.Fatalf("%d jobs taken, want %d", len(taken), jobs)
	}
	for job, n := range taken {
		if n != 1 {
			t.Fatalf("%s taken %d times", job, n)
		}
	}
	if n := rc.LLen(ctx, rdb.ProcessingKey("w1")).Val() + rc.LLen(ctx, "q").Val(); n != 0 {
		t.Fatalf("%d jobs left in the lists", n)
	}
}

// A batch that fails fails each of its calls, even when go-redis leaves the
// error on no command; the job stays in hand for the caller to settle.
func TestAckFetchBatchFails(t *testing.T) {
	ctx := context.Background()
	rc := testutil.Redis(t)
	release := make(chan struct{})
	close(release)
	lost := errors.New("connection lost")
	rc.AddHook(&pipelineHook{entered: make(chan int, 10), release: release, fail: lost})
	r := rdb.New(rc, rdb.Options{Queue: "q", Worker: "w1"})
	rc.LPush(ctx, "q", "a", "b")
	a, err := r.Fetch(ctx, 0)
	if err != nil || a != "a" {
		t.Fatalf("Fetch = %q, %v", a, err)
	}
	next, err := r.AckFetch(ctx, a)
	if !errors.Is(err, lost) || next != "" {
		t.Fatalf("AckFetch = %q, %v; want the batch's error", next, err)
	}
	if l := rc.LRange(ctx, rdb.ProcessingKey("w1"), 0, -1).Val(); !slices.Equal(l, []string{"a"}) {
		t.Fatalf("processing holds %v, want [a]", l)
	}
}
