// Package trouble logs a repeating failure when it changes: once when a loop
// starts failing, once when it works again, never on every pass. It owns no
// loop and no retry policy; each loop reports the outcome of each pass.
package trouble

import "go.uber.org/zap"

// Log follows one loop's failures. It is not safe for concurrent use: one Log
// per loop, used from that loop's goroutine.
type Log struct {
	log      *zap.Logger
	failing  string // warned with the error when failures begin
	back     string // logged when a pass works again
	inFailed bool
}

// New returns a Log writing to log: failing when the first failure of a run of
// them comes, back when a pass works after it.
func New(log *zap.Logger, failing, back string) *Log {
	if log == nil {
		log = zap.NewNop()
	}
	return &Log{log: log, failing: failing, back: back}
}

// Report records the outcome of one pass, err nil for success.
func (t *Log) Report(err error) {
	switch {
	case err != nil && !t.inFailed:
		t.log.Warn(t.failing, zap.Error(err))
		t.inFailed = true
	case err == nil && t.inFailed:
		t.log.Info(t.back)
		t.inFailed = false
	}
}
