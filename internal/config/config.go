// Package config loads the worker's configuration: one YAML file, every key
// overridable from the environment as WORKER_<KEY> (contract section 6). It is the
// only package that imports viper. Load returns a typed, validated Config or an error
// naming the key at fault; it never logs, and String masks every secret.
package config

import "time"

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

// Download describes the downloader program.
type Download struct {
	Command      []string // argv template with {url}, {dir}, {task_id}
	Timeout      time.Duration
	StagingDir   string
	AllowedHosts []string
	Env          []string // extra environment for the downloader, NAME=value each
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
