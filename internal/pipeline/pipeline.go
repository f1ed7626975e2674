// Package pipeline runs the steps of one task in order: check the job against its
// row, wait for enrollment, download into the task's folder, upload with rclone,
// record the result and hand the webhook to the outbox, then clean up. It declares
// the small interfaces it needs; package app wires the real implementations.
//
// It does not fetch or acknowledge jobs (package queue does, from the Result that
// Handle returns) and it does not deliver webhooks (package outbox does).
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/coursedl/worker/internal/download"
	"github.com/coursedl/worker/internal/job"
	"github.com/coursedl/worker/internal/lifecycle"
	"github.com/coursedl/worker/internal/metrics"
	"github.com/coursedl/worker/internal/notify"
	"github.com/coursedl/worker/internal/process"
	"github.com/coursedl/worker/internal/progress"
	"github.com/coursedl/worker/internal/queue"
	"github.com/coursedl/worker/internal/store"
	"github.com/coursedl/worker/internal/tasklog"
	"github.com/coursedl/worker/internal/upload"
)

// Store is the task's row.
type Store interface {
	Task(ctx context.Context, id int64) (store.Task, error)
	SetStatus(ctx context.Context, id int64, status string) error
	Complete(ctx context.Context, id int64, driveURL string) error
	Fail(ctx context.Context, id int64, reason string) error
}

// Enroller waits for the enrollment flag; enroll.ErrTimeout when it never comes.
type Enroller interface {
	Wait(ctx context.Context, taskID int64) error
}

// Downloader runs the configured downloader for a job.
type Downloader interface {
	Run(ctx context.Context, j download.Job, onLines func(process.Stream, [][]byte)) (process.Result, error)
}

// Uploader moves the result to its destination and gives its link.
type Uploader interface {
	Upload(ctx context.Context, req upload.Request, onLine func(process.Stream, []byte)) (upload.Result, error)
}

// Outbox keeps webhook events until the web app has them, and sends them. An
// event is staged before the row is written and released after, so that no
// crash between the two loses it (see outbox.Store.Stage); outbox.Deliverer is
// one.
type Outbox interface {
	Stage(ctx context.Context, id string, ev notify.Event) error
	Release(ctx context.Context, id string, taskID int64, now time.Time) error
	ReleaseStaged(ctx context.Context, taskID int64, now time.Time) (bool, error)
}

// Attempts counts the failed attempts of a task across its runs.
type Attempts interface {
	NextAttempt(ctx context.Context, taskID int64) (int, error)
	ForgetAttempts(ctx context.Context, taskID int64) error
}

// Locker hands out per-task locks: queue.ErrLocked when another runner holds
// the task's. queue.Locks is one, through an adapter (its Acquire returns a
// *queue.Lock).
type Locker interface {
	Acquire(ctx context.Context, taskID int64) (Lock, error)
}

// Lock is a held task lock. Lost is closed if another runner takes it; the task
// must then stop.
type Lock interface {
	Lost() <-chan struct{}
	Release(ctx context.Context) error
}

// Progress publishes the progress events of tasks. progress.Publisher is one,
// through an adapter (its Task returns a *progress.TaskPublisher).
type Progress interface {
	Task(taskID int64) TaskProgress
}

// TaskProgress publishes the events of one task; *progress.TaskPublisher is one.
// Finish or Close ends them.
type TaskProgress interface {
	progress.Updater
	Stage(stage string)
	Finish(ctx context.Context, stage string) error
	Close()
}

// Lifecycle writes the lifecycle lines; *lifecycle.Log is one.
type Lifecycle interface {
	Write(event string, taskID int64, fields ...lifecycle.Field) error
}

// Metrics counts tasks, stage times and bytes moved; *metrics.Metrics is one.
type Metrics interface {
	TaskStarted()
	TaskEnded(result string)
	ObserveStage(stage string, d time.Duration)
	AddBytes(direction string, n int64)
}

// Pipeline holds what every task needs. Its fields are set once before use.
type Pipeline struct {
	Store        Store
	Enroller     Enroller
	Downloader   Downloader
	Uploader     Uploader
	Outbox       Outbox
	Attempts     Attempts
	Locks        Locker
	MaxAttempts  int           // retry.max_attempts
	BaseDelay    time.Duration // retry.base_delay
	Progress     Progress
	Lifecycle    Lifecycle
	TaskLog      tasklog.Options
	AllowedHosts []string
	StagingDir   string  // absolute
	Metrics      Metrics // nil records nothing
	Log          *zap.Logger
	Now          func() time.Time
}

// Delays of jobs that wait without using up an attempt: after MySQL or Redis
// failed under them, and while another runner holds their task.
const (
	retryDelay  = 5 * time.Second
	lockedDelay = 30 * time.Second
)

// errLockLost is the cause of a task's cancellation when its lock was taken.
var errLockLost = errors.New("task lock lost")

