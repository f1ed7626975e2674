package app

import (
	"context"

	"go.uber.org/zap"

	"github.com/coursedl/worker/internal/queue"
)

// afterLoss gives back to this worker what a loss of Redis data took from it,
// as soon as the reconciler sees the loss and before any job is pushed again:
// the locks of its running tasks (else another worker could take one and run
// it a second time) and its heartbeat (else the recoverer of another could
// take this worker for dead).
func (a *App) afterLoss(locks *queue.Locks) func(ctx context.Context) {
	log := a.log.Named("reconcile")
	return func(ctx context.Context) {
		n, err := locks.Restore(ctx)
		if err != nil {
			log.Error("task locks not restored after Redis lost data", zap.Error(err))
		} else if n > 0 {
			log.Warn("task locks restored after Redis lost data", zap.Int("locks", n))
		}
		if err := a.heartbeat.Claim(ctx); err != nil {
			log.Error("heartbeat not restored after Redis lost data", zap.Error(err))
		}
	}
}
