package reconcile

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coursedl/worker/internal/notify"
	"github.com/coursedl/worker/internal/queue"
	"github.com/coursedl/worker/internal/rdb"
	"github.com/coursedl/worker/internal/store"
	"github.com/coursedl/worker/internal/testutil"
)

// TestLossIsHandledAtOnce: Redis loses everything (FLUSHDB) while two workers
// watch it. At once, not an interval later, and once between them: every
// unfinished row without a job gets it back whatever its age, except the task
// running on a worker, whose lock that worker restores; the events of the
// tasks that ended lately are back in the outbox under their own ids; the
// epoch is written anew. A second loss is handled the same way.
func TestLossIsHandledAtOnce(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	fresh := w.row(store.StatusProcessing, 0) // between two statuses when Redis lost its job
	pending := w.row(store.StatusPending, 0)
	running := w.row(store.StatusDownloading, 0)
	done, failed := w.row(store.StatusCompleted, 30*time.Second), w.row(store.StatusFailed, 0)
	oldDone := w.row(store.StatusCompleted, 48*time.Hour)
	w.rc.LPush(ctx, queueKey, payload(pending))

	rows := &countingRows{Store: w.store}
	p := Params{Check: 50 * time.Millisecond, Grace: 300 * time.Millisecond, StaleAfter: time.Hour}
	a, _ := w.reconciler("w1", rows, p)
	locks := queue.NewLocks(queue.LocksParams{Redis: rdb.New(w.rc, rdb.Options{Queue: queueKey, Worker: "w2"})})
	lk, err := locks.Acquire(ctx, running.ID)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lk.Release(context.Background()) })
	token := w.rc.Get(ctx, rdb.LockKey(running.ID)).Val()
	p.OnLoss = func(ctx context.Context) {
		if _, err := locks.Restore(ctx); err != nil {
			t.Error(err)
		}
	}
	b, _ := w.reconciler("w2", rows, p)
	for _, r := range []*Reconciler{a, b} {
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); _ = r.Run(runCtx) }()
		t.Cleanup(func() { cancel(); <-done })
	}
	testutil.Eventually(t, 5*time.Second, func() bool {
		return a.state().intact && b.state().intact && rows.stale.Load() == 1
	}, "both read the epoch and one passed")
	if q := w.queue(ctx); len(q) != 1 {
		t.Fatalf("queue before the loss %q", q)
	}

	for round := 1; round <= 2; round++ {
		before := w.rc.Get(ctx, rdb.EpochKey).Val()
		lost := time.Now()
		w.rc.FlushDB(ctx)
		testutil.Eventually(t, 5*time.Second, func() bool {
			v := w.rc.Get(ctx, rdb.EpochKey).Val()
			return v != "" && v != before && !strings.HasSuffix(v, handling) && len(w.queue(ctx)) == 2
		}, "round %d: jobs pushed again and the epoch rewritten; queue %q", round, w.queue(ctx))
		t.Logf("round %d: handled in %s", round, time.Since(lost).Round(time.Millisecond))
		testutil.Consistently(t, 300*time.Millisecond, func() bool { return len(w.queue(ctx)) == 2 }, "pushed once")
		if got, want := w.queue(ctx), []string{payload(pending), payload(fresh)}; !slices.Equal(sorted(got), sorted(want)) {
			t.Fatalf("round %d: queue %q, want %q", round, got, want)
		}
		if got := w.rc.Get(ctx, rdb.LockKey(running.ID)).Val(); got != token {
			t.Fatalf("round %d: lock of the running task %q, want %q restored", round, got, token)
		}
		checkResent(t, w, map[string]store.Task{
			notify.CompletedID(done.ID):                    done,
			notify.FailedID(failed.ID, "reason of failed"): failed,
		}, oldDone)
		w.rc.Del(ctx, queueKey)
	}
	lines := w.lines()
	want := taskLine(fresh.ID, "Redis lost data; status processing and no job in Redis")
	if n := countSuffix(lines, want); n != 2 {
		t.Fatalf("%d lines %q (one a loss), in:\n%s", n, want, strings.Join(lines, "\n"))
	}
}

