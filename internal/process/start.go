package process

import (
	"context"
	"path/filepath"
	"sync"
	"syscall"
)

// Proc is a child started by Start that runs in the background: a long-lived
// program such as a server, or a worker that a test kills and starts again.
type Proc struct {
	r       *run
	parent  context.Context // the caller's
	ctx     context.Context // the run's: parent, Spec.Timeout and OnLine's panic
	release func()          // frees ctx's timers once the child is gone

	once sync.Once
	res  Result
	err  error
}

// Start starts spec.Path as Run does (no shell, a new process group, the
// output split into lines for spec.OnLine or spec.OnLines, the whole group
// stopped with SIGTERM then SIGKILL when ctx is done or spec.Timeout passes)
// but returns as soon as the child runs. The callbacks are then called from
// other goroutines, still one call at a time, and every call happens before
// Wait returns. The caller must call Wait, which releases what the run holds.
// An error means the child could not be started; there is then nothing to
// wait for.
func Start(ctx context.Context, spec Spec) (*Proc, error) {
	spec = spec.withDefaults()
	path, err := lookPath(spec.Path)
	if err != nil {
		return nil, err
	}
	runCtx, cancel := context.WithCancelCause(ctx)
	release := func() { cancel(nil) }
	if spec.Timeout > 0 {
		var stop context.CancelFunc
		runCtx, stop = context.WithTimeoutCause(runCtx, spec.Timeout, errTimedOut)
		release = func() { stop(); cancel(nil) }
	}
	r := &run{
		spec:  spec,
		name:  filepath.Base(spec.Path),
		group: group{grace: spec.KillGrace},
		out: output{
			onLine:  spec.OnLine,
			onLines: spec.OnLines,
			tail:    newTail(spec.TailLines),
			stop:    func() { cancel(errCallbackPanic) },
		},
	}
	if err := r.start(runCtx, path); err != nil {
		release()
		return nil, err
	}
	return &Proc{r: r, parent: ctx, ctx: runCtx, release: release}, nil
}

// Pid is the child's process id, which is also its process group id.
func (p *Proc) Pid() int { return p.r.cmd.Process.Pid }

// Signal sends sig to the child alone, as kill(1) given the child's pid does:
// the rest of its group is not signalled (it is killed when the child has
// exited and Wait runs). It returns os.ErrProcessDone once the child has
// exited. To stop the child and everything it started, cancel Start's context.
func (p *Proc) Signal(sig syscall.Signal) error {
	return p.r.cmd.Process.Signal(sig)
}

// Wait waits for the child to exit and then finishes as Run does: it kills
// whatever is left of the child's group, reads the rest of its output (every
// OnLine call happens before Wait returns) and reports how the child ended,
// with Run's errors. A child killed by a signal sent with Signal gives an
// *ExitError with Signal set and neither TimedOut nor Canceled; a child that
// exits 0 after such a signal gives no error. Wait may be called more than
// once, also concurrently: every call returns the first one's result. If
// OnLine panicked, the first call panics with that panic.
func (p *Proc) Wait() (Result, error) {
	p.once.Do(func() {
		defer p.release()
		p.res, p.err = p.r.wait(p.parent, p.ctx)
	})
	return p.res, p.err
}
