// Package loop is the one loop of the worker's background components (the
// heartbeat, the recoverer, the scheduler of delayed jobs, the webhook
// deliverer): do a pass, report trouble when it changes, sleep until the next
// due time, a wake-up or the longest wait, and again until the context ends.
// It owns no Redis key and no retry policy of its own.
package loop

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/coursedl/worker/internal/trouble"
)

// Pass is one round of a loop. It returns when the next round is due (zero:
// after Params.Every) and its error, if it failed.
type Pass func(ctx context.Context) (next time.Time, err error)

// Params shape a loop.
type Params struct {
	// Every is the longest wait between two passes; it must be positive.
	Every time.Duration
	// Timeout bounds one pass; zero leaves it to the pass.
	Timeout time.Duration
	// Wake has the loop pass again at once; nil never does.
	Wake <-chan struct{}
	// Log, Failing and Back log a failure when it starts (Failing, with the
	// error) and when a pass works again (Back).
	Log     *zap.Logger
	Failing string
	Back    string
	// Now is the clock next is compared with; time.Now when nil.
	Now func() time.Time
}

// MinWait keeps a pass whose next round is due in the past (a clock behind
// Redis's scores) from spinning the loop.
const MinWait = 10 * time.Millisecond

// Run passes at once, then whenever the next pass is due, until ctx ends; it
// returns nil then. An error of a pass ended by ctx is not reported.
func Run(ctx context.Context, p Params, pass Pass) error {
	now := p.Now
	if now == nil {
		now = time.Now
	}
	tr := trouble.New(p.Log, p.Failing, p.Back)
	t := time.NewTimer(p.Every)
	defer t.Stop()
	for {
		next, err := once(ctx, p.Timeout, pass)
		if ctx.Err() != nil {
			return nil
		}
		tr.Report(err)
		wait := p.Every
		if !next.IsZero() {
			wait = min(wait, max(next.Sub(now()), MinWait))
		}
		t.Reset(wait)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-p.Wake:
		}
	}
}

// once runs one pass under timeout, if any.
func once(ctx context.Context, timeout time.Duration, pass Pass) (time.Time, error) {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	return pass(ctx)
}

// Sleep waits d or until ctx ends; it reports whether d went by.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
