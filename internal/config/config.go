// Package config loads the worker's configuration: one YAML file, every key
// overridable from the environment as WORKER_<KEY> (contract section 6). It is the
// only package that imports viper. Load returns a typed, validated Config or an error
// naming the key at fault; it never logs, and String masks every secret.
package config

import (
	"net/netip"
	"time"

	"github.com/coursedl/worker/internal/download"
)

// Config is the whole configuration, with the contract's defaults applied.
type Config struct {
	Worker     Worker
	Retry      Retry
	Redis      Redis
	MySQL      MySQL
	Enrollment Enrollment
	Download   Download
	Upload     Upload
	Webhook    Webhook
	Logs       Logs
	Metrics    Metrics
	Reconcile  Reconcile
	Console    Console
}

// Worker holds the keys of one worker process.
type Worker struct {
	ID            string        // worker.id: names this process's processing list; unique per process
	Concurrency   int           // worker.concurrency
	ShutdownGrace time.Duration // worker.shutdown_grace
}

// Retry holds the retry policy of transient failures.
type Retry struct {
	MaxAttempts int           // retry.max_attempts
	BaseDelay   time.Duration // retry.base_delay
}

// Redis holds the connection and the queue key.
type Redis struct {
	Addr     string
	Password string
	DB       int
	Queue    string
	Sentinel Sentinel
}

// Sentinel holds redis.sentinel.*: finding Redis through Sentinel (contract
// section 6). With Master set, the worker and workerctl ask the Sentinels at
// Addrs for the master of that name, and follow it across failovers;
// redis.addr is not used.
type Sentinel struct {
	Master   string   // redis.sentinel.master
	Addrs    []string // redis.sentinel.addrs, host:port each
	Password string   // redis.sentinel.password: the Sentinels' own password, a secret
}

// MySQL holds the go-sql-driver DSN.
type MySQL struct {
	DSN string
}

// Enrollment holds the enrollment poller's timing.
type Enrollment struct {
	PollInterval time.Duration
	MaxWait      time.Duration
}

// Download describes the downloader program and the guards around it.
type Download struct {
	Command      []string // argv template with {url}, {dir}, {task_id}, {cookies}, {proxy}
	Timeout      time.Duration
	StagingDir   string
	AllowedHosts []string
	Env          []string // extra environment for the downloader, NAME=value each

	// MinFreeMB is download.min_free_mb: no task starts while the staging
	// filesystem has less free space (0 turns the check off).
	MinFreeMB int
	// KeepFailed is download.keep_failed: how long a failed task's folder is kept.
	KeepFailed time.Duration
	// CookiesFile is download.cookies_file: a path, empty for none. Its contents
	// are a secret: never read here, never logged; the path may be shown. Load
	// checks that it is a regular file the worker can open.
	CookiesFile string
	// EgressGuard is download.egress_guard: the downloader reaches the network
	// only through the worker's guard proxy.
	EgressGuard bool
	// EgressAllow is download.egress_allow: prefixes the guard lets through all
	// the same, masked (10.1.2.3/8 is held as 10.0.0.0/8); a bare address is
	// read as a single-address prefix, /32 or /128.
	EgressAllow []netip.Prefix
	// BreakerFailures is download.breaker_failures: that many tasks in a row
	// failing in the downloader for the same reason pause intake.
	BreakerFailures int
	// Announce is download.announce: which lines of the downloader's output
	// announce a finished file, uploaded at once while the download goes on.
	Announce download.Announce
}

// Upload describes rclone.
type Upload struct {
	Rclone      string
	Config      string
	Dest        string
	Link        bool
	URLTemplate string
	Timeout     time.Duration
	Env         []string // extra environment for rclone, NAME=value each
	// QuotaWait is upload.quota_wait: after the destination reports a quota or
	// rate limit, uploads wait this long.
	QuotaWait time.Duration
	// Parallel is upload.parallel: at most that many uploads of one task's
	// announced files at once.
	Parallel int
}

// Webhook describes the web app's endpoint.
type Webhook struct {
	URL           string
	Secret        string
	Timeout       time.Duration
	RetrySchedule []time.Duration
}

// Logs describes the worker's own log files.
type Logs struct {
	Dir        string
	Level      string // debug, info, warn, error
	Format     string // console or json, for stderr
	MaxSizeMB  int
	MaxBackups int
	MaxAgeDays int
	Compress   bool
}

// Metrics describes the HTTP listener for /metrics, /healthz and /readyz.
type Metrics struct {
	Listen string // empty turns it off
}

// Reconcile holds reconcile.* (contract section 6): comparing the database with
// Redis. Loaded and validated; not used by the worker yet.
type Reconcile struct {
	Interval   time.Duration // reconcile.interval
	StaleAfter time.Duration // reconcile.stale_after
}

// Console holds console.* (contract section 6): the operator's web console of
// workerctl web. Loaded and validated so that one file serves the worker and the
// console; the worker itself does not use them.
type Console struct {
	Listen string   // console.listen: empty turns it off
	Users  []string // console.users: role:name:bcrypt-hash each, a secret
}
