package queue

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/coursedl/worker/internal/loop"
	"github.com/coursedl/worker/internal/rdb"
)

// DefaultSchedulerWait is the longest a Scheduler waits between looks.
const DefaultSchedulerWait = 5 * time.Second

// SchedulerParams configure a Scheduler.
type SchedulerParams struct {
	Redis *rdb.Client
	Every time.Duration // the longest wait; default DefaultSchedulerWait
	Log   *zap.Logger
}

// Scheduler gives delayed jobs back to the queue when they are due. Every worker
// runs one; the script makes that safe.
//
// It sleeps until the next delayed job is due, or Every at most (a job delayed
// by another worker, whose own scheduler normally moves it), and is woken by
// Wake when this worker delays one: an idle worker looks every few seconds, not
// every second, and a job still comes back when it is due.
type Scheduler struct {
	SchedulerParams
	wake chan struct{}
}

// NewScheduler returns a Scheduler with the defaults applied.
func NewScheduler(p SchedulerParams) *Scheduler {
	if p.Every <= 0 {
		p.Every = DefaultSchedulerWait
	}
	if p.Log == nil {
		p.Log = zap.NewNop()
	}
	return &Scheduler{SchedulerParams: p, wake: make(chan struct{}, 1)}
}

// Wake has the scheduler look again now: a job was just delayed.
func (s *Scheduler) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run promotes due jobs at once and then whenever the next is due, until ctx
// ends. Due times are on Redis's clock; the wait until the next one is
// measured on this process's monotonic clock.
func (s *Scheduler) Run(ctx context.Context) error {
	return loop.Run(ctx, loop.Params{
		Every:   s.Every,
		Wake:    s.wake,
		Log:     s.Log,
		Failing: "cannot move delayed jobs; retrying",
		Back:    "delayed jobs move again",
	}, func(ctx context.Context) (time.Time, error) {
		_, in, err := s.Redis.PromoteDue(ctx)
		if err != nil || in <= 0 {
			return time.Time{}, err
		}
		return time.Now().Add(in), nil
	})
}
