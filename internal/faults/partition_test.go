package faults

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testPartition: worker A reaches Redis through a proxy that the test cuts in
// the middle of A's download, for good; worker B reaches Redis directly. A
// can renew neither its heartbeat nor its task's lock: it must stop its
// downloader itself (fenced) before B's recoverer takes it for dead, gives
// its job back and B starts the task. The two runs of the downloader never
// overlap; the task completes once, with one task.completed webhook id. A is
// let back at the end: it must not put the job anywhere again.
func testPartition(t *testing.T, c *cluster, p *proxy) {
	spans := filepath.Join(c.root, "spans")
	command := fmt.Sprintf(`[%q, "span", "{url}", "{dir}"]`, fakeDownloader)
	env := func(seconds int) string {
		return fmt.Sprintf(`["FAKE_SLOW_SECONDS=%d", "FAKE_SPANS=%s"]`, seconds, spans)
	}
	a := c.worker("part-a", map[string]string{"WORKER_REDIS_ADDR": p.addr, "WORKER_DOWNLOAD_COMMAND": command, "WORKER_DOWNLOAD_ENV": env(300)})
	b := c.worker("part-b", map[string]string{"WORKER_DOWNLOAD_COMMAND": command, "WORKER_DOWNLOAD_ENV": env(2)})
	tasks := c.addTasks(1, nil)
	a.start()
	a.waitReady()
	c.push(tasks...)
	waitFor(t, 30*time.Second, "A downloading", func(context.Context) bool { return len(readSpans(t, spans)) == 1 })
	b.start()
	b.waitReady()
	cutAt := time.Now()
	a.out.printf("proxy to Redis cut")
	p.cut()
	c.waitCompleted(1, 2*time.Minute)

	runs := readSpans(t, spans)
	if len(runs) != 2 {
		t.Fatalf("%d runs of the downloader, want 2 (A's, stopped, then B's): %+v", len(runs), runs)
	}
	ra, rb := runs[0], runs[1]
	switch {
	case ra.worker != a.id || rb.worker != b.id:
		t.Errorf("runs by %s then %s, want A then B", ra.worker, rb.worker)
	case ra.end.IsZero() || ra.how != "stopped":
		t.Errorf("A's downloader did not stop by itself: %+v", ra)
	case !ra.end.Before(rb.start):
		t.Errorf("the runs overlap: A's ended at %s, B's began at %s", ra.end.Format(time.RFC3339Nano), rb.start.Format(time.RFC3339Nano))
	case rb.how != "done":
		t.Errorf("B's run did not finish: %+v", rb)
	}
	if out, _ := os.ReadFile(a.out.path); !strings.Contains(string(out), "fenced") {
		t.Errorf("A's log does not say its task was fenced; see %s", a.out.path)
	}
	a.out.printf("proxy to Redis restored")
	p.restore()
	c.verdict("partition", 1, false, fmt.Sprintf("a_stopped_after_cut=%s gap_before_b=%s",
		ra.end.Sub(cutAt).Round(time.Millisecond), rb.start.Sub(ra.end).Round(time.Millisecond)))
}