// Handle runs the task of one job and says what becomes of the job.
func (p *Pipeline) Handle(ctx context.Context, payload string) queue.Result {
	start := p.now()
	p.metrics().TaskStarted()
	defer func() { p.metrics().ObserveStage(metrics.StageTask, p.now().Sub(start)) }()
	j, err := job.Decode([]byte(payload), p.AllowedHosts)
	if err != nil {
		// j holds the task id, when the payload names one, for the lines about
		// the bad job.
		p.event(lifecycle.JobReceived, j.TaskID)
		return p.reject(j.TaskID, err.Error())
	}
	p.event(lifecycle.JobReceived, j.TaskID)
	log := p.Log.With(zap.Int64("task_id", j.TaskID))
	// The row and the task's lock are asked for at once, two round trips in the
	// time of one; the row is judged first, as if it had been read alone, and a
	// lock taken for a job that goes no further is given back on the way out.
	type locking struct {
		lock Lock
		err  error
	}
	locked := make(chan locking, 1)
	go func() {
		lock, err := p.Locks.Acquire(ctx, j.TaskID)
		locked <- locking{lock, err}
	}()
	row, err := p.Store.Task(ctx, j.TaskID)
	lk := <-locked
	if lk.err == nil {
		defer func() {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if err := lk.lock.Release(rctx); err != nil {
				log.Warn("task lock not released; it expires by itself", zap.Error(err))
			}
		}()
	}
	switch {
	case errors.Is(err, store.ErrNotFound):
		return p.reject(j.TaskID, fmt.Sprintf("no download_tasks row with id %d", j.TaskID))
	case err != nil:
		return p.later(ctx, log, err)
	}
	var orderID *int64
	if row.OrderID.Valid {
		orderID = &row.OrderID.Int64
	}
	if err := job.Match(j, job.Row{Email: row.Email, CourseURL: row.CourseURL, OrderID: orderID}); err != nil {
		return p.reject(j.TaskID, err.Error())
	}
	if row.Status == store.StatusCompleted {
		// A run that crashed after writing the row may have left its webhook
		// staged: send it now.
		if _, err := p.Outbox.ReleaseStaged(ctx, j.TaskID, p.now()); err != nil {
			return p.later(ctx, log, err)
		}
		log.Info("task already completed; job acknowledged and skipped")
		p.metrics().TaskEnded(metrics.ResultSkipped)
		return queue.Result{Outcome: queue.Ack}
	}
	if errors.Is(lk.err, queue.ErrLocked) {
		log.Info("task is being run by another worker; job waits", zap.Duration("delay", lockedDelay))
		p.metrics().TaskEnded(metrics.ResultRequeued)
		return queue.Result{Outcome: queue.Retry, Delay: lockedDelay}
	}
	if lk.err != nil {
		return p.later(ctx, log, lk.err)
	}
	lock := lk.lock
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() {
		select {
		case <-lock.Lost():
			cancel(errLockLost)
		case <-ctx.Done():
		}
	}()
	t := &task{
		id:       j.TaskID,
		orderID:  orderID,
		email:    row.Email,
		url:      row.CourseURL,
		dir:      filepath.Join(p.StagingDir, job.Name(j.TaskID)),
		folder:   job.Name(j.TaskID),
		start:    start,
		enrolled: row.IsEnrolled,
		log:      log,
	}
	return p.run(ctx, t)
}

// reject sends a job to the dead-letter list.
func (p *Pipeline) reject(taskID int64, reason string) queue.Result {
	p.event(lifecycle.JobRejected, taskID, lifecycle.F("Reason", reason))
	p.Log.Warn("job rejected", zap.Int64("task_id", taskID), zap.String("reason", reason))
	p.metrics().TaskEnded(metrics.ResultRejected)
	return queue.Result{Outcome: queue.DeadLetter, Reason: reason}
}

// later gives the job back without using up an attempt: to the head of the queue
// when the worker is stopping, to the delayed set when MySQL or Redis failed or
// another runner took the task.
func (p *Pipeline) later(ctx context.Context, log *zap.Logger, err error) queue.Result {
	p.metrics().TaskEnded(metrics.ResultRequeued)
	switch {
	case errors.Is(context.Cause(ctx), errLockLost):
		log.Warn("task stopped: another runner took its lock; job waits", zap.Duration("delay", lockedDelay))
		return queue.Result{Outcome: queue.Retry, Delay: lockedDelay}
	case ctx.Err() != nil:
		log.Info("task interrupted; job goes back to the queue")
		return queue.Result{Outcome: queue.Requeue}
	}
	log.Warn("task cannot go on now; job waits", zap.Error(err), zap.Duration("delay", retryDelay))
	return queue.Result{Outcome: queue.Retry, Delay: retryDelay}
}

func (p *Pipeline) event(name string, taskID int64, fields ...lifecycle.Field) {
	if err := p.Lifecycle.Write(name, taskID, fields...); err != nil {
		p.Log.Warn("lifecycle line not written", zap.String("event", name), zap.Error(err))
	}
}

func (p *Pipeline) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

func (p *Pipeline) metrics() Metrics {
	if p.Metrics == nil {
		return noMetrics{}
	}
	return p.Metrics
}

// noMetrics records nothing: a Pipeline's Metrics when it has none.
type noMetrics struct{}

func (noMetrics) TaskStarted()                       {}
func (noMetrics) TaskEnded(string)                   {}
func (noMetrics) ObserveStage(string, time.Duration) {}
func (noMetrics) AddBytes(string, int64)             {}

// orderField renders an order id for a lifecycle line.
func orderField(id *int64) lifecycle.Field { return lifecycle.F("OrderId", orderText(id)) }

// isStop reports whether err comes from the task being stopped rather than
// failing: the worker is stopping, or the child was ended by a signal someone
// else sent to stop it (systemd sends SIGTERM to the whole cgroup by default).
func isStop(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return true
	}
	var pe *process.ExitError
	if !errors.As(err, &pe) {
		return false
	}
	if pe.Canceled {
		return true
	}
	return !pe.TimedOut && (pe.Signal == syscall.SIGTERM || pe.Signal == syscall.SIGINT || pe.Signal == syscall.SIGHUP)
}
