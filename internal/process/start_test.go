package process

import (
	"context"
	"errors"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"
)

// started runs spec with Start and returns the Proc once the child has printed
// its first line (so its signal handlers are in place), with the lines seen.
func started(t *testing.T, ctx context.Context, spec Spec) (*Proc, *lines) {
	t.Helper()
	l := newLines(t)
	first := make(chan struct{})
	var once sync.Once
	l.hook = func(Stream, string) { once.Do(func() { close(first) }) }
	spec.OnLine = l.onLine
	p, err := Start(ctx, spec)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		_ = p.Signal(syscall.SIGKILL)
		_, _ = p.Wait()
	})
	select {
	case <-first:
	case <-time.After(20 * time.Second):
		t.Fatal("the child printed nothing")
	}
	return p, l
}

// waitAsync calls p.Wait, failing the test if it has not returned within a deadline.
func waitAsync(t *testing.T, p *Proc) (Result, error) {
	t.Helper()
	return inBackground(t, "Wait", p.Wait)()
}

func TestStartSignal(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		mode     string
		sig      syscall.Signal
		wantSig  syscall.Signal // the ExitError's, 0 for no error
		wantCode int
	}{
		{"SIGTERM handled, exit 0", "termzero", syscall.SIGTERM, 0, 0},
		{"SIGKILL", "ignoreterm", syscall.SIGKILL, syscall.SIGKILL, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, l := started(t, context.Background(), childSpec(t, tt.mode))
			if p.Pid() <= 0 || gone(p.Pid()) {
				t.Fatalf("pid %d does not run", p.Pid())
			}
			if err := p.Signal(tt.sig); err != nil {
				t.Fatalf("Signal: %v", err)
			}
			res, err := waitAsync(t, p)
			if res.Pid != p.Pid() || res.ExitCode != tt.wantCode {
				t.Errorf("result %+v, want pid %d and exit code %d", res, p.Pid(), tt.wantCode)
			}
			if tt.wantSig == 0 {
				if err != nil {
					t.Fatalf("Wait: %v", err)
				}
			} else {
				e := asExitError(t, err)
				if e.Signal != tt.wantSig || e.Canceled || e.TimedOut {
					t.Errorf("error %+v, want killed by %v only", e, tt.wantSig)
				}
			}
			// Wait again gives the same; the child is gone, so is its group.
			if res2, err2 := p.Wait(); res2.Pid != res.Pid || !errors.Is(err2, err) {
				t.Errorf("second Wait: %+v, %v; first %+v, %v", res2, err2, res, err)
			}
			if err := p.Signal(syscall.SIGTERM); !errors.Is(err, os.ErrProcessDone) {
				t.Errorf("Signal after exit: %v, want os.ErrProcessDone", err)
			}
			waitGone(t, res.Pid)
			if tt.mode == "ignoreterm" {
				waitGone(t, grandchildPid(t, l.out))
			}
		})
	}
}

// TestStartCancel: the end of Start's context stops the whole group, as in Run.
func TestStartCancel(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	spec := childSpec(t, "ignoreterm")
	spec.KillGrace = 200 * time.Millisecond
	p, l := started(t, ctx, spec)
	cancel()
	_, err := waitAsync(t, p)
	e := asExitError(t, err)
	if !e.Canceled || e.Signal != syscall.SIGKILL || !errors.Is(err, context.Canceled) {
		t.Errorf("error %+v, want canceled and killed by SIGKILL", e)
	}
	waitGone(t, grandchildPid(t, l.out))
}

// TestStartOutput: every line is delivered before Wait returns.
func TestStartOutput(t *testing.T) {
	t.Parallel()
	spec := childSpec(t, "lines", "200", "4")
	l := newLines(t)
	spec.OnLine = l.onLine
	p, err := Start(context.Background(), spec)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	_, err = waitAsync(t, p)
	if e := asExitError(t, err); e.ExitCode != 4 {
		t.Errorf("exit code %d, want 4", e.ExitCode)
	}
	if len(l.out) != 200 || len(l.err) != 200 {
		t.Errorf("got %d and %d lines, want 200 of each", len(l.out), len(l.err))
	}
}

func TestStartError(t *testing.T) {
	t.Parallel()
	p, err := Start(context.Background(), Spec{Path: "no-such-program-coursedl"})
	if err == nil || p != nil {
		t.Fatalf("Start = %v, %v; want no Proc and an error", p, err)
	}
}
