package faults

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/coursedl/worker/internal/rdb"
)

// testSIGTERM stops a worker with SIGTERM twice during downloads: first
// with downloads that outlast worker.shutdown_grace (the worker must exit 0
// within the grace, with the jobs back in the queue, and a restart completes
// them), then with one that finishes within it (the task completes before
// the exit, and its job is acknowledged).
func testSIGTERM(t *testing.T, c *cluster) {
	const grace = 3 * time.Second
	// The stop after the grace (cancel the downloads, requeue, deregister)
	// must be prompt.
	const promptness = 2 * time.Second
	ctx := testContext(t)
	w := c.worker("sigterm", map[string]string{
		"WORKER_WORKER_CONCURRENCY":    "2",
		"WORKER_WORKER_SHUTDOWN_GRACE": grace.String(),
		"WORKER_DOWNLOAD_ENV":          `["FAKE_SLOW_SECONDS=60"]`,
	})
	tasks := c.addTasks(3, nil)
	w.start()
	c.push(tasks[:2]...)
	waitFor(t, 30*time.Second, "both tasks downloading", func(ctx context.Context) bool {
		return c.statusCount(ctx, "downloading") == 2
	})
	res, took, err := w.terminate(grace + 30*time.Second)
	if err != nil || res.ExitCode != 0 {
		t.Errorf("worker stopped by SIGTERM: exit code %d, %v; want 0", res.ExitCode, err)
	}
	if took > grace+promptness {
		t.Errorf("worker exited %s after SIGTERM; want within the %s grace (+%s to stop its tasks)", took.Round(time.Millisecond), grace, promptness)
	}
	jobs, err := c.rdb.LRange(ctx, queueKey, 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{tasks[0].payload, tasks[1].payload}
	if slices.Sort(jobs); !slices.Equal(jobs, sorted(want)) {
		t.Errorf("queue after SIGTERM holds %q, want the two jobs", jobs)
	}
	if n, _ := c.rdb.LLen(ctx, rdb.ProcessingKey(w.id)).Result(); n != 0 {
		t.Errorf("processing list holds %d jobs after SIGTERM", n)
	}
	if n, _ := c.rdb.ZCard(ctx, rdb.WorkersKey).Result(); n != 0 {
		t.Errorf("%d workers still registered after a clean stop", n)
	}
	if n := c.statusCount(ctx, "completed"); n != 0 {
		t.Errorf("%d tasks completed before the restart", n)
	}
	first := took

	// Restarted with short downloads: both jobs complete. Then a download
	// that ends within the grace: the worker finishes the task, then exits.
	w.set("WORKER_DOWNLOAD_ENV", `["FAKE_SLOW_SECONDS=2"]`)
	w.set("WORKER_WORKER_SHUTDOWN_GRACE", "10s")
	w.start()
	c.waitCompleted(2, 60*time.Second)
	c.push(tasks[2])
	waitFor(t, 30*time.Second, "the third task downloading", func(ctx context.Context) bool {
		return c.statusCount(ctx, "downloading") == 1
	})
	res, took, err = w.terminate(40 * time.Second)
	if err != nil || res.ExitCode != 0 {
		t.Errorf("worker stopped by SIGTERM: exit code %d, %v; want 0", res.ExitCode, err)
	}
	if n := c.statusCount(ctx, "completed"); n != 3 {
		t.Errorf("%d tasks completed when the worker exited; want 3 (the last one within the grace)", n)
	}
	if n, _ := c.rdb.LLen(ctx, queueKey).Result(); n != 0 {
		t.Errorf("queue holds %d jobs after a task finished within the grace", n)
	}
	// Started again to send what the stop may have left in the outbox.
	w.start()
	c.verdict("sigterm", 2, false, fmt.Sprintf("stop_after_grace=%s stop_within_grace=%s", first.Round(time.Millisecond), took.Round(time.Millisecond)))
	w.waitReady()
	res, took, err = w.terminate(30 * time.Second)
	if err != nil || res.ExitCode != 0 || took > 5*time.Second {
		t.Errorf("idle worker stopped by SIGTERM: exit code %d, %v, after %s", res.ExitCode, err, took)
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
