package faults

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/coursedl/worker/internal/notify"
)

// testRedisForgets: 20 tasks on two workers while Redis forgets everything
// (FLUSHALL) three times at random moments: the queue, the processing lists,
// the delayed set, the task locks, the heartbeats and the webhook outbox are
// gone at once, with no error from Redis to say so. The reconciler (interval
// 1 s, stale_after 2 s here) sees the epoch gone and rebuilds from the
// database. Every task must complete; the web app must have every task's
// task.completed, always under its one webhook-id (a repeat is allowed: the
// web app knows it by its id); and no two runs of one task may overlap, as
// the downloader's own record of its starts and ends shows, nor any task run
// to its end twice.
func testRedisForgets(t *testing.T, c *cluster) {
	ctx := testContext(t)
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	t.Logf("seed %d", seed)
	// A download far outlasts the reconciler's sight of a loss and its grace
	// (about 3 s): most tasks running at a flush are still downloading when the
	// jobs are pushed again, so that a second run of one would overlap the
	// first.
	runs := c.recordSpans(8)
	c.settings["WORKER_WORKER_CONCURRENCY"] = "10"
	c.settings["WORKER_RECONCILE_INTERVAL"] = "1s"
	c.settings["WORKER_RECONCILE_STALE_AFTER"] = "2s"
	ws := []*worker{c.worker("forgets-a", nil), c.worker("forgets-b", nil)}
	for _, w := range ws {
		w.start()
	}
	for _, w := range ws {
		w.waitReady()
	}
	// Eight purchases, then four more after each flush: the workers have free
	// slots at every flush, which a job pushed again for a task already
	// running would take at once.
	c.push(c.addTasks(8, nil)...)
	begin := time.Now()
	var at []string
	for range 3 {
		pause(ctx, time.Duration(1000+rng.IntN(3000))*time.Millisecond)
		done := c.statusCount(ctx, "completed")
		if err := c.rdb.FlushAll(ctx).Err(); err != nil {
			t.Fatalf("FLUSHALL: %v", err)
		}
		at = append(at, fmt.Sprintf("%.1fs/%d-done", time.Since(begin).Seconds(), done))
		c.push(c.addTasks(4, nil)...)
	}
	t.Logf("FLUSHALL at %s", strings.Join(at, " "))
	f := c.forgetsVerdict(c.allTasks(), len(at), runs)
	f.extra = "flushed=" + strings.Join(at, ",")
	t.Logf("at rest %s after the first push", time.Since(begin).Round(time.Millisecond))
	t.Log(f.String())
}

// forgetsVerdict waits for rest and checks every task, event and run.
func (c *cluster) forgetsVerdict(tasks []*task, faults int, runs string) figures {
	c.t.Helper()
	t := c.t
	if p := c.waitRest(3 * time.Minute); p != "" {
		t.Errorf("not at rest: %s", p)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	f := figures{name: "redis_forgets", tasks: len(tasks), faults: faults}
	rows, err := c.rows(ctx)
	if err != nil {
		t.Fatalf("rows: %v", err)
	}
	tl := c.hook.tally()
	for _, n := range tl.count {
		f.deliveries += n
		f.redelivered += n - 1
	}
	for _, tk := range tasks {
		if r := rows[tk.id]; r.Status != "completed" || r.DriveURL.String != tk.driveURL() {
			f.lost++
			t.Errorf("task %d: status %q, drive_url %q (error %q)", tk.id, r.Status, r.DriveURL.String, r.Error.String)
		}
		ids := tl.ids(tk.id, notify.TypeCompleted)
		if len(ids) == 0 {
			f.deliveriesLost++
			t.Errorf("task %d: no task.completed accepted", tk.id)
		}
		if want := notify.CompletedID(tk.id); len(ids) > 1 || len(ids) == 1 && ids[0] != want {
			t.Errorf("task %d: task.completed under ids %q, want only %s", tk.id, ids, want)
		}
		if o := tl.ids(tk.id, notify.TypeFailed); len(o) > 0 {
			t.Errorf("task %d: task.failed events %q", tk.id, o)
		}
		for _, id := range ids {
			ev := tl.events[id]
			if ev.OrderID == nil || *ev.OrderID != tk.orderID || ev.Email != tk.email || ev.DriveURL != tk.driveURL() {
				t.Errorf("task %d: event %s is %+v", tk.id, id, ev)
			}
		}
	}
	f.twice = overlapping(t, readSpans(t, runs))
	for id, n := range c.lifecycleCounts()["TASK_COMPLETED"] {
		if n > 1 {
			f.twice++
			t.Errorf("task %d: %d TASK_COMPLETED lines: it ran to the end twice", id, n)
		}
	}
	for _, b := range tl.bad {
		t.Errorf("webhook refused: %s", b)
	}
	if left, err := c.leftovers(ctx); err != nil || len(left) > 0 {
		t.Errorf("left in Redis: %v %v", left, err)
	}
	c.checkDrive(tasks)
	c.checkRaces()
	return f
}
