package config

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
)

// Validate checks every key and returns all problems at once, each naming its key.
// It looks at the file system for one key: download.cookies_file, when set, must
// be a regular file this process can open (its contents are not read).
func (c *Config) Validate() error {
	var v validation
	c.checkWorker(&v)
	c.checkRedis(&v)
	c.checkMySQL(&v)
	c.checkTaskKeys(&v)
	c.checkLogs(&v)
	c.checkReconcile(&v)
	c.checkConsole(&v)
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
	// Through Sentinel, redis.addr is not used: the Sentinels name the master.
	if c.Redis.Sentinel.Master != "" && len(c.Redis.Sentinel.Addrs) == 0 {
		v.bad("redis.sentinel.addrs", "is required when redis.sentinel.master is set (host:port of each Sentinel)")
	}
	for _, a := range c.Redis.Sentinel.Addrs {
		if host, port, err := net.SplitHostPort(a); err != nil || host == "" || port == "" {
			v.bad("redis.sentinel.addrs", "%q is not host:port", a)
		}
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
		v.bad("download.command", "is required: the downloader's argv as a list, e.g. [yt-dlp, --ignore-config, --no-cache-dir, --newline, -P, \"{dir}\", --, \"{url}\"]")
	}
	if c.Download.CookiesFile == "" && slices.ContainsFunc(c.Download.Command, func(arg string) bool { return strings.Contains(arg, "{cookies}") }) {
		v.bad("download.command", "uses {cookies}, but download.cookies_file is empty")
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
	if c.Download.MinFreeMB < 0 {
		v.bad("download.min_free_mb", "must not be negative (0 turns the check off), got %d", c.Download.MinFreeMB)
	}
	v.positive("download.keep_failed", c.Download.KeepFailed)
	if c.Download.CookiesFile != "" {
		if err := checkReadableFile(c.Download.CookiesFile); err != nil {
			v.bad("download.cookies_file", "%v", err)
		}
	}
	if c.Download.BreakerFailures < 1 {
		v.bad("download.breaker_failures", "must be at least 1, got %d", c.Download.BreakerFailures)
	}
	c.checkUpload(v)
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

// checkUpload checks upload.*.
func (c *Config) checkUpload(v *validation) {
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
	v.positive("upload.quota_wait", c.Upload.QuotaWait)
	if c.Upload.Parallel < 1 || c.Upload.Parallel > 16 {
		v.bad("upload.parallel", "must be 1 to 16, got %d", c.Upload.Parallel)
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

// checkReconcile checks reconcile.*.
func (c *Config) checkReconcile(v *validation) {
	v.positive("reconcile.interval", c.Reconcile.Interval)
	v.positive("reconcile.stale_after", c.Reconcile.StaleAfter)
}

// checkConsole checks console.*. Its errors name a user, never quote a hash.
func (c *Config) checkConsole(v *validation) {
	if c.Console.Listen != "" {
		if _, port, err := net.SplitHostPort(c.Console.Listen); err != nil || port == "" {
			v.bad("console.listen", "must be host:port such as 127.0.0.1:9109, got %q", c.Console.Listen)
		}
	}
	seen := map[string]bool{}
	for i, u := range c.Console.Users {
		role, name, hash := splitUser(u)
		switch {
		case role != "viewer" && role != "operator":
			v.bad("console.users", "item %d: must be role:name:bcrypt-hash with role viewer or operator", i+1)
		case name == "":
			v.bad("console.users", "item %d: the user name is empty", i+1)
		case !isBcrypt(hash):
			v.bad("console.users", "user %q: the hash is not a bcrypt hash ($2a$, $2b$ or $2y$, 60 characters)", name)
		case seen[name]:
			v.bad("console.users", "user %q is listed twice", name)
		}
		seen[name] = true
	}
}

// splitUser splits a console.users item into role, name and hash.
func splitUser(u string) (role, name, hash string) {
	parts := strings.SplitN(u, ":", 3)
	for len(parts) < 3 {
		parts = append(parts, "")
	}
	return parts[0], parts[1], parts[2]
}

func isBcrypt(h string) bool {
	return len(h) == 60 && (strings.HasPrefix(h, "$2a$") || strings.HasPrefix(h, "$2b$") || strings.HasPrefix(h, "$2y$"))
}

// checkReadableFile checks that path is a regular file this process can open,
// without reading it.
func checkReadableFile(path string) error {
	st, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s does not exist", path)
	}
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", path)
	}
	f, err := os.Open(path) //nolint:gosec // G304: the operator's download.cookies_file, opened to check it, not read
	if err != nil {
		return fmt.Errorf("%s cannot be opened for reading: %w", path, errors.Unwrap(err))
	}
	return f.Close()
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