// checkResent checks that the outbox holds the events of want, by id, as
// rebuilt from their rows, and none of old.
func checkResent(t *testing.T, w *world, want map[string]store.Task, old store.Task) {
	t.Helper()
	ctx := context.Background()
	r := rdb.New(w.rc, rdb.Options{Queue: queueKey})
	for id, tk := range want {
		e, err := r.Event(ctx, id)
		if err != nil {
			t.Fatalf("event %s of task %d: %v", id, tk.ID, err)
		}
		var ev notify.Event
		if err := json.Unmarshal(e.Body, &ev); err != nil {
			t.Fatal(err)
		}
		if ev.TaskID != tk.ID || *ev.OrderID != 40 || ev.Email != tk.Email || ev.Folder != "task-"+itoa(tk.ID) || ev.Timestamp == "" {
			t.Fatalf("event %s: %+v", id, ev)
		}
		switch tk.Status {
		case store.StatusCompleted:
			if ev.Type != notify.TypeCompleted || ev.DriveURL != "https://drive.example/completed" || ev.Error != "" {
				t.Fatalf("event %s: %+v", id, ev)
			}
		default:
			if ev.Type != notify.TypeFailed || ev.Error != "reason of failed" || ev.DriveURL != "" {
				t.Fatalf("event %s: %+v", id, ev)
			}
		}
	}
	if n := w.rc.ZCard(ctx, rdb.OutboxKey).Val(); n != int64(len(want)) {
		t.Fatalf("outbox holds %d events, want %d (not task %d's, ended two days ago)", n, len(want), old.ID)
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

func countSuffix(lines []string, suffix string) int {
	n := 0
	for _, l := range lines {
		if strings.HasSuffix(l, suffix) {
			n++
		}
	}
	return n
}

// TestFurtherLossRestartsTheGrace: the epoch is marked lost at the first
// sight of a loss, so that a flush during the grace shows as a further loss,
// seen by every worker, and the jobs wait a whole grace after it: the other
// workers restore their locks again meanwhile.
func TestFurtherLossRestartsTheGrace(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	tk := w.row(store.StatusPending, 0)
	restores := 0
	// The grace is measured on the reconciler's clock, which the test moves.
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	advance := func(d time.Duration) { clock.Add(int64(d)) }
	a, _ := w.reconciler("w1", &countingRows{Store: w.store}, Params{
		Check: time.Hour, Grace: 300 * time.Millisecond, // the test turns the loops
		OnLoss: func(context.Context) { restores++ },
		Now:    func() time.Time { return time.Unix(0, clock.Load()) },
	})
	start(t, a)
	pass := func() time.Time {
		t.Helper()
		next, err := a.pass(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return next
	}
	pass()
	before := w.rc.Get(ctx, rdb.EpochKey).Val()

	w.rc.FlushDB(ctx)
	if err := a.watch(ctx); err != nil {
		t.Fatal(err)
	}
	marked := w.rc.Get(ctx, rdb.EpochKey).Val()
	if !strings.HasSuffix(marked, handling) || generation(marked) == before || restores != 1 {
		t.Fatalf("epoch %q after the loss (before %q), %d restores", marked, before, restores)
	}
	if next := pass(); len(w.queue(ctx)) != 0 || time.Until(next) < 200*time.Millisecond {
		t.Fatalf("pushed during the grace, or next pass at %s", next)
	}
	advance(350 * time.Millisecond)
	w.rc.FlushDB(ctx) // a further loss, which the watch has not seen yet
	pass()
	if len(w.queue(ctx)) != 0 || restores != 2 {
		t.Fatalf("queue %q, %d restores: the further loss was not taken as one", w.queue(ctx), restores)
	}
	if v := w.rc.Get(ctx, rdb.EpochKey).Val(); !strings.HasSuffix(v, handling) {
		t.Fatalf("epoch %q: not marked again", v)
	}
	advance(350 * time.Millisecond)
	pass()
	if q := w.queue(ctx); len(q) != 1 || q[0] != payload(tk) {
		t.Fatalf("queue %q after the grace", q)
	}
	if v := w.rc.Get(ctx, rdb.EpochKey).Val(); v == "" || strings.HasSuffix(v, handling) {
		t.Fatalf("epoch %q after handling", v)
	}
}
