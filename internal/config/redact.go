package config

import (
	"encoding/json"
	"strings"

	"github.com/go-sql-driver/mysql"
)

const mask = "***"

// Redacted returns a copy of c with every secret replaced by ***: the Redis password,
// the DSN's password, the webhook secret, and the values of download.env and
// upload.env (they may hold tokens). The rclone config is a path, kept.
func (c *Config) Redacted() *Config {
	r := *c
	if r.Redis.Password != "" {
		r.Redis.Password = mask
	}
	r.MySQL.DSN = RedactDSN(r.MySQL.DSN)
	if r.Webhook.Secret != "" {
		r.Webhook.Secret = mask
	}
	r.Download.Env = redactEnv(c.Download.Env)
	r.Upload.Env = redactEnv(c.Upload.Env)
	return &r
}

// String renders the redacted configuration as indented JSON.
func (c *Config) String() string {
	b, err := json.MarshalIndent(c.Redacted(), "", "  ")
	if err != nil {
		return "config: " + err.Error()
	}
	return string(b)
}

// RedactDSN hides the password of a go-sql-driver DSN; a DSN it cannot parse is
// hidden whole.
func RedactDSN(dsn string) string {
	if dsn == "" {
		return ""
	}
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return mask
	}
	if cfg.Passwd != "" {
		cfg.Passwd = mask
	}
	return cfg.FormatDSN()
}

func redactEnv(env []string) []string {
	out := make([]string, len(env))
	for i, kv := range env {
		out[i] = redactValue(kv)
	}
	return out
}

// Secrets lists the secret values of c that must never reach a log line, for
// tests and for filters that scrub output.
func (c *Config) Secrets() []string {
	var out []string
	add := func(s string) {
		if strings.TrimSpace(s) != "" {
			out = append(out, s)
		}
	}
	add(c.Redis.Password)
	add(c.Webhook.Secret)
	if cfg, err := mysql.ParseDSN(c.MySQL.DSN); err == nil {
		add(cfg.Passwd)
	}
	return out
}
