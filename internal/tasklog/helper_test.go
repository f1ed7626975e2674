package tasklog

import (
	"os"
	"strings"
	"testing"
	"time"
)

// openLog opens the log of task id under a fresh logs directory and closes it
// at cleanup.
func openLog(t testing.TB, opts Options, id int64) (*Log, string) {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	l, err := Open(opts, id)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l, Path(opts.Dir, id)
}

// closeLog closes l, failing the test on an error.
func closeLog(t *testing.T, l *Log) {
	t.Helper()
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// lines returns the lines of a file, failing if it ends inside a line.
func lines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) == 0 {
		return nil
	}
	if b[len(b)-1] != '\n' {
		t.Fatalf("%s ends inside a line", path)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

// fixed returns a clock that always says t.
func fixed(t time.Time) func() time.Time { return func() time.Time { return t } }
