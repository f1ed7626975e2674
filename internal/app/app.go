// Package app wires the worker: it connects to Redis and MySQL, builds the
// pipeline, the queue consumer and the webhook deliverer from the configuration,
// and runs them until the context ends. It holds no business logic.
package app

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/coursedl/worker/internal/config"
	"github.com/coursedl/worker/internal/download"
	"github.com/coursedl/worker/internal/enroll"
	"github.com/coursedl/worker/internal/intake"
	"github.com/coursedl/worker/internal/job"
	"github.com/coursedl/worker/internal/lifecycle"
	"github.com/coursedl/worker/internal/metrics"
	"github.com/coursedl/worker/internal/notify"
	"github.com/coursedl/worker/internal/outbox"
	"github.com/coursedl/worker/internal/pipeline"
	"github.com/coursedl/worker/internal/progress"
	"github.com/coursedl/worker/internal/queue"
	"github.com/coursedl/worker/internal/rdb"
	"github.com/coursedl/worker/internal/reconcile"
	"github.com/coursedl/worker/internal/sdnotify"
	"github.com/coursedl/worker/internal/staging"
	"github.com/coursedl/worker/internal/store"
	"github.com/coursedl/worker/internal/tasklog"
	"github.com/coursedl/worker/internal/upload"
)

// App is a running worker's parts.
type App struct {
	cfg       *config.Config
	log       *zap.Logger
	client    redis.UniversalClient
	redis     *rdb.Client
	store     *store.Store
	lifecycle *lifecycle.Log
	consumer  *queue.Consumer
	intake    *intake.Intake
	janitor   *staging.Janitor
	heartbeat *queue.Heartbeat
	recoverer *queue.Recoverer
	scheduler *queue.Scheduler
	deliverer *outbox.Deliverer
	reconcile *reconcile.Reconciler
	metrics   *metrics.Metrics
	server    *metrics.Server // nil when metrics.listen is empty
	notifier  *sdnotify.Notifier
	closers   []func() error
}

