package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadForToolNeedsOnlyWhatTheToolUses(t *testing.T) {
	// A worker's file with its task keys missing or wrong, and no secrets: the
	// tool loads it; the worker does not.
	path := filepath.Join(t.TempDir(), "worker.yaml")
	yaml := `
redis: {addr: "10.0.0.5:6380", db: 3, queue: "q:shop"}
download: {command: [], timeout: soon}
webhook: {url: "not a url"}
logs: {dir: /var/log/course-worker, level: debug}
`
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path, []string{}); err == nil {
		t.Fatal("Load accepted a file without the worker's required keys")
	}
	c, err := LoadForTool(path, []string{})
	if err != nil {
		t.Fatalf("LoadForTool: %v", err)
	}
	if c.Redis.Addr != "10.0.0.5:6380" || c.Redis.DB != 3 || c.Redis.Queue != "q:shop" || c.Logs.Dir != "/var/log/course-worker" {
		t.Fatalf("values not read: %+v %+v", c.Redis, c.Logs)
	}
	if c.MySQL.DSN != "" {
		t.Fatalf("dsn = %q", c.MySQL.DSN)
	}

	// The environment overrides as for the worker.
	c, err = LoadForTool(path, []string{"WORKER_REDIS_QUEUE=q:env", "WORKER_MYSQL_DSN=u:pw@tcp(db:3306)/app"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Redis.Queue != "q:env" || c.MySQL.DSN != "u:pw@tcp(db:3306)/app" {
		t.Fatalf("environment ignored: %q %q", c.Redis.Queue, c.MySQL.DSN)
	}
}

func TestLoadForToolValidatesItsKeys(t *testing.T) {
	cases := []struct{ set, key string }{
		{"WORKER_REDIS_ADDR=", "redis.addr"},
		{"WORKER_REDIS_DB=16", "redis.db"},
		{"WORKER_REDIS_QUEUE=", "redis.queue"},
		{"WORKER_REDIS_DB=three", "redis.db"},
		{"WORKER_MYSQL_DSN=not a dsn", "mysql.dsn"},
		{"WORKER_LOGS_DIR=", "logs.dir"},
		{"WORKER_LOGS_LEVEL=loud", "logs.level"},
		{"WORKER_LOGS_FORMAT=xml", "logs.format"},
		{"WORKER_LOGS_MAX_SIZE_MB=0", "logs.max_size_mb"},
		{"WORKER_LOGS_MAX_BACKUPS=-1", "logs.max_backups"},
		{"WORKER_LOGS_MAX_AGE_DAYS=-2", "logs.max_age_days"},
		{"WORKER_LOGS_COMPRESS=sometimes", "logs.compress"},
	}
	for _, tc := range cases {
		t.Run(tc.set, func(t *testing.T) {
			_, err := LoadForTool("", []string{tc.set})
			if err == nil || !strings.Contains(err.Error(), tc.key+":") {
				t.Fatalf("%s: %v, want an error naming %s", tc.set, err, tc.key)
			}
			// The worker's own validation names the same key.
			_, err = Load("", append(minimal(), tc.set))
			if err == nil || !strings.Contains(err.Error(), tc.key+":") {
				t.Fatalf("Load with %s: %v, want an error naming %s", tc.set, err, tc.key)
			}
		})
	}
}

func TestLogsKeys(t *testing.T) {
	c, err := Load("", minimal())
	if err != nil {
		t.Fatal(err)
	}
	want := Logs{Dir: "logs", Level: "info", Format: "console", MaxSizeMB: 100, MaxBackups: 10, MaxAgeDays: 30, Compress: false}
	if c.Logs != want {
		t.Fatalf("defaults %+v, want %+v", c.Logs, want)
	}
	c, err = Load("", append(minimal(),
		"WORKER_LOGS_LEVEL=warn", "WORKER_LOGS_FORMAT=json", "WORKER_LOGS_MAX_SIZE_MB=5",
		"WORKER_LOGS_MAX_BACKUPS=0", "WORKER_LOGS_MAX_AGE_DAYS=7", "WORKER_LOGS_COMPRESS=true"))
	if err != nil {
		t.Fatal(err)
	}
	want = Logs{Dir: "logs", Level: "warn", Format: "json", MaxSizeMB: 5, MaxBackups: 0, MaxAgeDays: 7, Compress: true}
	if c.Logs != want {
		t.Fatalf("from the environment %+v, want %+v", c.Logs, want)
	}
}
