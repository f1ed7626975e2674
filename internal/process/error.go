package process

import (
	"strconv"
	"syscall"
	"time"
)

// ExitError reports a child that did not finish with exit status 0: it
// exited non-zero, died of a signal, or was stopped because its timeout
// passed or its context was canceled.
type ExitError struct {
	// Program is the base name of the program, for messages.
	Program string
	// ExitCode is the exit status, or -1 if the child died of a signal.
	ExitCode int
	// Signal is the signal that killed the child, 0 if none. When TimedOut
	// or Canceled is set, it is the signal Run sent (SIGTERM or SIGKILL).
	Signal syscall.Signal
	// TimedOut is set when Run stopped the child because Spec.Timeout passed.
	TimedOut bool
	// Timeout is Spec.Timeout, for messages.
	Timeout time.Duration
	// Canceled is set when Run stopped the child because the caller's
	// context was done.
	Canceled bool
	// StderrTail holds the last lines the child wrote to stderr, oldest first.
	StderrTail []string

	cause error // what Unwrap returns: the context error behind TimedOut or Canceled
}

// Error says what happened, e.g. "yt-dlp: exit status 1: ERROR: ...",
// "yt-dlp: timed out after 2h0m0s" or "yt-dlp: killed by signal terminated".
func (e *ExitError) Error() string {
	switch {
	case e.TimedOut:
		return e.Program + ": timed out after " + e.Timeout.String()
	case e.Canceled:
		return e.Program + ": canceled"
	case e.Signal != 0:
		return e.Program + ": killed by signal " + e.Signal.String()
	}
	msg := e.Program + ": exit status " + strconv.Itoa(e.ExitCode)
	if n := len(e.StderrTail); n > 0 {
		msg += ": " + e.StderrTail[n-1]
	}
	return msg
}

// Unwrap returns context.DeadlineExceeded for a timeout and the caller's
// context error for a cancellation, so errors.Is(err, context.Canceled)
// tells a shutdown from a failure. It returns nil otherwise.
func (e *ExitError) Unwrap() error { return e.cause }