// New connects to Redis and MySQL and builds the worker. Close releases what it
// opened, also after an error.
func New(ctx context.Context, cfg *config.Config, log *zap.Logger) (a *App, err error) {
	a = &App{cfg: cfg, log: log}
	defer func() {
		if err != nil {
			_ = a.Close()
		}
	}()
	hk, err := readHooks(log)
	if err != nil {
		return a, err
	}
	stagingDir, err := filepath.Abs(cfg.Download.StagingDir)
	if err == nil {
		err = os.MkdirAll(stagingDir, 0o750)
	}
	if err != nil {
		return a, fmt.Errorf("download.staging_dir: %w", err)
	}
	signer, err := notify.NewSigner(cfg.Webhook.Secret)
	if err != nil {
		return a, fmt.Errorf("webhook.secret: %w", err)
	}

	dial, err := a.connectRedis(ctx)
	if err != nil {
		return a, err
	}
	if err := waitFor(ctx, log, "mysql", func(ctx context.Context) error {
		s, err := store.Open(ctx, cfg.MySQL.DSN)
		if err == nil {
			a.store = s
		}
		return err
	}); err != nil {
		return a, err
	}
	a.closers = append(a.closers, a.store.Close)
	a.lifecycle, err = lifecycle.Open(cfg.Logs.Dir, hk.now)
	if err != nil {
		return a, fmt.Errorf("logs.dir: %w", err)
	}
	a.closers = append(a.closers, a.lifecycle.Close)

	a.intake = intake.New(intake.Params{
		Redis:           a.redis,
		StagingDir:      stagingDir,
		MinFreeMB:       uint64(cfg.Download.MinFreeMB), //nolint:gosec // G115: validated >= 0
		BreakerFailures: cfg.Download.BreakerFailures,
		Lifecycle:       a.lifecycle,
		Log:             log.Named("intake"),
	})
	if err := a.observe(ctx); err != nil {
		return a, err
	}
	a.notifier = sdnotify.New(log.Named("systemd"))

	a.deliverer = outbox.NewDeliverer(outbox.Params{
		Redis:     a.redis,
		Sender:    &notify.Sender{URL: cfg.Webhook.URL, Signer: signer, Timeout: cfg.Webhook.Timeout, Now: hk.now},
		Schedule:  cfg.Webhook.RetrySchedule,
		Timeout:   cfg.Webhook.Timeout,
		Lifecycle: a.lifecycle,
		Metrics:   a.metrics,
		Log:       log.Named("webhook"),
		Now:       hk.now,
	})

	// Task locks are fenced by the heartbeat too: a worker taken for dead has
	// its locks freed with its jobs.
	a.heartbeat = queue.NewHeartbeat(queue.HeartbeatParams{Redis: a.redis, Concurrency: cfg.Worker.Concurrency, Log: log.Named("heartbeat"),
		Now: hk.now, Host: hk.host, BootID: hk.bootID})
	locks := queue.NewLocks(queue.LocksParams{Redis: a.redis, Log: log.Named("lock"), Alive: a.heartbeat})
	pub := progress.NewPublisher(a.redis, log.Named("progress"))
	pub.Now = hk.now
	p := &pipeline.Pipeline{
		Store:    a.store,
		Enroller: &enroll.Poller{Checker: a.store, Interval: cfg.Enrollment.PollInterval, MaxWait: cfg.Enrollment.MaxWait},
		Downloader: &download.Runner{
			Command: cfg.Download.Command,
			Timeout: cfg.Download.Timeout,
			Env:     cfg.Download.Env,
		},
		Uploader: &upload.Uploader{
			Rclone:      cfg.Upload.Rclone,
			Config:      cfg.Upload.Config,
			Dest:        cfg.Upload.Dest,
			Link:        cfg.Upload.Link,
			URLTemplate: cfg.Upload.URLTemplate,
			Timeout:     cfg.Upload.Timeout,
			Env:         cfg.Upload.Env,
			Quota:       upload.Gate{Wait: cfg.Upload.QuotaWait},
			Log:         log.Named("upload"),
		},
		Outbox:      a.deliverer,
		Locks:       taskLocks{locks},
		MaxAttempts: cfg.Retry.MaxAttempts,
		BaseDelay:   cfg.Retry.BaseDelay,
		Progress:    taskProgress{pub},
		Lifecycle:   a.lifecycle,
		TaskLog: tasklog.Options{
			Dir:        cfg.Logs.Dir,
			MaxSizeMB:  cfg.Logs.MaxSizeMB,
			MaxBackups: cfg.Logs.MaxBackups,
			Compress:   cfg.Logs.Compress,
			Now:        hk.now,
		},
		AllowedHosts:   cfg.Download.AllowedHosts,
		StagingDir:     stagingDir,
		Metrics:        a.metrics,
		Host:           a.intake,
		CookiesFile:    cfg.Download.CookiesFile,
		Announce:       cfg.Download.Announce,
		UploadParallel: cfg.Upload.Parallel,
		Log:            log.Named("task"),
		Now:            hk.now,
	}
	if cfg.Download.EgressGuard {
		p.Egress = egressGuards{allow: cfg.Download.EgressAllow, log: log.Named("egress")}
	}
	a.janitor = staging.NewJanitor(staging.JanitorParams{
		StagingDir: stagingDir,
		LogsDir:    cfg.Logs.Dir,
		Rows:       a.store,
		Running:    locks.Holds,
		KeepFailed: cfg.Download.KeepFailed,
		LogMaxAge:  time.Duration(cfg.Logs.MaxAgeDays) * 24 * time.Hour,
		Log:        log.Named("staging"),
	})
	// The blocking fetch waits on a connection of its own, which a stop can cut
	// short: the wait can then be long, and an idle worker wakes up seldom.
	a.closers = append(a.closers, a.redis.BlockOnDial(dial).Close)
	p.Attempts = a.redis
	a.recoverer = queue.NewRecoverer(queue.RecovererParams{Redis: a.redis, Log: log.Named("recoverer"), OnRecovered: a.recovered})
	a.scheduler = queue.NewScheduler(queue.SchedulerParams{Redis: a.redis, Log: log.Named("scheduler")})
	a.reconcile = reconcile.New(reconcile.Params{
		Redis:      a.redis,
		Rows:       a.store,
		Outbox:     a.deliverer,
		Lifecycle:  a.lifecycle,
		Interval:   cfg.Reconcile.Interval,
		StaleAfter: cfg.Reconcile.StaleAfter,
		OnLoss:     a.afterLoss(locks),
		Log:        log.Named("reconcile"),
	})
	a.consumer = queue.NewConsumer(queue.ConsumerParams{
		Redis:         a.redis,
		Handler:       p,
		Concurrency:   cfg.Worker.Concurrency,
		ShutdownGrace: cfg.Worker.ShutdownGrace,
		Block:         fetchBlock,
		Metrics:       a.metrics,
		Log:           log.Named("queue"),
		OnReclaimed:   func(payload string) { a.recovered(payload, cfg.Worker.ID) },
		OnDelayed:     a.scheduler.Wake,
		Intake:        a.intake,
	})
	return a, nil
}

