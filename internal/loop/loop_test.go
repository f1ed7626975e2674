package loop_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/coursedl/worker/internal/loop"
)

// run starts loop.Run on a goroutine and returns a stop that waits for it.
func run(t *testing.T, p loop.Params, pass loop.Pass) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- loop.Run(ctx, p, pass) }()
	return func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run returned %v after its context ended, want nil", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Run did not return after its context ended")
		}
	}
}

// passes counts the passes and signals each one.
type passes struct {
	n    atomic.Int64
	each chan struct{}
}

func newPasses() *passes { return &passes{each: make(chan struct{}, 100)} }

func (p *passes) pass(next func() time.Time, err func(n int64) error) loop.Pass {
	return func(context.Context) (time.Time, error) {
		n := p.n.Add(1)
		p.each <- struct{}{}
		var at time.Time
		if next != nil {
			at = next()
		}
		var e error
		if err != nil {
			e = err(n)
		}
		return at, e
	}
}

func (p *passes) wait(t *testing.T, what string) {
	t.Helper()
	select {
	case <-p.each:
	case <-time.After(5 * time.Second):
		t.Fatalf("no pass: %s", what)
	}
}

func TestRunPassesAtOnceThenWhenWoken(t *testing.T) {
	ps := newPasses()
	wake := make(chan struct{}, 1)
	stop := run(t, loop.Params{Every: time.Hour, Wake: wake}, ps.pass(nil, nil))
	defer stop()
	ps.wait(t, "the first pass comes at once")
	wake <- struct{}{}
	ps.wait(t, "a wake-up brings a pass long before Every")
	select {
	case <-ps.each:
		t.Fatal("a pass came with no wake-up and Every an hour away")
	case <-time.After(100 * time.Millisecond):
	}
}

func TestRunPassesWhenTheNextIsDue(t *testing.T) {
	ps := newPasses()
	stop := run(t, loop.Params{Every: time.Hour}, ps.pass(func() time.Time { return time.Now().Add(20 * time.Millisecond) }, nil))
	defer stop()
	for i := range 3 {
		ps.wait(t, "pass "+string(rune('1'+i))+": the pass said when the next is due, far before Every")
	}
}

func TestRunLogsAFailureWhenItStartsAndWhenItEnds(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	ps := newPasses()
	fail := errors.New("redis away")
	// Passes 1-3 fail, 4 and later work.
	stop := run(t, loop.Params{Every: time.Millisecond, Log: zap.New(core), Failing: "failing", Back: "back"},
		ps.pass(nil, func(n int64) error {
			if n <= 3 {
				return fail
			}
			return nil
		}))
	for range 6 {
		ps.wait(t, "the loop goes on after failures")
	}
	stop()
	var msgs []string
	for _, e := range logs.All() {
		msgs = append(msgs, e.Message)
	}
	if len(msgs) != 2 || msgs[0] != "failing" || msgs[1] != "back" {
		t.Fatalf("log lines = %q, want one \"failing\" for three failed passes, then one \"back\"", msgs)
	}
}

func TestRunBoundsAPassWithTimeout(t *testing.T) {
	got := make(chan time.Duration, 1)
	stop := run(t, loop.Params{Every: time.Hour, Timeout: 50 * time.Millisecond}, func(ctx context.Context) (time.Time, error) {
		began := time.Now()
		<-ctx.Done()
		select {
		case got <- time.Since(began):
		default:
		}
		return time.Time{}, ctx.Err()
	})
	defer stop()
	select {
	case d := <-got:
		if d > 5*time.Second {
			t.Fatalf("pass ran %s under a 50ms timeout", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a pass waiting on its context was never cut short by Timeout")
	}
}

func TestSleepEndsWithItsContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if loop.Sleep(ctx, time.Hour) {
		t.Fatal("Sleep on an ended context reported that the hour went by")
	}
	if !loop.Sleep(context.Background(), time.Millisecond) {
		t.Fatal("Sleep of 1ms on a live context reported it was cut short")
	}
}
