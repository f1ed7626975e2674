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
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/coursedl/worker/internal/download"
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

// Uploader moves the result to its destination and gives its link;
// *upload.Uploader is one. Upload moves what is left at the end of a task;
// MoveFiles moves files the downloader announced while it goes on, and files
// already at the destination within it; Has looks for one there;
// Destination expands upload.dest.
type Uploader interface {
	Upload(ctx context.Context, req upload.Request, onLine func(process.Stream, []byte)) (upload.Result, error)
	MoveFiles(ctx context.Context, b upload.Batch, onLine func(process.Stream, []byte)) (time.Duration, error)
	Has(ctx context.Context, path string, onLine func(process.Stream, []byte)) (bool, error)
	Destination(req upload.Request) string
}

// Outbox keeps webhook events until the web app has them, and sends them. An
// event is staged before the row is written and released after, so that no
// crash between the two loses it (see outbox.Store.Stage); outbox.Deliverer is
// one.
type Outbox interface {
	Stage(ctx context.Context, id string, ev notify.Event) error
	Release(ctx context.Context, id string, taskID int64) error
	ReleaseStaged(ctx context.Context, taskID int64) (bool, error)
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

// Lock is a held task lock; *queue.Lock is one. Lost is closed when the task
// must stop: another runner took the lock (Err is queue.ErrLockLost), or it
// could not be renewed in time (queue.ErrFenced). Confirm renews it in a round
// trip: nothing irreversible starts unless it returns nil.
type Lock interface {
	Lost() <-chan struct{}
	Err() error
	Confirm(ctx context.Context) error
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

// Host is the download host's state: room on the staging disk, and the breaker
// that pauses intake when tasks keep failing in the downloader alike;
// *intake.Intake is one.
type Host interface {
	// Room is nil when the staging disk has room for a task to start.
	Room() error
	// DownloadFailed counts a downloader failure of kind (intake.Kind; "" for
	// another kind) and reports whether it tripped the breaker.
	DownloadFailed(ctx context.Context, kind string) bool
	// DownloadSucceeded ends a run of downloader failures.
	DownloadSucceeded()
}

// Egress starts the guard the downloader of one task reaches the network
// through; onRefuse is called for each destination it refuses.
type Egress interface {
	Guard(ctx context.Context, onRefuse func(host, reason string)) (Guard, error)
}

// Guard is one task's egress guard: a forward proxy at URL, whose variables
// Env are given to the downloader. Close stops it.
type Guard interface {
	URL() string
	Env() []string
	Close() error
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
	Host         Host    // nil: no disk check, no breaker
	Egress       Egress  // nil: the downloader reaches the network directly
	// CookiesFile is download.cookies_file: each task gets its own copy in its
	// folder ({cookies}), removed once the downloader has exited.
	CookiesFile string
	// Announce is download.announce: the files the downloader announces are
	// moved to the destination while it goes on, at most UploadParallel
	// (upload.parallel) at once, a failed one tried again after
	// UploadBackoff (upload.DefaultRetryBackoff when 0), doubled each time.
	// The zero Announce announces nothing: everything moves at the end.
	Announce       download.Announce
	UploadParallel int
	UploadBackoff  time.Duration
	Log            *zap.Logger
	Now            func() time.Time
}

// Delays of jobs that wait without using up an attempt: after MySQL or Redis
// failed under them, and while another runner holds their task. A task
// deferred by the host (disk low, the course site refusing us) waits BaseDelay.
const (
	retryDelay  = 5 * time.Second
	lockedDelay = 30 * time.Second
)

// errLockLost is the cause of a task's cancellation when its lock was taken.
var errLockLost = errors.New("task lock lost")

// errNotConfirmed says a step that cannot be undone did not start: the task's
// lock could not be confirmed.
var errNotConfirmed = errors.New("task lock not confirmed")

// Handle runs the task of one job and says what becomes of the job: admit
// checks the job and takes its task, run takes the task to its end.
func (p *Pipeline) Handle(ctx context.Context, payload string) queue.Result {
	start := p.now()
	m := p.metrics()
	m.TaskStarted()
	defer func() { m.ObserveStage(metrics.StageTask, p.now().Sub(start)) }()
	t, res := p.admit(ctx, payload)
	if t == nil {
		return res
	}
	defer p.release(ctx, t.rec, t.lock)
	t.start = start
	return p.run(ctx, t)
}

// later gives the job back without using up an attempt: to the head of the queue
// when the worker is stopping, to the delayed set when MySQL or Redis failed or
// another runner took the task.
func (p *Pipeline) later(ctx context.Context, rec *recorder, err error) queue.Result {
	n := note{ended: metrics.ResultRequeued, level: zap.WarnLevel}
	res := queue.Result{Outcome: queue.Retry, Delay: retryDelay}
	switch {
	case errors.Is(context.Cause(ctx), queue.ErrFenced):
		n.msg, n.level = queue.ErrFenced.Error()+"; job waits for recovery", zap.ErrorLevel
		n.with = []zap.Field{zap.Duration("delay", lockedDelay)}
		res.Delay = lockedDelay
	case errors.Is(context.Cause(ctx), errLockLost):
		n.msg, n.with = "task stopped: another runner took its lock; job waits", []zap.Field{zap.Duration("delay", lockedDelay)}
		res.Delay = lockedDelay
	case ctx.Err() != nil:
		n.msg, n.level = "task interrupted; job goes back to the queue", zap.InfoLevel
		res = queue.Result{Outcome: queue.Requeue}
	case errors.Is(err, errNotConfirmed):
		n.msg, n.with = "task stopped: its lock could not be confirmed; job waits", []zap.Field{zap.Error(err), zap.Duration("delay", lockedDelay)}
		res.Delay = lockedDelay
	default:
		n.msg, n.with = "task cannot go on now; job waits", []zap.Field{zap.Error(err), zap.Duration("delay", retryDelay)}
	}
	rec.record(ctx, n)
	return res
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
