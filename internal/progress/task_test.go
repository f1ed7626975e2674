package progress_test

import (
	"context"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/coursedl/worker/internal/progress"
	"github.com/coursedl/worker/internal/rdb"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

func TestTaskThrottles(t *testing.T) {
	tests := []struct {
		name      string
		interval  time.Duration
		updates   int
		every     time.Duration // between two updates
		minEvents int
	}{
		{name: "100 updates in 100 ms", interval: progress.DefaultMinInterval, updates: 100, every: time.Millisecond, minEvents: 2},
		{name: "50 updates in 500 ms", interval: 100 * time.Millisecond, updates: 50, every: 10 * time.Millisecond, minEvents: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, rc := newPublisher(t)
			id := newTaskID()
			sub := subscribe(t, rc, id)
			tp := p.Task(id)
			tp.MinInterval = tt.interval
			t.Cleanup(tp.Close)

			start := time.Now()
			tick := time.NewTicker(tt.every)
			defer tick.Stop()
			for i := 1; i <= tt.updates; i++ {
				<-tick.C
				pct := float64(i) * 100 / float64(tt.updates)
				tp.Update(progress.StageDownloading, progress.Update{Percent: pct, HasPercent: true, Speed: "1.00MiB/s", ETA: "00:01"})
			}
			sending := time.Since(start)

			// The last update comes out by the timer, without Close.
			sub.waitFor(t, id, "the last update's percent", func(ev progress.Event) bool { return percentOf(ev) == 100 })
			tp.Close()
			sub.barrier(t, p)

			got := sub.all(id)
			// One event at once, then at most one per interval until an interval
			// after the last update.
			maxEvents := int(sending/tt.interval) + 2
			if len(got) < tt.minEvents || len(got) > maxEvents {
				t.Errorf("%d updates in %s gave %d events, want %d..%d", tt.updates, sending, len(got), tt.minEvents, maxEvents)
			}
			var percents []float64
			for _, r := range got {
				percents = append(percents, percentOf(r.ev))
			}
			if !slices.IsSorted(percents) || percents[len(percents)-1] != 100 {
				t.Errorf("percents %v: want rising to 100, the last update's", percents)
			}
		})
	}
}

// TestTaskStagesAndFinish runs a task's whole life: every stage arrives in order,
// the last update of each stage is not lost, and Finish's event is the last one.
func TestTaskStagesAndFinish(t *testing.T) {
	p, rc := newPublisher(t)
	id := newTaskID()
	sub := subscribe(t, rc, id)
	tp := p.Task(id)
	t.Cleanup(tp.Close)

	tp.Stage(progress.StageWaitingEnrollment)
	for i := 0; i <= 50; i++ {
		tp.Update(progress.StageDownloading, progress.Update{Percent: float64(2 * i), HasPercent: true, Speed: "2.00MiB/s", ETA: "00:03"})
	}
	for i := 0; i <= 20; i++ {
		tp.Update(progress.StageUploading, progress.Update{Percent: float64(5 * i), HasPercent: true, Speed: "1.00MiB/s"})
	}
	tp.Stage(progress.StageNotifying)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := tp.Finish(ctx, progress.StageCompleted); err != nil {
		t.Fatalf("Finish: %v", err)
	}
	tp.Update(progress.StageDownloading, progress.Update{Percent: 1, HasPercent: true}) // ignored
	tp.Stage(progress.StageFailed)                                                      // ignored
	sub.barrier(t, p)

	got := sub.all(id)
	want := []string{progress.StageWaitingEnrollment, progress.StageDownloading, progress.StageUploading, progress.StageNotifying, progress.StageCompleted}
	if stages := stagesOf(got); !slices.Equal(stages, want) {
		t.Fatalf("stages %v, want %v", stages, want)
	}
	if len(got) > 10 {
		t.Errorf("%d events: updates were not throttled", len(got))
	}
	lastOf := map[string]progress.Event{}
	for _, r := range got {
		lastOf[r.ev.Stage] = r.ev
		if r.ev.At.UTC().Format(time.RFC3339) != clockText {
			t.Errorf("event at %s, want the clock's %s", r.ev.At, clockText)
		}
	}
	for _, s := range []string{progress.StageDownloading, progress.StageUploading} {
		if pct := percentOf(lastOf[s]); pct != 100 {
			t.Errorf("last %s event has percent %v, want the last update's 100", s, pct)
		}
	}
	final := got[len(got)-1]
	if final.ev.Stage != progress.StageCompleted || percentOf(final.ev) != 100 {
		t.Errorf("final event %s, want completed at 100%%", final.raw)
	}
	checkHash(t, rc, id, final.raw)
	checkTTL(t, rc, id, progress.FinalTTL)
}

