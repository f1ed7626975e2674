package process

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestRunTimeoutKillsGroup runs children that ignore SIGTERM and have started
// a grandchild that ignores it too: past the timeout and the grace, both die.
func TestRunTimeoutKillsGroup(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		spec func(t *testing.T) Spec
	}{
		{"fake-downloader", func(t *testing.T) Spec {
			spec, _ := fakeDownloader(t, "hang", nil)
			return spec
		}},
		{"go child", func(t *testing.T) Spec { return childSpec(t, "ignoreterm") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l := newLines(t)
			spec := tt.spec(t)
			spec.Timeout, spec.KillGrace, spec.OnLine = 500*time.Millisecond, 200*time.Millisecond, l.onLine
			res, err := Run(context.Background(), spec)
			e := asExitError(t, err)
			if !e.TimedOut || e.Canceled || e.Signal != syscall.SIGKILL || e.ExitCode != -1 {
				t.Errorf("error %+v, want timed out and killed by SIGKILL", e)
			}
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("%v is not context.DeadlineExceeded", err)
			}
			if want := ": timed out after 500ms"; !strings.HasSuffix(err.Error(), want) {
				t.Errorf("message %q, want suffix %q", err, want)
			}
			waitGone(t, res.Pid)
			waitGone(t, grandchildPid(t, l.out))
		})
	}
}

// TestRunTimeoutGracefulExit: a child that exits 0 on SIGTERM still timed out.
func TestRunTimeoutGracefulExit(t *testing.T) {
	t.Parallel()
	spec := childSpec(t, "termzero")
	spec.Timeout = 300 * time.Millisecond
	res, err := Run(context.Background(), spec)
	e := asExitError(t, err)
	if !e.TimedOut || e.Signal != 0 || res.ExitCode != 0 {
		t.Errorf("error %+v, result %+v: want timed out with exit code 0", e, res)
	}
}

func TestRunCanceled(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
		hook bool // cancel once the child prints
		is   error
	}{
		{"cancel", func() (context.Context, context.CancelFunc) {
			return context.WithCancel(context.Background())
		}, true, context.Canceled},
		{"parent deadline", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 300*time.Millisecond)
		}, false, context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := tt.ctx()
			t.Cleanup(cancel)
			l := newLines(t)
			if tt.hook {
				l.hook = func(Stream, string) { cancel() }
			}
			spec, _ := fakeDownloader(t, "slow", map[string]string{"FAKE_SLOW_SECONDS": "30"})
			spec.Timeout, spec.OnLine = time.Hour, l.onLine
			res, err := Run(ctx, spec)
			e := asExitError(t, err)
			if !e.Canceled || e.TimedOut || e.Signal != syscall.SIGTERM {
				t.Errorf("error %+v, want canceled and killed by SIGTERM", e)
			}
			if !errors.Is(err, tt.is) {
				t.Errorf("%v is not %v", err, tt.is)
			}
			if want := "fake-downloader: canceled"; err.Error() != want {
				t.Errorf("message %q, want %q", err, want)
			}
			waitGone(t, res.Pid)
		})
	}
}

// TestRunForeignSignal: a child killed by a signal Run did not send is
// neither timed out nor canceled.
func TestRunForeignSignal(t *testing.T) {
	t.Parallel()
	res, err := Run(context.Background(), childSpec(t, "selfterm"))
	e := asExitError(t, err)
	if e.Signal != syscall.SIGTERM || e.TimedOut || e.Canceled || res.ExitCode != -1 {
		t.Errorf("error %+v, want killed by SIGTERM only", e)
	}
	if want := "killed by signal terminated"; !strings.HasSuffix(err.Error(), want) {
		t.Errorf("message %q, want suffix %q", err, want)
	}
}

// TestRunGrandchildHoldsPipes: the child exits 0 but leaves a grandchild that
// holds stdout and stderr open. Run must not wait for it: a grandchild in the
// group is killed, one that left it (setsid) is given up on after OutputGrace.
func TestRunGrandchildHoldsPipes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		args   []string
		killed bool
	}{
		{"in the group", nil, true},
		{"in its own session", []string{"setsid"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l := newLines(t)
			spec := childSpec(t, "orphan", tt.args...)
			spec.OutputGrace, spec.OnLine = 300*time.Millisecond, l.onLine
			_, err := runAsync(t, context.Background(), spec)()
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			pid := grandchildPid(t, l.out)
			if tt.killed {
				waitGone(t, pid)
				return
			}
			t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
			if gone(pid) {
				t.Errorf("grandchild %d outside the group was killed", pid)
			}
		})
	}
}

// TestRunHangingPidFile checks the hang mode's pid file agrees with its output.
func TestRunHangingPidFile(t *testing.T) {
	t.Parallel()
	l := newLines(t)
	spec, dir := fakeDownloader(t, "hang", nil)
	spec.Timeout, spec.KillGrace, spec.OnLine = 300*time.Millisecond, 100*time.Millisecond, l.onLine
	_, _ = Run(context.Background(), spec)
	b, err := os.ReadFile(filepath.Join(dir, "grandchild.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid != grandchildPid(t, l.out) {
		t.Fatalf("pid file %q, output %q", b, l.out)
	}
	waitGone(t, pid)
}
