// Package queue runs the worker's side of the reliable queue: the Consumer that
// fetches jobs into this worker's processing list, hands them to a Handler and
// settles each from its Result (acknowledge, requeue, delay, dead-letter); the
// Heartbeat that tells the others this worker is alive; the Recoverer that gives
// the jobs of dead workers back; the Scheduler that brings delayed jobs back
// when due; and the per-task Locks.
//
// Every Redis command goes through package rdb, which owns the keys and the
// scripts; this package owns the loops and their timing. It does not decode
// jobs: payloads are opaque strings.
package queue

import (
	"context"
	"fmt"
	"time"
)

// Outcome says what becomes of a job once its handler has returned.
type Outcome int

// Outcomes of a handled job.
const (
	// Ack removes the job: its task has ended (completed, failed, or skipped).
	Ack Outcome = iota
	// Requeue puts the job back at the head of the queue at once: the worker is
	// stopping, or the task was interrupted.
	Requeue
	// Retry puts the job in the delayed set for Result.Delay: a transient
	// failure, or a task locked by another runner.
	Retry
	// DeadLetter moves the job to dl:dead with Result.Reason.
	DeadLetter
)

func (o Outcome) String() string {
	switch o {
	case Ack:
		return "ack"
	case Requeue:
		return "requeue"
	case Retry:
		return "retry"
	case DeadLetter:
		return "dead-letter"
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// Result is a handler's verdict on a job.
type Result struct {
	Outcome Outcome
	Reason  string        // for DeadLetter
	Delay   time.Duration // for Retry: how long the job waits in the delayed set
}

// Handler runs the task of one job. ctx is canceled when the worker stops waiting
// for running tasks; a handler then returns Requeue promptly.
type Handler interface {
	Handle(ctx context.Context, payload string) Result
}
