package lifecycle

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// clock is a settable time source for Open.
type clock struct{ ns atomic.Int64 }

func (c *clock) set(t time.Time)  { c.ns.Store(t.UnixNano()) }
func (c *clock) now() time.Time   { return time.Unix(0, c.ns.Load()) }
func newClock(t time.Time) *clock { c := &clock{}; c.set(t); return c }

// openLog opens a Log in a fresh directory and closes it at cleanup.
func openLog(t *testing.T, now func() time.Time) (*Log, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "logs")
	l, err := Open(dir, now)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l, dir
}

// readLines returns the lines of a file, failing if it does not end a line.
func readLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > 0 && b[len(b)-1] != '\n' {
		t.Fatalf("%s ends in the middle of a line", path)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

func TestOpenMakesDirAndFile(t *testing.T) {
	c := newClock(time.Date(2026, 11, 28, 20, 0, 0, 0, time.UTC))
	_, dir := openLog(t, c.now)
	for path, most := range map[string]os.FileMode{dir: 0o750, Path(dir, c.now()): 0o640} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if perm := fi.Mode().Perm(); perm&^most != 0 {
			t.Errorf("%s has mode %v, want at most %v", path, perm, most)
		}
	}
	if _, err := Open("", nil); err == nil {
		t.Error("Open with no directory succeeded")
	}
}

func TestLogSwitchesDayInUTC(t *testing.T) {
	// 23:59:59 UTC on the 28th is already the 29th in UTC+2 and still the 28th in UTC-5:
	// only the UTC date may choose the file.
	late := time.Date(2026, 11, 28, 23, 59, 59, 0, time.UTC).In(time.FixedZone("UTC+2", 2*3600))
	c := newClock(late)
	l, dir := openLog(t, c.now)

	if err := l.Write(DownloadStart, 17); err != nil {
		t.Fatal(err)
	}
	c.set(time.Date(2026, 11, 29, 0, 0, 1, 0, time.UTC))
	if err := l.Write(DownloadSuccess, 17, F("Duration", 2*time.Second)); err != nil {
		t.Fatal(err)
	}

	want := map[string][]string{
		"lifecycle-2026-11-28.log": {"2026-11-28T23:59:59Z [DOWNLOAD_START] [TaskId: 17]"},
		"lifecycle-2026-11-29.log": {"2026-11-29T00:00:01Z [DOWNLOAD_SUCCESS] [TaskId: 17] [Duration: 2s]"},
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != len(want) {
		t.Fatalf("%d files in %s, want %d", len(entries), dir, len(want))
	}
	for name, lines := range want {
		if got := readLines(t, filepath.Join(dir, name)); fmt.Sprint(got) != fmt.Sprint(lines) {
			t.Errorf("%s = %q, want %q", name, got, lines)
		}
	}
}

func TestLogAppendsToExistingFile(t *testing.T) {
	c := newClock(time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC))
	l, dir := openLog(t, c.now)
	if err := l.Write(JobReceived, 1); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Write(JobReceived, 2); !errors.Is(err, ErrClosed) {
		t.Fatalf("Write after Close = %v, want ErrClosed", err)
	}
	l2, err := Open(dir, c.now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l2.Close() })
	if err := l2.Write(JobReceived, 3); err != nil {
		t.Fatal(err)
	}
	if got := readLines(t, Path(dir, c.now())); len(got) != 2 {
		t.Fatalf("file holds %q, want two lines", got)
	}
}

func TestLogConcurrentWritersKeepWholeLines(t *testing.T) {
	const (
		logs       = 2 // two Logs on one directory, as two processes would be
		writers    = 4
		perWriter  = 200
		valueBytes = 1000
	)
	c := newClock(time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC))
	_, dir := openLog(t, c.now)
	var wg sync.WaitGroup
	for li := range logs {
		l, err := Open(dir, c.now)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = l.Close() })
		for w := range writers {
			wg.Go(func() {
				pad := strings.Repeat(string(rune('a'+w)), valueBytes)
				for i := range perWriter {
					if err := l.Write(TaskRetry, int64(li*100+w+1), F("N", i), F("Pad", pad)); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
	}
	wg.Wait()

	line := regexp.MustCompile(`^2026-11-28T12:00:00Z \[TASK_RETRY\] \[TaskId: (\d+)\] \[N: \d+\] \[Pad: ([a-z]+)\]$`)
	count := map[string]int{}
	lines := readLines(t, Path(dir, c.now()))
	for _, s := range lines {
		m := line.FindStringSubmatch(s)
		if m == nil || len(m[2]) != valueBytes || strings.Count(m[2], m[2][:1]) != valueBytes {
			t.Fatalf("torn or mixed line: %.120q", s)
		}
		count[m[1]]++
	}
	if len(lines) != logs*writers*perWriter || len(count) != logs*writers {
		t.Fatalf("%d lines from %d tasks, want %d from %d", len(lines), len(count), logs*writers*perWriter, logs*writers)
	}
}