// observe makes the metrics, and the server of /metrics, /healthz and /readyz
// when metrics.listen is set.
func (a *App) observe(ctx context.Context) error {
	a.metrics = metrics.New()
	if err := a.metrics.Register(&metrics.Depths{Redis: a.redis, Lease: queue.DefaultLease}); err != nil {
		return err
	}
	if err := a.metrics.GaugeFunc("staging_free_bytes", "Bytes free on the staging disk (download.staging_dir) at the last look.",
		func() float64 { return float64(a.intake.Free()) }); err != nil {
		return err
	}
	// The floor as a gauge, so that an alert compares the two without a number
	// of its own that could drift from the configuration.
	minFree := float64(a.cfg.Download.MinFreeMB) * staging.MiB
	if err := a.metrics.GaugeFunc("staging_min_free_bytes", "download.min_free_mb in bytes: with less free on the staging disk no task starts.",
		func() float64 { return minFree }); err != nil {
		return err
	}
	if err := a.metrics.GaugeFunc("intake_paused", "1 while this worker's intake is paused (workerctl pause, or the breaker), else 0.",
		func() float64 { return boolFloat(errors.As(a.intake.Closed(), new(*intake.PausedError))) }); err != nil {
		return err
	}
	if a.cfg.Metrics.Listen == "" {
		return nil
	}
	var err error
	a.server, err = metrics.NewServer(ctx, metrics.ServerOptions{
		Addr:    a.cfg.Metrics.Listen,
		Metrics: a.metrics,
		Log:     a.log.Named("metrics"),
		Checks: []metrics.Check{
			{Name: "redis", Probe: a.redis.Ping},
			{Name: "mysql", Probe: a.store.Ping},
			{Name: "intake", Probe: func(context.Context) error { return a.intake.Closed() }},
		},
	})
	return err // it names metrics.listen
}