func TestTaskFinish(t *testing.T) {
	tests := []struct {
		stage   string
		percent float64 // of the final event; -1: none
		wantErr bool
	}{
		{stage: progress.StageCompleted, percent: 100},
		{stage: progress.StageFailed, percent: -1},
		{stage: progress.StageDownloading, wantErr: true},
		{stage: "", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.stage, func(t *testing.T) {
			p, rc := newPublisher(t)
			id := newTaskID()
			sub := subscribe(t, rc, id)
			tp := p.Task(id)
			t.Cleanup(tp.Close)
			tp.Update(progress.StageDownloading, progress.Update{Percent: 37.5, HasPercent: true})

			err := tp.Finish(context.Background(), tt.stage)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Finish(%q) = %v, want error %v", tt.stage, err, tt.wantErr)
			}
			tp.Close()
			sub.barrier(t, p)
			got := sub.all(id)
			if len(got) == 0 {
				t.Fatal("no event")
			}
			final := got[len(got)-1]
			if tt.wantErr {
				if len(got) != 1 || final.ev.Stage != progress.StageDownloading {
					t.Errorf("events %v: a refused Finish must publish nothing", stagesOf(got))
				}
				checkTTL(t, rc, id, progress.ActiveTTL)
				return
			}
			if final.ev.Stage != tt.stage || percentOf(final.ev) != tt.percent {
				t.Errorf("final event %s, want stage %s, percent %v", final.raw, tt.stage, tt.percent)
			}
			checkHash(t, rc, id, final.raw)
			checkTTL(t, rc, id, progress.FinalTTL)
		})
	}
}

// TestTaskUnresponsiveRedis: with a Redis that accepts connections and never
// answers, Update and Stage return at once, Close and Finish give up after the
// publisher's Timeout, and the failure is logged once.
func TestTaskUnresponsiveRedis(t *testing.T) {
	rc := redis.NewClient(&redis.Options{Addr: silentServer(t), ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = rc.Close() })
	core, logs := observer.New(zap.WarnLevel)
	p := progress.NewPublisher(rdb.New(rc, rdb.Options{}), zap.New(core))
	p.Timeout = 300 * time.Millisecond
	tp := p.Task(newTaskID())
	t.Cleanup(tp.Close)

	start := time.Now()
	tp.Stage(progress.StageWaitingEnrollment)
	for i := range 100 {
		tp.Update(progress.StageDownloading, progress.Update{Percent: float64(i), HasPercent: true})
	}
	tp.Update(progress.StageUploading, progress.Update{Percent: 0, HasPercent: true})
	tp.Stage(progress.StageNotifying)
	if took := time.Since(start); took >= p.Timeout/2 {
		t.Errorf("Update and Stage took %s: they must not wait for Redis", took)
	}

	start = time.Now()
	tp.Close() // the publish in progress, then one Timeout for the rest
	if took := time.Since(start); took > 3*p.Timeout {
		t.Errorf("Close took %s, want at most about 2 × %s", took, p.Timeout)
	}
	start = time.Now()
	if err := tp.Finish(context.Background(), progress.StageFailed); err == nil {
		t.Error("Finish: no error from a Redis that does not answer")
	}
	if took := time.Since(start); took > 2*p.Timeout {
		t.Errorf("Finish took %s, want about %s", took, p.Timeout)
	}
	if n := logs.FilterMessageSnippet("cannot publish progress").Len(); n != 1 {
		t.Errorf("failure logged %d times, want once: %v", n, logs.All())
	}
}

// silentServer listens on 127.0.0.1 and accepts connections that never get an
// answer: a Redis that hangs. It stops when the test ends.
func silentServer(t *testing.T) string {
	t.Helper()
	var lc net.ListenConfig
	ln, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
		wg    sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return ln.Addr().String()
}
