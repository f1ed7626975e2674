package process

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

var (
	// errTimedOut is the cause of a run's context when Spec.Timeout passes.
	errTimedOut = errors.New("process: timeout")
	// errCallbackPanic is the cause of a run's context when OnLine panicked.
	errCallbackPanic = errors.New("process: OnLine panicked")
)

// Result describes a child that ran.
type Result struct {
	// Pid was the child's process id, which was also its process group id.
	Pid int
	// ExitCode is the exit status, or -1 if the child died of a signal.
	ExitCode int
	// Duration is the time from start to exit.
	Duration time.Duration
	// StderrTail holds the last lines the child wrote to stderr, oldest first.
	StderrTail []string
}

// Run starts spec.Path with spec.Args, without a shell, in a new process
// group, streams its output to spec.OnLine and waits for it.
//
// Output is split into lines at '\n' and at '\r', so each redraw of a
// progress bar is a line; "\r\n" is one break and empty lines are dropped.
// stdout and stderr are read concurrently, each in order, with a fixed buffer
// per stream whatever the child prints.
//
// When spec.Timeout passes or ctx is done, the group gets SIGTERM, then
// SIGKILL after spec.KillGrace. When the child exits, whatever is left of its
// group is killed.
//
// Run returns the error *ExitError, with Result filled, when the child exits
// non-zero, dies of a signal, times out or is canceled; any other error means
// it could not be started. If OnLine panics, the child is stopped and Run
// panics with that panic once the child is gone.
func Run(ctx context.Context, spec Spec) (Result, error) {
	p, err := Start(ctx, spec)
	if err != nil {
		return Result{}, err
	}
	return p.Wait()
}

// lookPath resolves the program to an absolute path, so that a relative one
// means the same whatever Spec.Dir is.
func lookPath(name string) (string, error) {
	if name == "" {
		return "", errors.New("process: no program given")
	}
	path, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("process: %w", err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", fmt.Errorf("process: %s: %w", name, err)
	}
	return abs, nil
}

// run is one child process and the goroutines reading its output.
type run struct {
	spec    Spec
	name    string // program base name, for errors
	cmd     *exec.Cmd
	group   group
	out     output
	pipes   [2]*os.File // read ends of stdout and stderr
	readers sync.WaitGroup
	begin   time.Time
}

// start starts the child and the two goroutines reading its output.
//
// The pipes are made here rather than by exec, so that reading them is not
// tied to exec.Cmd.Wait: Run kills what is left of the group as soon as the
// child exits, and then stops reading after Spec.OutputGrace at most.
func (r *run) start(ctx context.Context, path string) error {
	outR, outW, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("process: start %s: %w", r.name, err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		closeAll(outR, outW)
		return fmt.Errorf("process: start %s: %w", r.name, err)
	}
	widenPipe(outW)
	widenPipe(errW)
	// G204: running the argv it is given, never through a shell, is what this
	// package is for.
	cmd := exec.CommandContext(ctx, path, r.spec.Args...) //nolint:gosec // see above
	cmd.Dir = r.spec.Dir
	cmd.Env = r.spec.Env
	if cmd.Env == nil {
		cmd.Env = []string{} // nil would make exec pass the worker's environment
	}
	cmd.Stdout, cmd.Stderr = outW, errW
	// Pdeathsig: a worker killed with SIGKILL takes its children with it. An
	// rclone left running would go on moving the task's files while the job's
	// next run, on this host or another, moves them too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return r.group.terminate(cmd.Process) }
	// exec's own backstop: SIGKILL to the child itself once the grace is
	// over, should the group signal not reach it.
	cmd.WaitDelay = r.spec.KillGrace

	r.begin = time.Now()
	err = cmd.Start()
	closeAll(outW, errW) // the child holds its own copies
	if err != nil {
		closeAll(outR, errR)
		return fmt.Errorf("process: start %s: %w", r.name, err)
	}
	r.cmd = cmd
	r.pipes = [2]*os.File{outR, errR}
	r.readers.Go(func() { r.read(Stdout, outR) })
	r.readers.Go(func() { r.read(Stderr, errR) })
	return nil
}

// read delivers the lines of one stream until EOF or until drain stops it.
func (r *run) read(s Stream, f *os.File) {
	var lr *lineReader
	if r.spec.OnLines == nil {
		lr = newLineReader(r.spec.MaxLine, func(line []byte) { r.out.line(s, line) })
	} else {
		// The lines of one read, as slices of the reader's buffer, handed on
		// before the next read reuses it.
		var batch [][]byte
		flush := func() {
			if len(batch) > 0 {
				r.out.lines(s, batch)
				clear(batch)
				batch = batch[:0]
			}
		}
		lr = newLineReader(r.spec.MaxLine, func(line []byte) {
			batch = append(batch, line)
			if len(batch) == maxBatch {
				flush()
			}
		})
		lr.batch = flush
	}
	_ = lr.readFrom(f) // EOF, or the deadline drain sets
}

// maxBatch bounds the lines of one OnLines call, and so the memory that holds
// them, whatever a read brings (a 64 KiB read of one-byte lines is 32,768).
const maxBatch = 1024

// wait waits for the child, cleans up after it and reports how it ended.
// parent is the caller's context, ctx the run's.
func (r *run) wait(parent, ctx context.Context) (Result, error) {
	waitErr := r.cmd.Wait()
	res := Result{Pid: r.cmd.Process.Pid, Duration: time.Since(r.begin)}
	stopped := r.group.finish(r.cmd.Process)
	r.drain()
	r.out.rethrow()
	res.StderrTail = r.out.tail.strings()

	state := r.cmd.ProcessState
	if state == nil {
		return res, fmt.Errorf("process: wait %s: %w", r.name, waitErr)
	}
	res.ExitCode = state.ExitCode()
	e := &ExitError{
		Program:    r.name,
		ExitCode:   res.ExitCode,
		Timeout:    r.spec.Timeout,
		StderrTail: res.StderrTail,
	}
	if ws, ok := state.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		e.Signal = ws.Signal()
	}
	if stopped {
		if errors.Is(context.Cause(ctx), errTimedOut) {
			e.TimedOut, e.cause = true, context.DeadlineExceeded
		} else {
			e.Canceled, e.cause = true, context.Cause(parent)
		}
	}
	if e.ExitCode == 0 && !e.TimedOut && !e.Canceled {
		return res, nil
	}
	return res, e
}

// drain waits for the readers to reach EOF, which they do at once unless a
// process outside the group still holds the pipes; past Spec.OutputGrace it
// makes them stop. Then it closes the pipes.
func (r *run) drain() {
	done := make(chan struct{})
	go func() {
		r.readers.Wait()
		close(done)
	}()
	t := time.NewTimer(r.spec.OutputGrace)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		for _, f := range r.pipes {
			if f.SetReadDeadline(time.Now()) != nil {
				_ = f.Close() // unblocks the read as well
			}
		}
		<-done
	}
	closeAll(r.pipes[:]...)
}

func closeAll(files ...*os.File) {
	for _, f := range files {
		_ = f.Close()
	}
}
