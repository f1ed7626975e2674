package config

import (
	"encoding/json"
	"fmt"
	"net/url"
	"reflect"
	"sort"
	"strings"
	"time"
	"unicode"

	"github.com/go-sql-driver/mysql"
)

const mask = "***"

// Redacted returns a copy of c with every secret replaced by ***: the Redis password,
// the DSN's password, the webhook secret, the password of the webhook URL's user
// info, and the values of download.env and upload.env (they may hold tokens). The
// rclone config is a path, kept; its contents are never read here.
func (c *Config) Redacted() *Config {
	r := *c
	if r.Redis.Password != "" {
		r.Redis.Password = mask
	}
	r.MySQL.DSN = RedactDSN(r.MySQL.DSN)
	r.Webhook.URL = RedactURL(r.Webhook.URL)
	if r.Webhook.Secret != "" {
		r.Webhook.Secret = mask
	}
	r.Download.Env = redactEnv(c.Download.Env)
	r.Upload.Env = redactEnv(c.Upload.Env)
	return &r
}

// String renders the redacted configuration one "key: value" line per key, in
// the keys' order, durations as Go durations and lists as JSON.
func (c *Config) String() string {
	var b strings.Builder
	for _, kv := range c.Redacted().flatten() {
		b.WriteString(kv.key + ": " + kv.value + "\n")
	}
	return b.String()
}

type keyValue struct{ key, value string }

// flatten lists every field of c under its configuration key.
func (c *Config) flatten() []keyValue {
	var out []keyValue
	top := reflect.ValueOf(c).Elem()
	for i := range top.NumField() {
		section := top.Field(i)
		prefix := snake(top.Type().Field(i).Name)
		for j := range section.NumField() {
			key := prefix + "." + snake(section.Type().Field(j).Name)
			out = append(out, keyValue{key, render(section.Field(j).Interface())})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].key < out[j].key })
	return out
}

func render(v any) string {
	switch x := v.(type) {
	case time.Duration:
		return x.String()
	case []time.Duration:
		parts := make([]string, len(x))
		for i, d := range x {
			parts[i] = d.String()
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case string:
		return x
	case []string:
		b, _ := json.Marshal(x)
		return string(b)
	default:
		return fmt.Sprint(x)
	}
}

// snake turns a Go field name into its key: ShutdownGrace -> shutdown_grace,
// URLTemplate -> url_template, MaxSizeMB -> max_size_mb.
func snake(name string) string {
	if name == "MySQL" {
		return "mysql"
	}
	var b strings.Builder
	runes := []rune(name)
	for i, r := range runes {
		upper := unicode.IsUpper(r)
		if upper && i > 0 {
			prevLower := unicode.IsLower(runes[i-1])
			nextLower := i+1 < len(runes) && unicode.IsLower(runes[i+1])
			if prevLower || (unicode.IsUpper(runes[i-1]) && nextLower) {
				b.WriteByte('_')
			}
		}
		b.WriteRune(unicode.ToLower(r))
	}
	return b.String()
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

// RedactURL hides the password of a URL's user info
// (https://app:***@example.com/hook); a URL it cannot parse is hidden whole.
func RedactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return mask
	}
	if _, ok := u.User.Password(); !ok {
		return s
	}
	// Spliced in by hand: url.URL would escape the mask's '*'.
	u.User = url.User(u.User.Username())
	withUser := u.String()
	head := u.Scheme + "://" + u.User.String()
	return head + ":" + mask + withUser[len(head):]
}

func redactEnv(env []string) []string {
	out := make([]string, len(env))
	for i, kv := range env {
		out[i] = redactValue(kv)
	}
	return out
}

// secrets lists the secret values of c that must never reach a log line. Only
// the package's tests use it.
func (c *Config) secrets() []string {
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
	if u, err := url.Parse(c.Webhook.URL); err == nil {
		if pw, ok := u.User.Password(); ok {
			add(pw)
		}
	}
	return out
}
