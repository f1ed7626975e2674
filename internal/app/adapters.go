package app

import (
	"context"
	"net/netip"

	"go.uber.org/zap"

	"github.com/coursedl/worker/internal/egress"

	"github.com/coursedl/worker/internal/pipeline"
	"github.com/coursedl/worker/internal/progress"
	"github.com/coursedl/worker/internal/queue"
)

// taskLocks is queue.Locks as a pipeline.Locker.
type taskLocks struct{ locks *queue.Locks }

func (l taskLocks) Acquire(ctx context.Context, taskID int64) (pipeline.Lock, error) {
	lock, err := l.locks.Acquire(ctx, taskID)
	if err != nil {
		// A nil *queue.Lock would make a pipeline.Lock that is not nil.
		return nil, err
	}
	return lock, nil
}

// taskProgress is progress.Publisher as a pipeline.Progress.
type taskProgress struct{ pub *progress.Publisher }

func (p taskProgress) Task(taskID int64) pipeline.TaskProgress { return p.pub.Task(taskID) }

// egressGuards starts an egress.Proxy per task as the pipeline's guard.
type egressGuards struct {
	allow []netip.Prefix // download.egress_allow
	log   *zap.Logger
}

func (e egressGuards) Guard(ctx context.Context, onRefuse func(host, reason string)) (pipeline.Guard, error) {
	p, err := egress.Start(ctx, egress.Params{
		Allow: e.allow,
		Log:   e.log,
		OnRefuse: func(hostport string, addr netip.Addr, reason string) {
			if addr.IsValid() {
				hostport += " (" + addr.String() + ")"
			}
			onRefuse(hostport, reason)
		},
	})
	if err != nil {
		return nil, err
	}
	return guard{p}, nil
}

// guard is an egress.Proxy as a pipeline.Guard.
type guard struct{ p *egress.Proxy }

func (g guard) URL() string   { return g.p.URL() }
func (g guard) Env() []string { return egress.Env(g.p.URL()) }
func (g guard) Close() error  { return g.p.Close() }
