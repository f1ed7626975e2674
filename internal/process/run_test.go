package process

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestRunBothStreams(t *testing.T) {
	t.Parallel()
	l := newLines(t)
	spec := childSpec(t, "lines", "50", "0")
	spec.OnLine = l.onLine
	res, err := Run(context.Background(), spec)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	wantOut, wantErr := bothStreams(50)
	if !slices.Equal(l.out, wantOut) {
		t.Errorf("stdout %q, want %q", l.out, wantOut)
	}
	if !slices.Equal(l.err, wantErr) {
		t.Errorf("stderr %q, want %q", l.err, wantErr)
	}
	if res.ExitCode != 0 || res.Pid <= 0 || res.Duration <= 0 {
		t.Errorf("result %+v", res)
	}
	if want := wantErr[30:]; !slices.Equal(res.StderrTail, want) {
		t.Errorf("tail %q, want %q", res.StderrTail, want)
	}
}

func TestRunFakeDownloader(t *testing.T) {
	t.Parallel()
	tests := []struct {
		mode     string
		env      map[string]string
		wantOut  []string // lines stdout must contain, in this order
		wantCode int
	}{
		{"ok", nil, []string{
			"[download] Destination: {dir}/Fake Course/lesson-1.txt",
			"[download] Destination: {dir}/Fake Course/lesson-2.txt",
			"[download]  10.0% of 1.00MiB at 1.00MiB/s ETA 00:01",
			"[download] 100.0% of 1.00MiB at 1.00MiB/s ETA 00:01",
		}, 0},
		{"cr", nil, []string{
			"[download]  10.0% of 1.00MiB at 1.00MiB/s ETA 00:01",
			"[download]  50.0% of 1.00MiB at 1.00MiB/s ETA 00:01",
			"[download] 100.0% of 1.00MiB at 1.00MiB/s ETA 00:01",
			"[download] Destination: {dir}/Fake Course/lesson-1.txt",
		}, 0},
		{"flood", map[string]string{"FAKE_FLOOD_MB": "1"}, []string{
			"flood " + "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123"[:93],
			"[download] Destination: {dir}/Fake Course/lesson-2.txt",
		}, 0},
		{"fail", nil, []string{"[info] extracting https://example.com/course"}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			t.Parallel()
			l := newLines(t)
			spec, dir := fakeDownloader(t, tt.mode, tt.env)
			spec.OnLine = l.onLine
			res, err := Run(context.Background(), spec)
			if tt.wantCode == 0 && err != nil {
				t.Fatalf("Run: %v", err)
			}
			if res.ExitCode != tt.wantCode {
				t.Errorf("exit code %d, want %d", res.ExitCode, tt.wantCode)
			}
			rest := l.out
			for _, want := range tt.wantOut {
				want = strings.ReplaceAll(want, "{dir}", dir)
				i := slices.Index(rest, want)
				if i < 0 {
					t.Fatalf("stdout lacks %q (in order) in %q", want, l.out)
				}
				rest = rest[i+1:]
			}
			for _, line := range l.out {
				if strings.ContainsAny(line, "\r\n") {
					t.Errorf("line %q holds a line break", line)
				}
			}
		})
	}
}

func TestRunExitError(t *testing.T) {
	t.Parallel()
	spec, _ := fakeDownloader(t, "fail", nil)
	res, err := Run(context.Background(), spec)
	e := asExitError(t, err)
	want := "ERROR: fake failure for https://example.com/course"
	if e.ExitCode != 3 || e.Signal != 0 || e.TimedOut || e.Canceled {
		t.Errorf("error %+v", e)
	}
	if !slices.Equal(e.StderrTail, []string{want}) || !slices.Equal(res.StderrTail, e.StderrTail) {
		t.Errorf("tails %q and %q, want [%q]", e.StderrTail, res.StderrTail, want)
	}
	if got := err.Error(); got != "fake-downloader: exit status 3: "+want {
		t.Errorf("message %q", got)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("%v is a context error", err)
	}
}

