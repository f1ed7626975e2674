package config

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/viper"

	"github.com/coursedl/worker/internal/download"
)

// reader converts viper's values, collecting one error per bad key.
type reader struct {
	v      *viper.Viper
	only   func(key string) bool // keys whose errors count; nil for all
	broken []string              // sections the file gave a value instead of keys: already reported
	errs   []error
}

// config converts every key into a Config; errors go to r.errs.
func (r *reader) config() *Config {
	return &Config{
		Worker: Worker{
			ID:            r.str("worker.id"),
			Concurrency:   r.int("worker.concurrency"),
			ShutdownGrace: r.duration("worker.shutdown_grace"),
		},
		Retry: Retry{MaxAttempts: r.int("retry.max_attempts"), BaseDelay: r.duration("retry.base_delay")},
		Redis: r.redis(),
		MySQL: MySQL{DSN: r.str("mysql.dsn")},
		Enrollment: Enrollment{
			PollInterval: r.duration("enrollment.poll_interval"),
			MaxWait:      r.duration("enrollment.max_wait"),
		},
		Download: r.download(),
		Upload:   r.upload(),
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
		Reconcile: Reconcile{
			Interval:   r.duration("reconcile.interval"),
			StaleAfter: r.duration("reconcile.stale_after"),
		},
		Console: Console{
			Listen: r.str("console.listen"),
			Users:  r.strings("console.users"),
		},
	}
}

func (r *reader) redis() Redis {
	return Redis{
		Addr:     r.str("redis.addr"),
		Password: r.str("redis.password"),
		DB:       r.int("redis.db"),
		Queue:    r.str("redis.queue"),
		Sentinel: Sentinel{
			Master:   r.str("redis.sentinel.master"),
			Addrs:    r.strings("redis.sentinel.addrs"),
			Password: r.str("redis.sentinel.password"),
		},
	}
}

func (r *reader) download() Download {
	return Download{
		Command:         r.strings("download.command"),
		Timeout:         r.duration("download.timeout"),
		StagingDir:      r.str("download.staging_dir"),
		AllowedHosts:    r.strings("download.allowed_hosts"),
		Env:             r.env("download.env"),
		MinFreeMB:       r.int("download.min_free_mb"),
		KeepFailed:      r.duration("download.keep_failed"),
		CookiesFile:     r.str("download.cookies_file"),
		EgressGuard:     r.bool("download.egress_guard"),
		EgressAllow:     r.prefixes("download.egress_allow"),
		BreakerFailures: r.int("download.breaker_failures"),
		Announce:        r.announce("download.announce"),
	}
}

func (r *reader) upload() Upload {
	return Upload{
		Rclone:      r.str("upload.rclone"),
		Config:      r.str("upload.config"),
		Dest:        r.str("upload.dest"),
		Link:        r.bool("upload.link"),
		URLTemplate: r.str("upload.url_template"),
		Timeout:     r.duration("upload.timeout"),
		Env:         r.env("upload.env"),
		QuotaWait:   r.duration("upload.quota_wait"),
		Parallel:    r.int("upload.parallel"),
	}
}

func (r *reader) fail(key string, format string, args ...any) {
	if r.only != nil && !r.only(key) {
		return
	}
	for _, s := range r.broken {
		if strings.HasPrefix(key, s+".") {
			return
		}
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

// prefixes reads a list of CIDR prefixes (10.0.0.0/8, fd00::/8), each masked; a
// bare address is the prefix of that address alone (/32, or /128 for IPv6).
func (r *reader) prefixes(key string) []netip.Prefix {
	items := r.strings(key)
	out := make([]netip.Prefix, 0, len(items))
	for _, s := range items {
		s = strings.TrimSpace(s)
		p, err := netip.ParsePrefix(s)
		if err != nil {
			addr, aerr := netip.ParseAddr(s)
			if aerr != nil || addr.Zone() != "" {
				r.fail(key, "%q is not a CIDR prefix such as 127.0.0.1/32 or fd00::/8", s)
				return nil
			}
			p = netip.PrefixFrom(addr, addr.BitLen())
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 { // ::ffff:10.0.0.0/104 is 10.0.0.0/8
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		out = append(out, p.Masked())
	}
	return out
}

// announce reads download.announce: "path", "none" or "re:<regexp>".
func (r *reader) announce(key string) download.Announce {
	a, err := download.ParseAnnounce(r.str(key))
	if err != nil {
		r.fail(key, "%v", err)
	}
	return a
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
