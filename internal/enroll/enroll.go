// Package enroll waits for the web app's enrollment flag (download_tasks.is_enrolled)
// by polling it. It owns no SQL: it asks a Checker, which the store satisfies.
package enroll

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrTimeout says the flag was not set within the wait. Its text is the exact
// error_message of contract section 2.
var ErrTimeout = errors.New("enrollment required")

// Checker reads the enrollment flag of a task.
type Checker interface {
	Enrolled(ctx context.Context, taskID int64) (bool, error)
}

// Poller polls a Checker every Interval for at most MaxWait.
type Poller struct {
	Checker  Checker
	Interval time.Duration
	MaxWait  time.Duration
}

// Wait returns nil once the task is enrolled, ErrTimeout when MaxWait passes first,
// or the checker's error (the caller decides whether it is worth a retry). It looks
// at once, then every Interval, and a last time at the deadline.
func (p *Poller) Wait(ctx context.Context, taskID int64) error {
	deadline := time.Now().Add(p.MaxWait)
	ticker := time.NewTicker(p.Interval)
	defer ticker.Stop()
	timeout := time.NewTimer(p.MaxWait)
	defer timeout.Stop()
	last := false
	for {
		ok, err := p.Checker.Enrolled(ctx, taskID)
		if err != nil {
			return fmt.Errorf("enrollment of task %d: %w", taskID, err)
		}
		if ok {
			return nil
		}
		if last || !time.Now().Before(deadline) {
			return ErrTimeout
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ticker.C:
		case <-timeout.C:
			last = true
		}
	}
}