func TestRunStderrTailBounded(t *testing.T) {
	t.Parallel()
	spec := childSpec(t, "lines", "100", "1")
	spec.TailLines = 3
	_, err := Run(context.Background(), spec)
	e := asExitError(t, err)
	if want := []string{"err 97", "err 98", "err 99"}; !slices.Equal(e.StderrTail, want) {
		t.Errorf("tail %q, want %q", e.StderrTail, want)
	}
}

func TestRunMaxLine(t *testing.T) {
	t.Parallel()
	spec, _ := fakeDownloader(t, "longline", map[string]string{"FAKE_LONGLINE_MB": "1"})
	spec.MaxLine = 1000
	var total, longest int
	spec.OnLine = func(_ Stream, line []byte) {
		total += len(line)
		longest = max(longest, len(line))
	}
	if _, err := Run(context.Background(), spec); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if total != 1<<20 || longest != 1000 {
		t.Errorf("got %d bytes in chunks of at most %d, want %d in chunks of 1000", total, longest, 1<<20)
	}
}

func TestRunEnv(t *testing.T) {
	envPath, err := exec.LookPath("env")
	if err != nil {
		t.Fatal(err)
	}
	self := childSpec(t, "env")
	tests := []struct {
		name string
		spec Spec
		want []string
	}{
		{"exact", Spec{Path: self.Path, Env: slices.Concat(self.Env, []string{"A=1", "B=two words", "EMPTY="})},
			slices.Concat(self.Env, []string{"A=1", "B=two words", "EMPTY="})},
		{"nil is empty", Spec{Path: envPath}, nil},
	}
	t.Setenv("PROCESS_TEST_SECRET", "leak") // must not reach a child
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newLines(t)
			tt.spec.OnLine = l.onLine
			if _, err := Run(context.Background(), tt.spec); err != nil {
				t.Fatalf("Run: %v", err)
			}
			if !slices.Equal(l.out, tt.want) {
				t.Errorf("child env %q, want %q", l.out, tt.want)
			}
		})
	}
}

func TestRunDir(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	l := newLines(t)
	spec := childSpec(t, "pwd")
	spec.Dir, spec.OnLine = dir, l.onLine
	if _, err := Run(context.Background(), spec); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if want := []string{dir}; !slices.Equal(l.out, want) {
		t.Errorf("child ran in %q, want %q", l.out, want)
	}
}

func TestRunStartErrors(t *testing.T) {
	t.Parallel()
	notExec := filepath.Join(t.TempDir(), "script")
	if err := os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		spec Spec
		is   error
	}{
		{"no program", Spec{}, nil},
		{"not found", Spec{Path: "no-such-program-coursedl"}, exec.ErrNotFound},
		{"not executable", Spec{Path: notExec}, os.ErrPermission},
		{"no such dir", Spec{Path: "true", Dir: "/no/such/dir"}, os.ErrNotExist},
		{"context done", Spec{Path: "true"}, context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if errors.Is(tt.is, context.Canceled) {
				cancel()
			}
			_, err := Run(ctx, tt.spec)
			var e *ExitError
			if err == nil || errors.As(err, &e) {
				t.Fatalf("err = %v, want a start error", err)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("err = %v, want one that is %v", err, tt.is)
			}
		})
	}
}

func TestRunOnLinePanic(t *testing.T) {
	t.Parallel()
	var pid int
	spec := childSpec(t, "ignoreterm")
	spec.KillGrace = 100 * time.Millisecond
	spec.OnLine = func(_ Stream, line []byte) {
		_, _ = fmt.Sscanf(string(line), "grandchild %d", &pid) // the first line names the grandchild
		panic("boom")
	}
	defer func() {
		v := recover()
		err, ok := v.(error)
		if !ok || !strings.Contains(err.Error(), "OnLine panicked: boom") {
			t.Fatalf("recovered %v, want the callback's panic", v)
		}
		waitGone(t, pid)
	}()
	_, _ = Run(context.Background(), spec)
	t.Fatal("Run returned")
}
