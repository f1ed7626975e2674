package download

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coursedl/worker/internal/process"
)

// fakeDownloader returns the absolute path of testdata/fake-downloader.
func fakeDownloader(t *testing.T) string {
	t.Helper()
	path, err := filepath.Abs("../../testdata/fake-downloader")
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// collector gathers the lines a run prints.
type collector struct {
	mu    sync.Mutex
	lines []string
}

func (c *collector) onLines(s process.Stream, lines [][]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, line := range lines {
		c.lines = append(c.lines, s.String()+": "+string(line))
	}
}

func TestRunnerRun(t *testing.T) {
	const url = "https://www.udemy.com/course/go/?x=$(touch pwned);id"
	tests := []struct {
		name       string
		mode       string
		timeout    time.Duration
		wantLine   string // a line that must be received; {dir} is the task folder
		wantFolder string
		check      func(t *testing.T, err error)
	}{
		{"ok", "ok", 0, "stdout: [download] Destination: {dir}/Fake Course/lesson-1.txt", "Fake Course",
			func(t *testing.T, err error) {
				if err != nil {
					t.Fatalf("Run: %v", err)
				}
			}},
		{"cr progress", "cr", 0, "stdout: [download]  50.0% of 1.00MiB at 1.00MiB/s ETA 00:01", "Fake Course",
			func(t *testing.T, err error) {
				if err != nil {
					t.Fatalf("Run: %v", err)
				}
			}},
		{"fail", "fail", 0, "stderr: ERROR: fake failure for " + url, "task-7",
			func(t *testing.T, err error) {
				var e *process.ExitError
				if !errors.As(err, &e) || e.ExitCode != 3 {
					t.Fatalf("err = %v, want exit status 3", err)
				}
				want := "download task 7: fake-downloader: exit status 3: ERROR: fake failure for " + url
				if err.Error() != want {
					t.Errorf("message %q, want %q", err, want)
				}
			}},
		{"timeout", "hang", 300 * time.Millisecond, "stdout: hang: started grandchild", "task-7",
			func(t *testing.T, err error) {
				var e *process.ExitError
				if !errors.As(err, &e) || !e.TimedOut {
					t.Fatalf("err = %v, want a timeout", err)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			r := &Runner{
				Command:   []string{fakeDownloader(t), "-", "{url}", "{dir}"},
				Env:       []string{"FAKE_MODE=" + tt.mode},
				Timeout:   tt.timeout,
				KillGrace: 100 * time.Millisecond,
			}
			var c collector
			_, err := r.Run(context.Background(), Job{TaskID: 7, URL: url, Dir: dir}, c.onLines)
			tt.check(t, err)
			want := strings.ReplaceAll(tt.wantLine, "{dir}", dir)
			if !slices.ContainsFunc(c.lines, func(l string) bool { return strings.HasPrefix(l, want) }) {
				t.Errorf("no line %q in %q", want, c.lines)
			}
			if _, err := os.Stat(filepath.Join(dir, "pwned")); err == nil {
				t.Errorf("the URL was run by a shell")
			}
			_ = os.Remove(filepath.Join(dir, "grandchild.pid"))
			if got, _, err := Folder(dir, 7); err != nil || got != tt.wantFolder {
				t.Errorf("Folder = %q, %v; want %q", got, err, tt.wantFolder)
			}
		})
	}
}

func TestRunnerEnv(t *testing.T) {
	t.Setenv("DOWNLOAD_TEST_SECRET", "must not leak")
	dir := t.TempDir()
	r := &Runner{
		Command: []string{fakeDownloader(t), "env", "{url}", "{dir}"},
		Env:     []string{"COOKIES=/etc/worker/cookies.txt", "HTTP_PROXY=http://operator:1"},
	}
	// The job's variables (the egress guard's) win over download.env's.
	job := Job{TaskID: 1, URL: "u", Dir: dir, Env: []string{"HTTP_PROXY=http://127.0.0.1:2"}}
	if _, err := r.Run(context.Background(), job, nil); err != nil {
		t.Fatalf("Run: %v", err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "env.txt"))
	if err != nil {
		t.Fatal(err)
	}
	env := strings.Split(strings.TrimSpace(string(b)), "\n")
	for _, want := range []string{"COOKIES=/etc/worker/cookies.txt", "HTTP_PROXY=http://127.0.0.1:2", "PATH=", "HOME=", "LANG="} {
		if !slices.ContainsFunc(env, func(kv string) bool { return strings.HasPrefix(kv, want) }) {
			t.Errorf("env lacks %q: %q", want, env)
		}
	}
	if slices.ContainsFunc(env, func(kv string) bool { return strings.HasPrefix(kv, "DOWNLOAD_TEST_SECRET=") }) {
		t.Errorf("the worker's environment leaked: %q", env)
	}
}

func TestRunnerInvalid(t *testing.T) {
	tests := []struct {
		name    string
		command []string
		dir     string
	}{
		{"no command", nil, "/tmp"},
		{"empty program", []string{""}, "/tmp"},
		{"relative dir", []string{"true"}, "staging/task-1"},
		{"program not found", []string{"no-such-downloader-coursedl"}, "/tmp"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &Runner{Command: tt.command}
			_, err := r.Run(context.Background(), Job{TaskID: 1, Dir: tt.dir}, nil)
			var e *process.ExitError
			if err == nil || errors.As(err, &e) {
				t.Errorf("err = %v, want a start error", err)
			}
		})
	}
}
