package reconcile

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/coursedl/worker/internal/rdb"
	"github.com/coursedl/worker/internal/store"
)

// TestPassPushesOnlyStaleRowsWithoutJob: of the unfinished rows unchanged for
// stale_after, only those with no job anywhere in Redis and no lock held get
// their job pushed again, as the web app builds it, with TASK_RECONCILED.
func TestPassPushesOnlyStaleRowsWithoutJob(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	old := 20 * time.Minute
	var want []store.Task
	for _, st := range store.Unfinished {
		want = append(want, w.row(st, old))
	}
	inQueue, inProcessing := w.row(store.StatusPending, old), w.row(store.StatusProcessing, old)
	inDelayed, inDead := w.row(store.StatusProcessing, old), w.row(store.StatusPending, old)
	locked := w.row(store.StatusDownloading, old)
	w.row(store.StatusProcessing, time.Minute) // fresh: its job may be on its way
	w.row(store.StatusCompleted, old)          // final rows never
	w.row(store.StatusFailed, old)
	w.rc.LPush(ctx, queueKey, payload(inQueue))
	w.rc.LPush(ctx, rdb.ProcessingKey("w9"), payload(inProcessing))
	w.rc.ZAdd(ctx, rdb.DelayedKey, redis.Z{Score: 1, Member: payload(inDelayed)})
	if err := rdb.New(w.rc, rdb.Options{Queue: queueKey}).DeadLetter(ctx, payload(inDead), "rejected", time.Now()); err != nil {
		t.Fatal(err)
	}
	w.rc.Set(ctx, rdb.LockKey(locked.ID), "w9/x", time.Minute)

	rows := &countingRows{Store: w.store}
	r, _ := w.reconciler("w1", rows, Params{})
	start(t, r)
	if _, err := r.pass(ctx); err != nil {
		t.Fatal(err)
	}
	var wantQueue, wantLines []string
	for _, tk := range want {
		wantQueue = append(wantQueue, payload(tk))
		wantLines = append(wantLines, taskLine(tk.ID, "status "+tk.Status+" unchanged for 15m0s and no job in Redis"))
	}
	slices.Reverse(wantQueue) // LPUSH: the last pushed is at the left
	if got := w.queue(ctx); !slices.Equal(got, append(wantQueue, payload(inQueue))) {
		t.Fatalf("queue:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantQueue, "\n"))
	}
	lines := w.lines()
	if len(lines) != len(wantLines) {
		t.Fatalf("lines:\n%s", strings.Join(lines, "\n"))
	}
	for i, l := range lines {
		if !strings.HasSuffix(l, wantLines[i]) {
			t.Errorf("line %q, want it to end %q", l, wantLines[i])
		}
	}
	if n := rows.stale.Load(); n != 1 {
		t.Fatalf("%d queries, want 1", n)
	}
	// The next pass is an interval away: nothing more.
	if next, err := r.pass(ctx); err != nil || next.Before(time.Now().Add(59*time.Minute)) || rows.stale.Load() != 1 {
		t.Fatalf("second pass at once: next %s, %v, %d queries", next, err, rows.stale.Load())
	}
}

// TestTwoReconcilersPassOnce: two workers passing at the same moment make one
// pass between them, and push each job once.
func TestTwoReconcilersPassOnce(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	tk := w.row(store.StatusPending, time.Hour)
	rows := &countingRows{Store: w.store}
	a, _ := w.reconciler("w1", rows, Params{})
	b, _ := w.reconciler("w2", rows, Params{})
	start(t, a)
	start(t, b)
	var wg sync.WaitGroup
	for _, r := range []*Reconciler{a, b} {
		wg.Go(func() {
			if _, err := r.pass(ctx); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := rows.stale.Load(); n != 1 {
		t.Fatalf("%d passes, want 1", n)
	}
	if q := w.queue(ctx); len(q) != 1 || q[0] != payload(tk) {
		t.Fatalf("queue %q", q)
	}
	if ttl := w.rc.PTTL(ctx, rdb.ReconcileLockKey).Val(); ttl < 59*time.Minute {
		t.Fatalf("lock kept %s, want until the next pass is due", ttl)
	}
}

// TestPassPagesManyRows: one query a page of 1000, and every row without a
// job pushed once.
func TestPassPagesManyRows(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	w.db.MustExec(`INSERT INTO download_tasks (order_id, email, course_url, status, updated_at)
		SELECT 40, 'buyer@example.com', CONCAT('https://www.udemy.com/course/', seq, '/'), 'pending', CURRENT_TIMESTAMP - INTERVAL 1 HOUR
		FROM seq_1_to_10000`)
	var first int64
	if err := w.db.Get(&first, "SELECT MIN(id) FROM download_tasks"); err != nil {
		t.Fatal(err)
	}
	// Every other task has its job in the queue already.
	p := w.rc.Pipeline()
	for i := int64(0); i < 10000; i += 2 {
		p.LPush(ctx, queueKey, `{"taskId":`+itoa(first+i)+`,"email":"buyer@example.com","courseUrl":"x"}`)
	}
	if _, err := p.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	rows := &countingRows{Store: w.store}
	r, _ := w.reconciler("w1", rows, Params{})
	start(t, r)
	begin := time.Now()
	if _, err := r.pass(ctx); err != nil {
		t.Fatal(err)
	}
	if n := rows.stale.Load(); n != 11 {
		t.Fatalf("%d queries for 10000 rows, want 11", n)
	}
	if n := len(w.queue(ctx)); n != 10000 {
		t.Fatalf("queue holds %d jobs, want 10000", n)
	}
	t.Logf("10000 rows, 5000 pushed, in %s", time.Since(begin).Round(time.Millisecond))
}
