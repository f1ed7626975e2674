package tasklog

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coursedl/worker/internal/testutil"
)

func TestOpen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "logs")
	l, path := openLog(t, Options{Dir: dir}, 42)
	if path != filepath.Join(dir, "tasks", "task-42.log") {
		t.Fatalf("Path = %s", path)
	}
	for p, most := range map[string]os.FileMode{filepath.Dir(path): 0o750, path: 0o640} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if perm := fi.Mode().Perm(); perm&^most != 0 {
			t.Errorf("%s has mode %v, want at most %v", p, perm, most)
		}
	}
	closeLog(t, l)
	if err := l.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
	l.Line(SourceWorker, []byte("after close")) // dropped, no panic
}

func TestOpenRejects(t *testing.T) {
	blocked := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(blocked, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		dir  string
		id   int64
	}{
		{"no dir", "", 1},
		{"zero id", t.TempDir(), 0},
		{"negative id", t.TempDir(), -5},
		{"dir is a file", blocked, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if l, err := Open(Options{Dir: tt.dir}, tt.id); err == nil {
				_ = l.Close()
				t.Fatal("Open succeeded")
			}
		})
	}
}

func TestAppendsAcrossOpens(t *testing.T) {
	dir := t.TempDir()
	for i := range 2 {
		l, _ := openLog(t, Options{Dir: dir}, 7)
		l.Printf("run %d", i)
		closeLog(t, l)
	}
	if got := lines(t, Path(dir, 7)); len(got) != 2 {
		t.Fatalf("file = %q, want the lines of both runs", got)
	}
}

func TestCloseReportsWriteError(t *testing.T) {
	dir := t.TempDir()
	l, _ := openLog(t, Options{Dir: dir}, 5)
	breakTasksDir(t, dir)
	l.Line(SourceDownload, []byte("lost"))
	if err := l.Close(); err == nil || !strings.Contains(err.Error(), "task 5") {
		t.Fatalf("Close = %v, want the write error for task 5", err)
	}
}

// breakTasksDir takes the tasks folder under dir away, a file in its place,
// so that the first write, which opens the log file, fails.
func breakTasksDir(t *testing.T, dir string) {
	t.Helper()
	if err := os.RemoveAll(filepath.Join(dir, "tasks")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tasks"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
}

// A flood is written from a second goroutine (see handOffLocked); its write
// errors reach Close all the same.
func TestCloseReportsBackgroundWriteError(t *testing.T) {
	dir := t.TempDir()
	l, _ := openLog(t, Options{Dir: dir}, 6)
	breakTasksDir(t, dir)
	for range 3 * flushSize / len(benchLine) {
		l.Line(SourceDownload, benchLine)
	}
	if l.bg == nil {
		t.Fatal("three buffers of lines were written without the background writer")
	}
	if err := l.Close(); err == nil || !strings.Contains(err.Error(), "task 6") {
		t.Fatalf("Close = %v, want the write error for task 6", err)
	}
}

func TestFlushesWhileOpen(t *testing.T) {
	l, path := openLog(t, Options{}, 9)
	l.Line(SourceDownload, []byte("[download]   1.0% of 10MiB"))
	testutil.Eventually(t, 5*time.Second, func() bool {
		b, err := os.ReadFile(path)
		return err == nil && strings.HasSuffix(string(b), "1.0% of 10MiB\n")
	}, "line on disk before Close")
	l.Line(SourceDownload, []byte("[download]   2.0% of 10MiB"))
	testutil.Eventually(t, 5*time.Second, func() bool {
		b, err := os.ReadFile(path)
		return err == nil && strings.HasSuffix(string(b), "2.0% of 10MiB\n")
	}, "second line on disk before Close")
}

func TestRotation(t *testing.T) {
	const (
		maxBackups = 2
		lineText   = 1000
		total      = 3 << 20
	)
	dir := t.TempDir()
	l, path := openLog(t, Options{Dir: dir, MaxSizeMB: 1, MaxBackups: maxBackups}, 11)
	text := []byte(strings.Repeat("y", lineText))
	for n := 0; n < total; n += lineText {
		l.Line(SourceDownload, text)
	}
	closeLog(t, l)

	files := func() []string {
		m, err := filepath.Glob(filepath.Join(dir, "tasks", "task-11.log*"))
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	got := files()
	if len(got) != maxBackups+1 {
		t.Fatalf("files %q, want the log and %d backups", got, maxBackups)
	}
	re := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \[download\] y{1000}$`)
	for _, f := range got {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() > 1<<20 {
			t.Errorf("%s is %d bytes, over 1 MiB", f, fi.Size())
		}
		for _, s := range lines(t, f) {
			if !re.MatchString(s) {
				t.Fatalf("%s holds a broken line %.80q", f, s)
			}
		}
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("current log missing: %v", err)
	}
}

func TestConcurrentLinesStayWhole(t *testing.T) {
	const (
		writers   = 8
		perWriter = 500
	)
	l, path := openLog(t, Options{}, 12)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			pad := strings.Repeat(string(rune('a'+w)), 200)
			for i := range perWriter {
				l.Line(SourceDownload, fmt.Appendf(nil, "w%d n%d %s\n", w, i, pad))
			}
		})
	}
	wg.Wait()
	closeLog(t, l)

	re := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \[download\] w(\d) n(\d+) ([a-z]{200})$`)
	next := make(map[string]int)
	got := lines(t, path)
	for _, s := range got {
		m := re.FindStringSubmatch(s)
		if m == nil || strings.Count(m[3], m[3][:1]) != 200 || m[3][0] != 'a'+m[1][0]-'0' {
			t.Fatalf("torn line %.100q", s)
		}
		if want := fmt.Sprint(next[m[1]]); m[2] != want {
			t.Fatalf("writer %s: line n%s, want n%s (lines of one writer keep their order)", m[1], m[2], want)
		}
		next[m[1]]++
	}
	if len(got) != writers*perWriter {
		t.Fatalf("%d lines, want %d", len(got), writers*perWriter)
	}
}

// Opening and closing many task logs leaves no goroutine behind (lumberjack's
// Logger would leave one each).
func TestNoGoroutinePerLog(t *testing.T) {
	dir := t.TempDir()
	before := runtime.NumGoroutine()
	for id := int64(1); id <= 200; id++ {
		l, err := Open(Options{Dir: dir}, id)
		if err != nil {
			t.Fatal(err)
		}
		l.Printf("hello")
		if id%20 == 0 { // a flood, written in the background
			for range 3 * flushSize / len(benchLine) {
				l.Line(SourceDownload, benchLine)
			}
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	testutil.Eventually(t, 5*time.Second, func() bool {
		return runtime.NumGoroutine() <= before+2
	}, "goroutines back to where they were")
}

func TestRotationCompressed(t *testing.T) {
	dir := t.TempDir()
	l, _ := openLog(t, Options{Dir: dir, MaxSizeMB: 1, MaxBackups: 1, Compress: true}, 12)
	text := []byte(strings.Repeat("z", 1000))
	for n := 0; n < 3<<20; n += 1000 {
		l.Line(SourceDownload, text)
	}
	closeLog(t, l)
	m, _ := filepath.Glob(filepath.Join(dir, "tasks", "task-12.log*"))
	if len(m) != 2 || !strings.HasSuffix(m[1], ".log.1.gz") {
		t.Fatalf("files %q, want the log and one gzipped backup", m)
	}
}