// MetricsAddr is the address /metrics, /healthz and /readyz listen on ("" when
// metrics.listen is empty): the port chosen when metrics.listen gave port 0.
func (a *App) MetricsAddr() string {
	if a.server == nil {
		return ""
	}
	return a.server.Addr()
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// fetchBlock is how long an idle worker's fetch waits for a job in one BLMOVE;
// a stop does not wait for it (rdb.Client.BlockOn).
const fetchBlock = 5 * time.Second

// Run works until ctx ends, then shuts down in two phases (see queue.Consumer)
// and returns nil after a clean stop.
func (a *App) Run(ctx context.Context) error {
	if err := a.start(ctx); err != nil {
		if ctx.Err() != nil {
			// Stopped while starting: no job was taken yet, so this is a clean
			// stop. What RecoverOwn moved is back in the queue already.
			a.log.Info("stopped during start-up", zap.Error(err))
			return nil
		}
		return err
	}
	a.log.Info("worker started",
		zap.String("worker_id", a.cfg.Worker.ID),
		zap.String("queue", a.cfg.Redis.Queue),
		zap.Int("concurrency", a.cfg.Worker.Concurrency))

	// The helpers (heartbeat, recoverer, scheduler, deliverer, reconciler) outlive the
	// consumer: the heartbeat must go on while running tasks finish, and the
	// events of the last tasks are sent when the web app answers.
	helpersCtx, stopHelpers := context.WithCancel(context.WithoutCancel(ctx))
	defer stopHelpers()
	g, gctx := errgroup.WithContext(helpersCtx)
	g.Go(func() error { return a.heartbeat.Run(gctx) })
	g.Go(func() error { return a.recoverer.Run(gctx) })
	g.Go(func() error { return a.scheduler.Run(gctx) })
	g.Go(func() error { return a.deliverer.Run(gctx) })
	g.Go(func() error { return a.reconcile.Run(gctx) })
	g.Go(func() error { return a.intake.Run(gctx) })
	g.Go(func() error { return a.janitor.Run(gctx) })
	if a.server != nil {
		g.Go(func() error { return a.server.Run(gctx) })
	}
	g.Go(func() error { return a.notifier.RunWatchdog(gctx, a.heartbeat.Alive) })
	g.Go(func() error {
		defer stopHelpers()
		return a.consumer.Run(ctx)
	})
	_ = a.notifier.Ready("taking jobs from " + a.cfg.Redis.Queue)
	go func() {
		select {
		case <-ctx.Done():
			_ = a.notifier.Stopping("stopping: no new jobs, running tasks finish or go back to the queue")
		case <-helpersCtx.Done():
		}
	}()
	err := g.Wait()
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	leaveCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if lerr := a.heartbeat.Leave(leaveCtx); lerr != nil {
		a.log.Warn("worker not deregistered; its jobs are recovered by the others", zap.Error(lerr))
	}
	a.log.Info("worker stopped")
	return err
}

// recovered writes the TASK_RECOVERED line of a job given back to the queue.
func (a *App) recovered(payload, worker string) {
	id := job.TaskID([]byte(payload))
	if err := a.lifecycle.Write(lifecycle.TaskRecovered, id, lifecycle.F("Worker", worker)); err != nil {
		a.log.Warn("lifecycle line not written", zap.Error(err))
	}
}

// start claims the worker id and gives back the jobs an earlier run left; the
// intake looks at its pause flags and disk before the first fetch.
func (a *App) start(ctx context.Context) error {
	if err := a.heartbeat.Claim(ctx); err != nil {
		return err
	}
	if err := a.intake.Look(ctx); err != nil {
		return err
	}
	return a.recoverOwn(ctx)
}

// recoverOwn gives the jobs a previous run of this worker id left in its
// processing list back to the queue.
func (a *App) recoverOwn(ctx context.Context) error {
	moved, err := a.redis.RecoverOwn(ctx)
	if err != nil {
		return err
	}
	for _, p := range moved {
		a.log.Warn("job of an earlier run of this worker recovered", zap.Int64("task_id", job.TaskID([]byte(p))))
		a.recovered(p, a.cfg.Worker.ID)
	}
	return nil
}

// Close releases connections and files.
func (a *App) Close() error {
	var errs []error
	for i := len(a.closers) - 1; i >= 0; i-- {
		errs = append(errs, a.closers[i]())
	}
	return errors.Join(errs...)
}

// waitFor runs check until it passes, with backoff while the service cannot be
// reached (it may still be starting, as under docker-compose); it gives up at once
// on any other error (a wrong password waits for nothing) and when ctx ends.
func waitFor(ctx context.Context, log *zap.Logger, what string, check func(context.Context) error) error {
	wait := 250 * time.Millisecond
	logged := false
	for {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := check(cctx)
		cancel()
		switch {
		case err == nil:
			if logged {
				log.Info(what + " answers")
			}
			return nil
		case ctx.Err() != nil:
			return fmt.Errorf("%s: %w", what, ctx.Err())
		case !unreachable(err):
			return fmt.Errorf("%s: %w", what, err)
		case !logged:
			log.Warn("waiting for "+what, zap.Error(err))
			logged = true
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", what, ctx.Err())
		case <-time.After(wait):
		}
		wait = min(2*wait, 10*time.Second)
	}
}

// unreachable reports whether err says the service could not be reached, as
// opposed to refusing us (bad credentials, unknown database).
func unreachable(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, mysql.ErrInvalidConn) || errors.Is(err, driver.ErrBadConn) {
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, "connection refused") || strings.Contains(msg, "LOADING")
}
