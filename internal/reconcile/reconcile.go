// Package reconcile makes the database the record Redis is rebuilt from
// (contract sections 1 and 4). It owns two loops of every worker:
//
//   - the watch reads the epoch (rdb.EpochKey) every Check. The epoch is a
//     random value written once; missing or changed, it says that Redis lost
//     data (a flush, a restart without its files, a failover to a replica that
//     lacked it). The worker then restores at once what the loss took from it
//     (its task locks and heartbeat, through OnLoss) and has a pass run;
//   - the pass compares MySQL with Redis every Interval, one worker at a time
//     (rdb.ReconcileLockKey): a row that is pending, processing, downloading or
//     uploading, unchanged for StaleAfter by the database's clock, whose task
//     has no job anywhere in Redis and no lock held, gets its job pushed again,
//     built exactly as the web app builds it, with a TASK_RECONCILED line.
//     After a loss the first worker to see it marks the epoch lost at once
//     (so that a further loss during the handling shows as one); the pass
//     waits Grace after the last sighting (every live worker restores its
//     locks meanwhile), pushes the job of every such row whatever its age, and
//     sends again, under their own webhook-ids, the events of the tasks that
//     ended since the epoch was last seen whole (less Margin); then it writes
//     the epoch whole.
//
// The database keeps neither the downloader's folder name nor a run's
// duration: an event sent again says "task-<id>" and 0 for them. The web app
// de-duplicates by webhook-id, so it keeps the run's own event whenever that
// one arrived first.
//
// It does not run tasks, deliver events or decide what a job is: the queue,
// the outbox and package job do; and it reads the database only through store.
package reconcile

import (
	"context"
	"crypto/rand"
	"sync"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/coursedl/worker/internal/lifecycle"
	"github.com/coursedl/worker/internal/loop"
	"github.com/coursedl/worker/internal/notify"
	"github.com/coursedl/worker/internal/rdb"
	"github.com/coursedl/worker/internal/store"
)

// Rows are the database reads of a pass; *store.Store is one.
type Rows interface {
	StaleTasks(ctx context.Context, unchangedFor time.Duration, afterID int64, limit int) ([]store.Task, error)
	EndedTasks(ctx context.Context, within time.Duration, afterID int64, limit int) ([]store.Ended, error)
}

// Outbox sends an event again under its id unless it is still waiting;
// *outbox.Deliverer is one.
type Outbox interface {
	Resend(ctx context.Context, id string, ev notify.Event) (bool, error)
}

// Lifecycle writes the TASK_RECONCILED lines; *lifecycle.Log is one.
type Lifecycle interface {
	Write(event string, taskID int64, fields ...lifecycle.Field) error
}

// Defaults of the timing that is not configuration.
const (
	// DefaultCheck is how often the epoch is read: a GET a second.
	DefaultCheck = time.Second
	// DefaultMargin is how long before the epoch was last seen whole a task
	// may have ended and still have its event sent again after a loss: an
	// event released then may not have been delivered yet.
	DefaultMargin = 10 * time.Minute
	// lockTTL bounds how long a worker that died in a pass keeps the others
	// from reconciling; a pass extends it page by page.
	lockTTL = time.Minute
	// pageSize is how many rows one query reads.
	pageSize = 1000
)

// Params configure a Reconciler.
type Params struct {
	Redis      *rdb.Client
	Rows       Rows
	Outbox     Outbox
	Lifecycle  Lifecycle     // may be nil
	Interval   time.Duration // reconcile.interval
	StaleAfter time.Duration // reconcile.stale_after
	Check      time.Duration // default DefaultCheck
	Grace      time.Duration // default 2*Check
	Margin     time.Duration // default DefaultMargin
	// OnLoss restores what a loss of data took from this worker (its task
	// locks, its heartbeat). It is called as soon as the loss is seen, before
	// any job is pushed again, and again each time the epoch is seen changed.
	OnLoss func(ctx context.Context)
	Log    *zap.Logger
	Now    func() time.Time
}

// Reconciler is the watch and the pass of one worker.
type Reconciler struct {
	Params
	token string        // this worker's value of the reconcile lock
	wake  chan struct{} // a pass is wanted at once
	next  time.Time     // when the next normal pass is due; the pass loop's only

	mu     sync.Mutex
	known  string    // the epoch as last seen; "" until read
	intact time.Time // when the epoch was last seen whole
	loss   *loss     // a loss seen and not handled yet
}

// loss is a loss of data this worker saw.
type loss struct {
	since  time.Time // the epoch was last seen whole then
	seen   time.Time // when this worker saw it
	before string    // the epoch before
}

// New returns a Reconciler with the defaults applied.
func New(p Params) *Reconciler {
	if p.Check <= 0 {
		p.Check = DefaultCheck
	}
	if p.Grace <= 0 {
		p.Grace = 2 * p.Check
	}
	if p.Margin <= 0 {
		p.Margin = DefaultMargin
	}
	if p.Now == nil {
		p.Now = time.Now
	}
	if p.Log == nil {
		p.Log = zap.NewNop()
	}
	return &Reconciler{Params: p, token: p.Redis.Worker() + "/" + rand.Text(), wake: make(chan struct{}, 1)}
}

// Run watches the epoch and reconciles until ctx ends.
func (r *Reconciler) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		return loop.Run(ctx, loop.Params{
			Every: r.Check, Timeout: r.Check, Log: r.Log, Now: r.Now,
			Failing: "epoch of Redis unreadable; retrying", Back: "epoch of Redis readable again",
		}, func(ctx context.Context) (time.Time, error) { return time.Time{}, r.watch(ctx) })
	})
	g.Go(func() error {
		return loop.Run(ctx, loop.Params{
			Every: r.Interval, Wake: r.wake, Log: r.Log, Now: r.Now,
			Failing: "reconcile pass failing; retrying", Back: "reconcile pass works again",
		}, r.pass)
	})
	return g.Wait()
}

// Wake has a pass run now (when this worker can take the lock).
func (r *Reconciler) Wake() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}
