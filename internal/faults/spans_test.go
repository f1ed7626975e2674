package faults

import (
	"cmp"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// recordSpans has the cluster's workers run the fake downloader in span mode
// (like slow, for the given seconds), which records each run's start and end
// in the file it returns: "run twice at once" is measured from it.
func (c *cluster) recordSpans(seconds int) string {
	path := filepath.Join(c.root, "spans")
	c.settings["WORKER_DOWNLOAD_COMMAND"] = fmt.Sprintf(`[%q, "span", "{url}", "{dir}"]`, fakeDownloader)
	c.settings["WORKER_DOWNLOAD_ENV"] = fmt.Sprintf(`["FAKE_SLOW_SECONDS=%d", "FAKE_SPANS=%s"]`, seconds, path)
	return path
}

// overlapping fails the test for each task two of whose runs overlapped in
// time, on any workers, and returns how many tasks did. A run still without an
// end overlaps every later run of its task.
func overlapping(t *testing.T, runs []span) int {
	t.Helper()
	byTask := map[string][]span{}
	for _, r := range runs {
		byTask[r.task] = append(byTask[r.task], r)
	}
	n := 0
	for task, rs := range byTask {
		slices.SortFunc(rs, func(a, b span) int { return cmp.Compare(a.start.UnixNano(), b.start.UnixNano()) })
		for i := 1; i < len(rs); i++ {
			if prev := rs[i-1]; prev.end.IsZero() || prev.end.After(rs[i].start) {
				n++
				t.Errorf("%s: a run on %s began at %s while one on %s (began %s, ended %v) was under way",
					task, rs[i].worker, rs[i].start.Format(time.StampMicro), prev.worker, prev.start.Format(time.StampMicro), prev.end)
				break
			}
		}
	}
	t.Logf("%d downloader runs for %d tasks", len(runs), len(byTask))
	return n
}

// span is one run of the fake downloader in span mode.
type span struct {
	worker     string // whose staging folder it ran in
	task       string // task-<id>
	pid        int
	start, end time.Time // end zero while it runs
	how        string    // done, stopped
}

// readSpans reads the runs recorded in the file at path, in the order they
// began.
func readSpans(t *testing.T, path string) []span {
	t.Helper()
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []span
	open := map[int]int{} // pid -> index in out
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(line)
		if len(f) < 4 {
			continue
		}
		pid, _ := strconv.Atoi(f[2])
		ns, _ := strconv.ParseInt(f[3], 10, 64)
		at := time.Unix(0, ns)
		switch f[0] {
		case "start":
			worker := strings.TrimPrefix(filepath.Base(filepath.Dir(f[1])), "staging-")
			open[pid] = len(out)
			out = append(out, span{worker: worker, task: filepath.Base(f[1]), pid: pid, start: at})
		case "end":
			if i, ok := open[pid]; ok && len(f) > 4 {
				out[i].end, out[i].how = at, f[4]
				delete(open, pid)
			}
		}
	}
	return out
}
