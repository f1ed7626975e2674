package queue

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/coursedl/worker/internal/loop"
	"github.com/coursedl/worker/internal/rdb"
)

// RecovererParams configure a Recoverer.
type RecovererParams struct {
	Redis *rdb.Client   // its Worker is never recovered by itself
	Lease time.Duration // default DefaultLease
	Every time.Duration // default DefaultRecoverEvery
	Log   *zap.Logger
	// OnRecovered is called for each job given back, with the dead worker's id.
	OnRecovered func(payload, worker string)
}

// Recoverer gives the jobs of dead workers back to the queue. Every worker runs
// one; the script makes concurrent passes safe.
type Recoverer struct{ RecovererParams }

// NewRecoverer returns a Recoverer with the defaults applied.
func NewRecoverer(p RecovererParams) *Recoverer {
	if p.Lease <= 0 {
		p.Lease = DefaultLease
	}
	if p.Every <= 0 {
		p.Every = DefaultRecoverEvery
	}
	if p.Log == nil {
		p.Log = zap.NewNop()
	}
	return &Recoverer{p}
}

// Run passes at once, then every Every, until ctx ends.
func (r *Recoverer) Run(ctx context.Context) error {
	return loop.Run(ctx, loop.Params{
		Every:   r.Every,
		Timeout: r.Every,
		Log:     r.Log,
		Failing: "recoverer failing",
		Back:    "recoverer back",
	}, func(ctx context.Context) (time.Time, error) {
		_, err := r.Pass(ctx)
		return time.Time{}, err
	})
}

// Pass recovers once: workers whose heartbeat is older than the lease, and
// processing lists that belong to no live worker. It returns how many jobs
// went back. Ages are measured on Redis's clock, inside its scripts: a host
// whose clock is off does not take a live worker for dead.
func (r *Recoverer) Pass(ctx context.Context) (int, error) {
	suspects, err := r.Redis.Suspects(ctx, r.Lease)
	if err != nil {
		return 0, err
	}
	total := 0
	for _, id := range suspects {
		moved, err := r.Redis.RecoverWorker(ctx, id, r.Lease)
		for _, p := range moved {
			r.Log.Warn("job of a dead worker recovered", zap.String("worker", id))
			if r.OnRecovered != nil {
				r.OnRecovered(p, id)
			}
		}
		total += len(moved)
		if err != nil {
			return total, err
		}
	}
	return total, nil
}
