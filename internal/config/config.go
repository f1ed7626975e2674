// Package config loads the worker's configuration: one YAML file, every key
// overridable from the environment as WORKER_<KEY> (contract section 6). It is the
// only package that imports viper. Load returns a typed, validated Config or an error
// naming the key at fault; it never logs, and String masks every secret.
package config

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/spf13/viper"
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

// defaults are the contract's defaults, plus the project's own keys. Every key the
// worker reads is listed, so that viper binds its WORKER_ variable.
var defaults = map[string]any{
	"worker.id":                "",
	"worker.concurrency":       2,
	"worker.shutdown_grace":    "30s",
	"retry.max_attempts":       3,
	"retry.base_delay":         "30s",
	"redis.addr":               "127.0.0.1:6379",
	"redis.password":           "",
	"redis.db":                 0,
	"redis.queue":              "queue:downloads",
	"mysql.dsn":                "",
	"enrollment.poll_interval": "2s",
	"enrollment.max_wait":      "15s",
	"download.command":         []string{},
	"download.timeout":         "2h",
	"download.staging_dir":     "staging",
	"download.allowed_hosts":   []string{"www.udemy.com"},
	"download.env":             []string{},
	"upload.rclone":            "rclone",
	"upload.config":            "",
	"upload.dest":              "",
	"upload.link":              true,
	"upload.url_template":      "",
	"upload.timeout":           "2h",
	"upload.env":               []string{},
	"webhook.url":              "",
	"webhook.secret":           "",
	"webhook.timeout":          "10s",
	"webhook.retry_schedule":   []string{"5s", "5m", "30m", "2h", "5h", "10h", "14h", "20h", "24h"},
	"logs.dir":                 "logs",
	"logs.level":               "info",
	"logs.format":              "console",
	"logs.max_size_mb":         100,
	"logs.max_backups":         10,
	"logs.max_age_days":        30,
	"logs.compress":            false,
	"metrics.listen":           "127.0.0.1:9108",
}

