package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/spf13/viper"
	"go.yaml.in/yaml/v3"
)

// defaults are the contract's defaults, plus the project's own keys. Every key the
// worker reads is listed, so that viper binds its WORKER_ variable.
var defaults = map[string]any{
	"worker.id":                 "",
	"worker.concurrency":        2,
	"worker.shutdown_grace":     "30s",
	"retry.max_attempts":        3,
	"retry.base_delay":          "30s",
	"redis.addr":                "127.0.0.1:6379",
	"redis.password":            "",
	"redis.db":                  0,
	"redis.queue":               "queue:downloads",
	"redis.sentinel.master":     "",
	"redis.sentinel.addrs":      []string{},
	"redis.sentinel.password":   "",
	"mysql.dsn":                 "",
	"enrollment.poll_interval":  "2s",
	"enrollment.max_wait":       "15s",
	"download.command":          []string{},
	"download.timeout":          "2h",
	"download.staging_dir":      "staging",
	"download.allowed_hosts":    []string{"www.udemy.com"},
	"download.env":              []string{},
	"download.min_free_mb":      2048,
	"download.keep_failed":      "72h",
	"download.cookies_file":     "",
	"download.egress_guard":     true,
	"download.egress_allow":     []string{},
	"download.breaker_failures": 5,
	"download.announce":         "path",
	"upload.rclone":             "rclone",
	"upload.config":             "",
	"upload.dest":               "",
	"upload.link":               true,
	"upload.url_template":       "",
	"upload.timeout":            "2h",
	"upload.env":                []string{},
	"upload.quota_wait":         "1h",
	"upload.parallel":           2,
	"webhook.url":               "",
	"webhook.secret":            "",
	"webhook.timeout":           "10s",
	"webhook.retry_schedule":    []string{"5s", "5m", "30m", "2h", "5h", "10h", "14h", "20h", "24h"},
	"logs.dir":                  "logs",
	"logs.level":                "info",
	"logs.format":               "console",
	"logs.max_size_mb":          100,
	"logs.max_backups":          10,
	"logs.max_age_days":         30,
	"logs.compress":             false,
	"metrics.listen":            "127.0.0.1:9108",
	"reconcile.interval":        "5m",
	"reconcile.stale_after":     "15m",
	"console.listen":            "",
	"console.users":             []string{},
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
// when it is set, logs.* and console.*. A worker's file is accepted whatever its
// download, upload and webhook keys hold, so the tool runs without the secrets it
// does not need (webhook.secret); likewise an unknown key is an error only when it
// is, or is nearest to, a key the tool uses (redis.adr, WORKER_LOGS_LEVL). A
// command that needs MySQL checks that mysql.dsn is set.
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
	c.checkConsole(&v)
	if err := v.err(); err != nil {
		return nil, err
	}
	return c, nil
}

// toolKey reports whether LoadForTool looks at key, or at the section key names.
func toolKey(key string) bool {
	for _, section := range []string{"redis.", "mysql.", "logs.", "console."} {
		if strings.HasPrefix(key+".", section) {
			return true
		}
	}
	return false
}

// decode reads the file and the environment into a Config, with defaults, and
// reports unknown keys (typos) and keys whose values have the wrong type (only
// those for which only returns true, when only is not nil); it does not validate
// values.
func decode(path string, environ []string, only func(key string) bool) (*Config, error) {
	if environ == nil {
		environ = os.Environ()
	}
	env := envMap(environ)
	v, tree, err := newViper(path, env)
	if err != nil {
		return nil, err
	}
	r := reader{v: v, only: only}
	for _, t := range append(fileTypos(tree), envTypos(env)...) {
		if only == nil || only(t.key) {
			r.errs = append(r.errs, t.err)
		}
		if t.section {
			r.broken = append(r.broken, t.key)
		}
	}
	c := r.config()
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

// newViper returns a viper holding the defaults, the file at path (none when path
// is empty) and the WORKER_ variables of env, and the file's contents as a tree
// of maps for fileTypos.
func newViper(path string, env map[string]string) (*viper.Viper, map[string]any, error) {
	v := viper.New()
	for k, d := range defaults {
		v.SetDefault(k, d)
	}
	var tree map[string]any
	if path != "" {
		raw, err := os.ReadFile(path) //nolint:gosec // G304: the operator names the file with --config; reading it is the point
		if err != nil {
			return nil, nil, fmt.Errorf("config file: %w", err)
		}
		v.SetConfigType("yaml")
		if err := v.ReadConfig(bytes.NewReader(raw)); err != nil {
			return nil, nil, fmt.Errorf("config file %s: %w", path, err)
		}
		if err := yaml.Unmarshal(raw, &tree); err != nil {
			return nil, nil, fmt.Errorf("config file %s: %w", path, err)
		}
	}
	for k := range defaults {
		if val, ok := env[envName(k)]; ok {
			v.Set(k, val)
		}
	}
	return v, tree, nil
}

// envName is the environment variable that overrides key:
// download.timeout is WORKER_DOWNLOAD_TIMEOUT.
func envName(key string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
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
