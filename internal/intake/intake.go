// Package intake decides whether this worker takes jobs. It does not while an
// operator (workerctl pause) or the breaker paused it, a flag in Redis read
// through rdb, nor while the staging disk has less room than
// download.min_free_mb. The consumer waits on it before each fetch, /readyz
// names why it is closed, and INTAKE_PAUSED / INTAKE_RESUMED lines record each
// pause and its end.
//
// The breaker is here too: when download.breaker_failures tasks in a row fail
// in the downloader for the same reason (the course site answering 401 or 403:
// the cookies expired), it pauses this worker's intake instead of letting every
// paid task after them fail.
//
// It runs no task and decides nothing about one: the pipeline asks Room before
// a task starts and reports each downloader outcome.
package intake

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/coursedl/worker/internal/lifecycle"
	"github.com/coursedl/worker/internal/loop"
	"github.com/coursedl/worker/internal/rdb"
	"github.com/coursedl/worker/internal/staging"
)

// Lifecycle writes the INTAKE_* lines; *lifecycle.Log is one.
type Lifecycle interface {
	Write(event string, taskID int64, fields ...lifecycle.Field) error
}

// Params configure an Intake.
type Params struct {
	Redis           *rdb.Client // its Worker is the worker whose intake this is
	StagingDir      string      // absolute; made if missing
	MinFreeMB       uint64      // download.min_free_mb
	BreakerFailures int         // download.breaker_failures; default 5
	Lifecycle       Lifecycle   // may be nil
	Log             *zap.Logger
	// Every is how often the pause flags and the disk are read; default 2 s.
	Every time.Duration
}

// Intake is the state of this worker's intake. It is safe for concurrent use.
type Intake struct {
	Params
	mu     sync.Mutex
	paused string        // why intake is paused ("" when it is not)
	low    error         // the staging disk's shortage, nil when it has room
	free   uint64        // bytes free on the staging disk at the last look
	opened chan struct{} // closed when intake opens; nil while it is open
	streak streak
}

// New returns an Intake with the defaults applied, open until its first look.
func New(p Params) *Intake {
	if p.BreakerFailures <= 0 {
		p.BreakerFailures = 5
	}
	if p.Every <= 0 {
		p.Every = 2 * time.Second
	}
	if p.Log == nil {
		p.Log = zap.NewNop()
	}
	return &Intake{Params: p}
}

// Run reads the pause flags and the disk at once, then every Every, until ctx
// ends.
func (i *Intake) Run(ctx context.Context) error {
	return loop.Run(ctx, loop.Params{
		Every:   i.Every,
		Timeout: i.Every,
		Log:     i.Log,
		Failing: "cannot read whether intake is paused; keeping the last state",
		Back:    "intake state read again",
	}, func(ctx context.Context) (time.Time, error) { return time.Time{}, i.Look(ctx) })
}

// Look reads the pause flags and the disk now.
func (i *Intake) Look(ctx context.Context) error {
	i.disk()
	why, err := i.Redis.Paused(ctx)
	if err != nil {
		return err
	}
	i.setPaused(why)
	return nil
}

// Closed says why intake is closed, nil while it is open.
func (i *Intake) Closed() error {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.closedLocked()
}

func (i *Intake) closedLocked() error {
	if i.paused != "" {
		return &PausedError{Reason: i.paused}
	}
	return i.low
}

// PausedError says intake is paused, and why.
type PausedError struct{ Reason string }

func (e *PausedError) Error() string { return "intake paused: " + e.Reason }

// Wait returns when intake is open, or ctx's error when ctx ends first.
func (i *Intake) Wait(ctx context.Context) error {
	for {
		i.mu.Lock()
		if i.closedLocked() == nil {
			i.mu.Unlock()
			return nil
		}
		if i.opened == nil {
			i.opened = make(chan struct{})
		}
		opened := i.opened
		i.mu.Unlock()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-opened:
		}
	}
}

// Room reads the staging disk now and says whether a task may start on it: nil,
// or a *staging.LowError naming the shortage.
func (i *Intake) Room() error {
	i.disk()
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.low
}

// Free is the staging disk's free bytes at the last look.
func (i *Intake) Free() uint64 {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.free
}

// disk reads the staging disk's free space and notes a change of its state.
func (i *Intake) disk() {
	free, low := staging.Space(i.StagingDir, i.MinFreeMB)
	var le *staging.LowError
	if low != nil && !errors.As(low, &le) {
		low = fmt.Errorf("staging disk: %w", low)
	}
	i.mu.Lock()
	was := i.low
	i.low, i.free = low, free
	i.openIfOpenLocked()
	i.mu.Unlock()
	switch {
	case low != nil && was == nil:
		i.Log.Warn("no new task starts: staging disk low", zap.Error(low))
	case low == nil && was != nil:
		i.Log.Info("staging disk has room again", zap.Uint64("free_mib", free/staging.MiB))
	}
}

// setPaused notes why intake is paused ("" for not), with a lifecycle line when
// that changes.
func (i *Intake) setPaused(why string) {
	i.mu.Lock()
	was := i.paused
	i.paused = why
	if why == "" {
		i.streak = streak{} // lifted: the breaker counts afresh
	}
	i.openIfOpenLocked()
	i.mu.Unlock()
	switch {
	case why == was:
	case why == "":
		i.line(lifecycle.IntakeResumed, lifecycle.F("Reason", "the pause was lifted"), lifecycle.F("Was", was))
		i.Log.Info("intake resumed", zap.String("was", was))
	case was == "":
		i.line(lifecycle.IntakePaused, lifecycle.F("Reason", why))
		i.Log.Warn("intake paused: no new job is taken; running tasks go on", zap.String("reason", why))
	default:
		i.line(lifecycle.IntakePaused, lifecycle.F("Reason", why))
	}
}

// openIfOpenLocked wakes the waiters when intake has opened.
func (i *Intake) openIfOpenLocked() {
	if i.opened != nil && i.closedLocked() == nil {
		close(i.opened)
		i.opened = nil
	}
}

func (i *Intake) line(event string, fields ...lifecycle.Field) {
	if i.Lifecycle == nil {
		return
	}
	if err := i.Lifecycle.Write(event, 0, fields...); err != nil && !errors.Is(err, lifecycle.ErrClosed) {
		i.Log.Warn("lifecycle line not written", zap.String("event", event), zap.Error(err))
	}
}