// Keys lists every configuration key, sorted.
func Keys() []string {
	keys := make([]string, 0, len(defaults))
	for k := range defaults {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Load reads the YAML file at path (none when path is empty), applies WORKER_
// environment overrides from environ (os.Environ() when nil) and validates the result.
func Load(path string, environ []string) (*Config, error) {
	c, err := decode(path, environ, nil)
	if err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// LoadForTool reads the configuration as Load does, for the operator's tool
// (workerctl), and validates only the keys such a tool uses: redis.*, mysql.dsn
// when it is set, and logs.*. A worker's file is accepted whatever its download,
// upload and webhook keys hold, so the tool runs without the secrets it does not
// need (webhook.secret). A command that needs MySQL checks that mysql.dsn is set.
func LoadForTool(path string, environ []string) (*Config, error) {
	c, err := decode(path, environ, toolKey)
	if err != nil {
		return nil, err
	}
	var v validation
	c.checkRedis(&v)
	if c.MySQL.DSN != "" {
		c.checkMySQL(&v)
	}
	c.checkLogs(&v)
	if err := v.err(); err != nil {
		return nil, err
	}
	return c, nil
}

// toolKey reports whether LoadForTool looks at key.
func toolKey(key string) bool {
	return strings.HasPrefix(key, "redis.") || strings.HasPrefix(key, "mysql.") || strings.HasPrefix(key, "logs.")
}

// decode reads the file and the environment into a Config, with defaults, and
// reports keys whose values have the wrong type (only those for which only
// returns true, when only is not nil); it does not validate values.
func decode(path string, environ []string, only func(key string) bool) (*Config, error) {
	v := viper.New()
	for k, d := range defaults {
		v.SetDefault(k, d)
	}
	if path != "" {
		v.SetConfigFile(path)
		v.SetConfigType("yaml")
		if err := v.ReadInConfig(); err != nil {
			return nil, fmt.Errorf("config file %s: %w", path, err)
		}
	}
	if environ == nil {
		environ = os.Environ()
	}
	env := envMap(environ)
	for k := range defaults {
		if val, ok := env["WORKER_"+strings.ToUpper(strings.ReplaceAll(k, ".", "_"))]; ok {
			v.Set(k, val)
		}
	}
	r := reader{v: v, only: only}
	c := &Config{
		Worker: Worker{
			ID:            r.str("worker.id"),
			Concurrency:   r.int("worker.concurrency"),
			ShutdownGrace: r.duration("worker.shutdown_grace"),
		},
		Retry: Retry{MaxAttempts: r.int("retry.max_attempts"), BaseDelay: r.duration("retry.base_delay")},
		Redis: Redis{
			Addr:     r.str("redis.addr"),
			Password: r.str("redis.password"),
			DB:       r.int("redis.db"),
			Queue:    r.str("redis.queue"),
		},
		MySQL: MySQL{DSN: r.str("mysql.dsn")},
		Enrollment: Enrollment{
			PollInterval: r.duration("enrollment.poll_interval"),
			MaxWait:      r.duration("enrollment.max_wait"),
		},
		Download: Download{
			Command:      r.strings("download.command"),
			Timeout:      r.duration("download.timeout"),
			StagingDir:   r.str("download.staging_dir"),
			AllowedHosts: r.strings("download.allowed_hosts"),
			Env:          r.env("download.env"),
		},
		Upload: Upload{
			Rclone:      r.str("upload.rclone"),
			Config:      r.str("upload.config"),
			Dest:        r.str("upload.dest"),
			Link:        r.bool("upload.link"),
			URLTemplate: r.str("upload.url_template"),
			Timeout:     r.duration("upload.timeout"),
			Env:         r.env("upload.env"),
		},
		Webhook: Webhook{
			URL:           r.str("webhook.url"),
			Secret:        r.str("webhook.secret"),
			Timeout:       r.duration("webhook.timeout"),
			RetrySchedule: r.durations("webhook.retry_schedule"),
		},
		Logs: Logs{
			Dir:        r.str("logs.dir"),
			Level:      r.str("logs.level"),
			Format:     r.str("logs.format"),
			MaxSizeMB:  r.int("logs.max_size_mb"),
			MaxBackups: r.int("logs.max_backups"),
			MaxAgeDays: r.int("logs.max_age_days"),
			Compress:   r.bool("logs.compress"),
		},
		Metrics: Metrics{Listen: r.str("metrics.listen")},
	}
	if len(r.errs) > 0 {
		return nil, errors.Join(r.errs...)
	}
	if c.Worker.ID == "" {
		host, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("worker.id: empty, and no host name to default to: %w", err)
		}
		c.Worker.ID = host
	}
	return c, nil
}

// Validate checks every key and returns all problems at once, each naming its key.
func (c *Config) Validate() error {
	var v validation
	c.checkWorker(&v)
	c.checkRedis(&v)
	c.checkMySQL(&v)
	c.checkTaskKeys(&v)
	c.checkLogs(&v)
	return v.err()
}

// validation collects one error per bad key.
type validation struct{ errs []error }

func (v *validation) bad(key, format string, args ...any) {
	v.errs = append(v.errs, fmt.Errorf("%s: "+format, append([]any{key}, args...)...))
}

func (v *validation) positive(key string, d time.Duration) {
	if d <= 0 {
		v.bad(key, "must be a positive duration, got %s", d)
	}
}

func (v *validation) err() error { return errors.Join(v.errs...) }

// checkWorker checks worker.* and retry.*.
func (c *Config) checkWorker(v *validation) {
	if c.Worker.Concurrency < 1 {
		v.bad("worker.concurrency", "must be at least 1, got %d", c.Worker.Concurrency)
	}
	if strings.ContainsAny(c.Worker.ID, " \t\r\n") {
		v.bad("worker.id", "must not hold white space, got %q", c.Worker.ID)
	}
	if c.Worker.ShutdownGrace < 0 {
		v.bad("worker.shutdown_grace", "must not be negative, got %s", c.Worker.ShutdownGrace)
	}
	if c.Retry.MaxAttempts < 1 {
		v.bad("retry.max_attempts", "must be at least 1, got %d", c.Retry.MaxAttempts)
	}
	v.positive("retry.base_delay", c.Retry.BaseDelay)
}

// checkRedis checks redis.*.
func (c *Config) checkRedis(v *validation) {
	if c.Redis.Addr == "" {
		v.bad("redis.addr", "is required")
	}
	if c.Redis.DB < 0 || c.Redis.DB > 15 {
		v.bad("redis.db", "must be 0 to 15, got %d", c.Redis.DB)
	}
	if c.Redis.Queue == "" {
		v.bad("redis.queue", "is required")
	}
}

// checkMySQL checks mysql.dsn.
func (c *Config) checkMySQL(v *validation) {
	if c.MySQL.DSN == "" {
		v.bad("mysql.dsn", "is required (a go-sql-driver DSN such as user:pass@tcp(127.0.0.1:3306)/app)")
	} else if _, err := mysql.ParseDSN(c.MySQL.DSN); err != nil {
		v.bad("mysql.dsn", "is not a valid DSN") // the parser's message may quote the password
	}
}

// checkTaskKeys checks what running a task needs: enrollment.*, download.*,
// upload.* and webhook.*.
func (c *Config) checkTaskKeys(v *validation) {
	v.positive("enrollment.poll_interval", c.Enrollment.PollInterval)
	if c.Enrollment.MaxWait < 0 {
		v.bad("enrollment.max_wait", "must not be negative, got %s", c.Enrollment.MaxWait)
	}
	if len(c.Download.Command) == 0 || strings.TrimSpace(c.Download.Command[0]) == "" {
		v.bad("download.command", "is required: the downloader's argv as a list, e.g. [yt-dlp, --newline, -P, \"{dir}\", \"{url}\"]")
	}
	v.positive("download.timeout", c.Download.Timeout)
	if c.Download.StagingDir == "" {
		v.bad("download.staging_dir", "is required")
	}
	if len(c.Download.AllowedHosts) == 0 {
		v.bad("download.allowed_hosts", "must name at least one host")
	}
	for _, h := range c.Download.AllowedHosts {
		if h == "" || strings.ContainsAny(h, "/:@ ") {
			v.bad("download.allowed_hosts", "%q is not a host name", h)
		}
	}
	if c.Upload.Rclone == "" {
		v.bad("upload.rclone", "is required")
	}
	if c.Upload.Dest == "" {
		v.bad("upload.dest", "is required (an rclone destination such as gdrive:Courses/{folder})")
	}
	if !c.Upload.Link && c.Upload.URLTemplate == "" {
		v.bad("upload.url_template", "is required when upload.link is false")
	}
	v.positive("upload.timeout", c.Upload.Timeout)
	if u, err := url.Parse(c.Webhook.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		v.bad("webhook.url", "must be an http or https URL, got %q", RedactURL(c.Webhook.URL))
	}
	if err := checkSecret(c.Webhook.Secret); err != nil {
		v.bad("webhook.secret", "%v", err)
	}
	v.positive("webhook.timeout", c.Webhook.Timeout)
	if len(c.Webhook.RetrySchedule) == 0 {
		v.bad("webhook.retry_schedule", "must hold at least one delay")
	}
	for _, d := range c.Webhook.RetrySchedule {
		v.positive("webhook.retry_schedule", d)
	}
}

// checkLogs checks logs.*.
func (c *Config) checkLogs(v *validation) {
	if c.Logs.Dir == "" {
		v.bad("logs.dir", "is required")
	}
	switch c.Logs.Level {
	case "debug", "info", "warn", "error":
	default:
		v.bad("logs.level", "must be debug, info, warn or error, got %q", c.Logs.Level)
	}
	if c.Logs.Format != "console" && c.Logs.Format != "json" {
		v.bad("logs.format", "must be console or json, got %q", c.Logs.Format)
	}
	if c.Logs.MaxSizeMB < 1 {
		v.bad("logs.max_size_mb", "must be at least 1, got %d", c.Logs.MaxSizeMB)
	}
	if c.Logs.MaxBackups < 0 {
		v.bad("logs.max_backups", "must not be negative (0 keeps every rotated file), got %d", c.Logs.MaxBackups)
	}
	if c.Logs.MaxAgeDays < 0 {
		v.bad("logs.max_age_days", "must not be negative (0 keeps rotated files whatever their age), got %d", c.Logs.MaxAgeDays)
	}
}

// checkSecret accepts "whsec_" followed by standard base64 of at least 16 bytes. Its
// error never quotes the secret.
func checkSecret(s string) error {
	if s == "" {
		return errors.New("is required, in whsec_<base64> form")
	}
	b64, ok := strings.CutPrefix(s, "whsec_")
	if !ok {
		return errors.New("must start with whsec_ (Standard Webhooks form)")
	}
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return errors.New("the part after whsec_ is not valid base64")
	}
	if len(key) < 16 {
		return fmt.Errorf("the key is %d bytes; at least 16 are needed", len(key))
	}
	return nil
}

// reader converts viper's values, collecting one error per bad key.
type reader struct {
	v    *viper.Viper
	only func(key string) bool // keys whose errors count; nil for all
	errs []error
}

func (r *reader) fail(key string, format string, args ...any) {
	if r.only != nil && !r.only(key) {
		return
	}
	r.errs = append(r.errs, fmt.Errorf("%s: "+format, append([]any{key}, args...)...))
}

func (r *reader) str(key string) string {
	switch x := r.v.Get(key).(type) {
	case nil:
		return ""
	case string:
		return x
	case int, int64, float64, bool:
		return fmt.Sprint(x)
	default:
		r.fail(key, "must be a string, got %T", x)
		return ""
	}
}

func (r *reader) int(key string) int {
	switch x := r.v.Get(key).(type) {
	case int:
		return x
	case int64:
		return int(x)
	case float64:
		if x == float64(int(x)) {
			return int(x)
		}
	case string:
		if n, err := strconv.Atoi(strings.TrimSpace(x)); err == nil {
			return n
		}
	}
	r.fail(key, "must be a whole number, got %v", r.v.Get(key))
	return 0
}

func (r *reader) bool(key string) bool {
	switch x := r.v.Get(key).(type) {
	case bool:
		return x
	case string:
		if b, err := strconv.ParseBool(strings.TrimSpace(x)); err == nil {
			return b
		}
	}
	r.fail(key, "must be true or false, got %v", r.v.Get(key))
	return false
}

func (r *reader) duration(key string) time.Duration {
	return r.parseDuration(key, r.v.Get(key))
}

func (r *reader) parseDuration(key string, val any) time.Duration {
	switch x := val.(type) {
	case time.Duration:
		return x
	case string:
		d, err := time.ParseDuration(strings.TrimSpace(x))
		if err == nil {
			return d
		}
	case int:
		if x == 0 {
			return 0
		}
	}
	r.fail(key, "must be a Go duration such as 30s or 2h, got %q", fmt.Sprint(val))
	return 0
}

// list returns a list value; a string (from the environment) must be a JSON array.
func (r *reader) list(key string) ([]any, bool) {
	switch x := r.v.Get(key).(type) {
	case nil:
		return nil, true
	case []any:
		return x, true
	case []string:
		out := make([]any, len(x))
		for i, s := range x {
			out[i] = s
		}
		return out, true
	case string:
		if strings.TrimSpace(x) == "" {
			return nil, true
		}
		var out []any
		if err := json.Unmarshal([]byte(x), &out); err != nil {
			r.fail(key, "must be a list (in the environment, a JSON array such as [\"a\",\"b\"])")
			return nil, false
		}
		return out, true
	}
	r.fail(key, "must be a list, got %T", r.v.Get(key))
	return nil, false
}

func (r *reader) strings(key string) []string {
	items, ok := r.list(key)
	if !ok {
		return nil
	}
	out := make([]string, 0, len(items))
	for i, it := range items {
		s, ok := it.(string)
		if !ok {
			switch it.(type) {
			case int, int64, float64, bool:
				s = fmt.Sprint(it)
			default:
				r.fail(key, "item %d must be a string, got %T", i, it)
				return nil
			}
		}
		out = append(out, s)
	}
	return out
}

func (r *reader) durations(key string) []time.Duration {
	items, ok := r.list(key)
	if !ok {
		return nil
	}
	out := make([]time.Duration, 0, len(items))
	for _, it := range items {
		before := len(r.errs)
		d := r.parseDuration(key, it)
		if len(r.errs) > before {
			return nil
		}
		out = append(out, d)
	}
	return out
}

// env reads a list of NAME=value strings. (A list, not a map: viper folds map keys to
// lower case, and environment names are case-sensitive.)
func (r *reader) env(key string) []string {
	items := r.strings(key)
	for _, kv := range items {
		name, _, ok := strings.Cut(kv, "=")
		if !ok || name == "" || strings.ContainsAny(name, " \t\n") {
			r.fail(key, "items must be NAME=value, got %q", redactValue(kv))
			return nil
		}
	}
	return items
}

// redactValue keeps the name of a NAME=value pair and hides its value; an item
// without '=' may be a value pasted alone, and is hidden whole.
func redactValue(kv string) string {
	if name, _, ok := strings.Cut(kv, "="); ok {
		return name + "=***"
	}
	return mask
}

func envMap(environ []string) map[string]string {
	m := make(map[string]string, len(environ))
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}
