package faults

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coursedl/worker/internal/process"
	"github.com/coursedl/worker/internal/rdb"
)

// testSameName: a worker runs six tasks; three more processes start under its
// worker.id: one playing another machine by its host name (test hook
// COURSEDL_HOSTNAME), one a clone of this machine with another boot id
// (COURSEDL_BOOT_ID), one on this machine. Each is refused at start-up, exits
// non-zero, and says on stderr to set worker.id; the first worker keeps its
// jobs (none recovered) and completes them. Then the first worker is killed
// and started again at once: a restart of the same worker on the same
// machine takes over its id at once and recovers its own jobs at once.
func testSameName(t *testing.T, c *cluster) {
	first := c.worker("same", map[string]string{"WORKER_DOWNLOAD_ENV": `["FAKE_SLOW_SECONDS=10"]`})
	tasks := c.addTasks(6, nil)
	first.start()
	first.waitReady()
	c.push(tasks...)
	waitFor(t, 30*time.Second, "three tasks downloading", func(ctx context.Context) bool {
		return c.statusCount(ctx, "downloading") == 3
	})
	for i, hook := range []map[string]string{
		{"COURSEDL_HOSTNAME": "another-machine"},
		{"COURSEDL_BOOT_ID": "6f1b7a52-0000-4000-8000-000000000000"},
		{},
	} {
		code, stderr := c.runRefused(first.id, i, hook)
		if code == 0 || !strings.Contains(stderr, "worker.id") || !strings.Contains(stderr, "WORKER_WORKER_ID") ||
			!strings.Contains(stderr, "in use") {
			t.Errorf("second process with %v: exit code %d, stderr:\n%s\nwant a non-zero exit that names worker.id and WORKER_WORKER_ID", hook, code, stderr)
		}
	}
	ctx := testContext(t)
	if n, _ := c.rdb.LLen(ctx, rdb.ProcessingKey(first.id)).Result(); n != 3 {
		t.Errorf("the first worker holds %d jobs after the refusals, want its 3", n)
	}
	c.waitCompleted(3, time.Minute)
	if n := len(c.lifecycleCounts()["TASK_RECOVERED"]); n != 0 {
		t.Errorf("%d jobs of the first worker recovered while it ran", n)
	}
	waitFor(t, 30*time.Second, "the other three downloading", func(ctx context.Context) bool {
		return c.statusCount(ctx, "downloading") == 3
	})
	first.kill()
	restarted := time.Now()
	first.start()
	first.waitReady()
	took := time.Since(restarted)
	if took > 10*time.Second {
		t.Errorf("the restart took %s to register: it waited for the lease", took.Round(time.Millisecond))
	}
	waitFor(t, 10*time.Second, "the restart recovers its own jobs", func(context.Context) bool {
		return len(c.lifecycleCounts()["TASK_RECOVERED"]) == 3
	})
	c.verdict("same_name", 4, true, fmt.Sprintf("restart_registered_in=%s", took.Round(time.Millisecond)))
}

// runRefused runs a worker process under worker id with the test hooks of
// hook, logs and staging of its own, and returns its exit code and its
// output, at most a minute after its start.
func (c *cluster) runRefused(id string, n int, hook map[string]string) (int, string) {
	c.t.Helper()
	extra := map[string]string{
		"WORKER_LOGS_DIR":             filepath.Join(c.root, fmt.Sprintf("refused-%d-logs", n)),
		"WORKER_DOWNLOAD_STAGING_DIR": filepath.Join(c.root, fmt.Sprintf("refused-%d-staging", n)),
	}
	for k, v := range hook {
		extra[k] = v
	}
	w := &worker{c: c, id: id, extra: extra}
	var mu sync.Mutex
	var out strings.Builder
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := process.Run(ctx, process.Spec{
		Path: workerBin,
		Env:  w.env(),
		OnLine: func(_ process.Stream, line []byte) {
			mu.Lock()
			defer mu.Unlock()
			out.Write(line)
			out.WriteByte('\n')
		},
	})
	if ctx.Err() != nil {
		c.t.Errorf("the second process under %q still ran a minute after its start: %v", id, err)
	}
	mu.Lock()
	defer mu.Unlock()
	return res.ExitCode, out.String()
}
