package logfile

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLastLines(t *testing.T) {
	long := strings.Repeat("y", 70<<10) // longer than a read block
	cases := []struct {
		name    string
		content string
		n       int
		want    []string
	}{
		{"empty", "", 5, nil},
		{"one line", "a\n", 5, []string{"a"}},
		{"fewer than n", "a\nb\nc\n", 5, []string{"a", "b", "c"}},
		{"exactly n", "a\nb\nc\n", 3, []string{"a", "b", "c"}},
		{"more than n", "a\nb\nc\nd\n", 2, []string{"c", "d"}},
		{"unfinished last line is left", "a\nb\npart", 5, []string{"a", "b"}},
		{"no line break at all", "part", 5, nil},
		{"blocks", many(5000) + "last\n", 3, []string{"line 4998", "line 4999", "last"}},
		{"line longer than a block", "a\n" + long + "\nz\n", 2, []string{long, "z"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "task.log")
			if err := os.WriteFile(path, []byte(c.content), 0o600); err != nil {
				t.Fatal(err)
			}
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = f.Close() }() // only read from
			got, next, err := Last(f, int64(len(c.content)), c.n)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Fatalf("got %d lines %.80q, want %.80q", len(got), got, c.want)
			}
			wantNext := int64(strings.LastIndexByte(c.content, '\n') + 1)
			if next != wantNext {
				t.Fatalf("next offset %d, want %d", next, wantNext)
			}
		})
	}
}

func many(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "line %d\n", i)
	}
	return b.String()
}

func appendTo(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestFollowerThroughRotationAndTruncation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "task-1.log")
	fl := NewFollower(path)
	defer fl.Close()
	poll := func(want ...string) {
		t.Helper()
		got, err := fl.Poll()
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("poll: %q, want %q", got, want)
		}
	}

	// The file does not exist yet.
	if lines, err := fl.Start(10); err != nil || lines != nil {
		t.Fatalf("start on no file: %q %v", lines, err)
	}
	poll()
	appendTo(t, path, "one\ntw")
	poll("one")
	appendTo(t, path, "o\nthree\n")
	poll("two", "three")
	poll()

	// lumberjack's rotation: the file is renamed and made anew.
	appendTo(t, path, "four\n")
	if err := os.Rename(path, filepath.Join(dir, "task-1-2026-11-28T20-00-00.000.log")); err != nil {
		t.Fatal(err)
	}
	appendTo(t, path, "five\n")
	poll("four", "five")

	// Truncated in place.
	if err := os.WriteFile(path, []byte("six\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	poll("six")

	// Removed: nothing, and no error, until it is back.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	poll()
	appendTo(t, path, "seven\n")
	poll("seven")
}

func TestFollowerStartsAfterTheLastLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "task-1.log")
	appendTo(t, path, "a\nb\nc\nhalf")
	fl := NewFollower(path)
	defer fl.Close()
	lines, err := fl.Start(2)
	if err != nil || fmt.Sprint(lines) != "[b c]" {
		t.Fatalf("start: %q %v", lines, err)
	}
	appendTo(t, path, " done\n")
	got, err := fl.Poll()
	if err != nil || fmt.Sprint(got) != "[half done]" {
		t.Fatalf("poll: %q %v", got, err)
	}
}
