package faults

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// clockSkew is the skew of the two skewed workers of testClockSkew, ahead and
// behind.
const clockSkew = 120 * time.Second

// testClockSkew: 24 tasks, and duplicate jobs of three of them that wait in
// the delayed set while their task runs, on two workers with the machine's
// clock and two whose every clock is skewed (test hook COURSEDL_CLOCK_SKEW),
// one 120 s ahead and one 120 s behind. Liveness and due times are on Redis's
// clock: no live worker's job may be recovered (no TASK_RECOVERED line), no
// task may run twice, every task completes once, and the skewed workers do
// their share.
func testClockSkew(t *testing.T, c *cluster) {
	ws := []*worker{
		c.worker("skew-a", nil),
		c.worker("skew-b", nil),
		c.worker("skew-ahead", map[string]string{"COURSEDL_CLOCK_SKEW": clockSkew.String()}),
		c.worker("skew-behind", map[string]string{"COURSEDL_CLOCK_SKEW": (-clockSkew).String()}),
	}
	for _, w := range ws {
		w.set("WORKER_DOWNLOAD_ENV", `["FAKE_SLOW_SECONDS=2"]`)
		w.start()
	}
	for _, w := range ws {
		w.waitReady()
	}
	tasks := c.addTasks(24, nil)
	// Three jobs twice, the copies taken first: the other copy of each finds
	// its task locked and waits 30 s in the delayed set, by Redis's clock.
	c.push(tasks[:3]...)
	c.push(tasks...)
	f := c.verdict("clock_skew", 2, false, "skew="+clockSkew.String())

	lines := c.lifecycleCounts()
	if n := len(lines["TASK_RECOVERED"]); n > 0 {
		t.Errorf("jobs of %d tasks recovered from live workers: %v", n, lines["TASK_RECOVERED"])
	}
	for _, tk := range tasks {
		if n := lines["DOWNLOAD_START"][tk.id]; n != 1 {
			t.Errorf("task %d: downloaded %d times, want once", tk.id, n)
		}
	}
	for _, w := range ws[2:] {
		completed, skew := workerLines(t, c, w)
		if completed == 0 {
			t.Errorf("worker %s completed no task", w.id)
		}
		want := clockSkew
		if strings.HasSuffix(w.id, "behind") {
			want = -clockSkew
		}
		if skew < want-30*time.Second || skew > want+30*time.Second {
			t.Errorf("worker %s writes its lifecycle lines %s off the machine's clock, want %s: the test hook did not take", w.id, skew, want)
		}
	}
	t.Logf("%s: %d tasks", f.name, f.tasks)
}

// workerLines counts w's TASK_COMPLETED lines and says how far the time of
// its last lifecycle line is from when its file was last written.
func workerLines(t *testing.T, c *cluster, w *worker) (completed int, skew time.Duration) {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(c.root, "logs-"+w.id, "lifecycle-*.log"))
	var last string
	var written time.Time
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		completed += strings.Count(string(b), "[TASK_COMPLETED]")
		if lines := strings.Split(strings.TrimSpace(string(b)), "\n"); fi.ModTime().After(written) && len(lines) > 0 {
			last, written = lines[len(lines)-1], fi.ModTime()
		}
	}
	at, err := time.Parse(time.RFC3339Nano, strings.Fields(last + " -")[0])
	if err != nil {
		t.Fatalf("worker %s: last lifecycle line %q: %v", w.id, last, err)
	}
	return completed, at.Sub(written).Round(time.Second)
}
