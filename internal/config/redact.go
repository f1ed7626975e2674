package config

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"net/url"
	"reflect"
	"sort"
	"strings"
	"time"
	"unicode"

	"github.com/go-sql-driver/mysql"
)

const mask = "***"

// Redacted returns a copy of c with every secret replaced by ***: the Redis and
// Sentinel passwords, the DSN's password, the webhook secret, the password of the
// webhook URL's user info, the values of download.env and upload.env (they may
// hold tokens) and the hashes of console.users. The rclone config and the cookies
// file are paths, kept; their contents are never read here.
func (c *Config) Redacted() *Config {
	r := *c
	if r.Redis.Password != "" {
		r.Redis.Password = mask
	}
	if r.Redis.Sentinel.Password != "" {
		r.Redis.Sentinel.Password = mask
	}
	r.Console.Users = redactUsers(c.Console.Users)
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

// flatten lists every field of c under its configuration key; a field that is a
// struct of this package is a nested section (redis.sentinel.master).
func (c *Config) flatten() []keyValue {
	var out []keyValue
	var walk func(prefix string, section reflect.Value)
	walk = func(prefix string, section reflect.Value) {
		for i := range section.NumField() {
			key := snake(section.Type().Field(i).Name)
			if prefix != "" {
				key = prefix + "." + key
			}
			f := section.Field(i)
			if f.Kind() == reflect.Struct && f.Type().PkgPath() == top.PkgPath() {
				walk(key, f)
				continue
			}
			out = append(out, keyValue{key, render(f.Interface())})
		}
	}
	walk("", reflect.ValueOf(c).Elem())
	sort.Slice(out, func(i, j int) bool { return out[i].key < out[j].key })
	return out
}

// top is the type of Config, for flatten to tell this package's structs.
var top = reflect.TypeFor[Config]()

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
	case []netip.Prefix:
		b, _ := json.Marshal(x) // each as its text, 10.0.0.0/8
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

// redactUsers keeps role:name of each console.users item and hides its hash; an
// item without two ':' is hidden whole.
func redactUsers(users []string) []string {
	out := make([]string, len(users))
	for i, u := range users {
		if cu := ParseConsoleUser(u); cu.Hash != "" {
			out[i] = cu.Role + ":" + cu.Name + ":" + mask
		} else {
			out[i] = mask
		}
	}
	return out
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
	add(c.Redis.Sentinel.Password)
	add(c.Webhook.Secret)
	for _, u := range c.Console.Users {
		add(ParseConsoleUser(u).Hash)
	}
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
