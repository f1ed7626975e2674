package config

import (
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// minimal holds the required keys; each test adds or breaks one.
func minimal() []string {
	return []string{
		"WORKER_MYSQL_DSN=app:s3cretpw@tcp(127.0.0.1:3306)/app",
		`WORKER_DOWNLOAD_COMMAND=["yt-dlp","-P","{dir}","{url}"]`,
		"WORKER_UPLOAD_DEST=gdrive:Courses/{folder}",
		"WORKER_WEBHOOK_URL=http://127.0.0.1:3000/hook",
		"WORKER_WEBHOOK_SECRET=" + secret,
		"WORKER_WORKER_ID=w1",
	}
}

func TestDefaults(t *testing.T) {
	c, err := Load("", minimal())
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"worker.concurrency", c.Worker.Concurrency, 2},
		{"worker.shutdown_grace", c.Worker.ShutdownGrace, 30 * time.Second},
		{"retry.max_attempts", c.Retry.MaxAttempts, 3},
		{"retry.base_delay", c.Retry.BaseDelay, 30 * time.Second},
		{"redis.addr", c.Redis.Addr, "127.0.0.1:6379"},
		{"redis.queue", c.Redis.Queue, "queue:downloads"},
		{"enrollment.poll_interval", c.Enrollment.PollInterval, 2 * time.Second},
		{"enrollment.max_wait", c.Enrollment.MaxWait, 15 * time.Second},
		{"download.timeout", c.Download.Timeout, 2 * time.Hour},
		{"download.staging_dir", c.Download.StagingDir, "staging"},
		{"download.allowed_hosts", c.Download.AllowedHosts, []string{"www.udemy.com"}},
		{"download.command", c.Download.Command, []string{"yt-dlp", "-P", "{dir}", "{url}"}},
		{"upload.rclone", c.Upload.Rclone, "rclone"},
		{"upload.link", c.Upload.Link, true},
		{"upload.timeout", c.Upload.Timeout, 2 * time.Hour},
		{"webhook.timeout", c.Webhook.Timeout, 10 * time.Second},
		{"webhook.retry_schedule", c.Webhook.RetrySchedule, []time.Duration{5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 14 * time.Hour, 20 * time.Hour, 24 * time.Hour}},
		{"logs.dir", c.Logs.Dir, "logs"},
		{"metrics.listen", c.Metrics.Listen, "127.0.0.1:9108"},
		{"download.min_free_mb", c.Download.MinFreeMB, 2048},
		{"download.keep_failed", c.Download.KeepFailed, 72 * time.Hour},
		{"download.cookies_file", c.Download.CookiesFile, ""},
		{"download.egress_guard", c.Download.EgressGuard, true},
		{"download.egress_allow", c.Download.EgressAllow, []netip.Prefix{}},
		{"download.breaker_failures", c.Download.BreakerFailures, 5},
		{"upload.quota_wait", c.Upload.QuotaWait, time.Hour},
		{"download.announce", c.Download.Announce.String(), "path"},
		{"upload.parallel", c.Upload.Parallel, 2},
		{"redis.sentinel.master", c.Redis.Sentinel.Master, ""},
		{"redis.sentinel.addrs", c.Redis.Sentinel.Addrs, []string{}},
		{"redis.sentinel.password", c.Redis.Sentinel.Password, ""},
		{"reconcile.interval", c.Reconcile.Interval, 5 * time.Minute},
		{"reconcile.stale_after", c.Reconcile.StaleAfter, 15 * time.Minute},
		{"console.listen", c.Console.Listen, ""},
		{"console.users", c.Console.Users, []string{}},
	}
	for _, ch := range checks {
		if !reflect.DeepEqual(ch.got, ch.want) {
			t.Errorf("%s = %v, want %v", ch.name, ch.got, ch.want)
		}
	}
}

func TestFileThenEnvironment(t *testing.T) {
	path := filepath.Join(t.TempDir(), "worker.yaml")
	yaml := `
worker: {concurrency: 5, id: from-file}
download:
  command: [fake, "{url}"]
  timeout: 90s
  allowed_hosts: [a.example, b.example]
  env: ["HTTP_PROXY=http://proxy:8080"]
redis: {queue: "q:file"}
`
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	env := append(minimal()[:5:5], // no WORKER_WORKER_ID: the file's id stands
		"WORKER_DOWNLOAD_TIMEOUT=3m",
		`WORKER_DOWNLOAD_ALLOWED_HOSTS=["c.example"]`,
		"WORKER_WORKER_CONCURRENCY=7",
	)
	c, err := Load(path, env)
	if err != nil {
		t.Fatal(err)
	}
	if c.Worker.ID != "from-file" || c.Redis.Queue != "q:file" {
		t.Errorf("file values lost: id=%q queue=%q", c.Worker.ID, c.Redis.Queue)
	}
	if c.Download.Timeout != 3*time.Minute || c.Worker.Concurrency != 7 {
		t.Errorf("environment did not override: timeout=%s concurrency=%d", c.Download.Timeout, c.Worker.Concurrency)
	}
	if !reflect.DeepEqual(c.Download.AllowedHosts, []string{"c.example"}) {
		t.Errorf("allowed_hosts = %v", c.Download.AllowedHosts)
	}
	// The environment's command wins over the file's.
	if c.Download.Command[0] != "yt-dlp" {
		t.Errorf("command = %v", c.Download.Command)
	}
	if !reflect.DeepEqual(c.Download.Env, []string{"HTTP_PROXY=http://proxy:8080"}) {
		t.Errorf("download.env keeps case: %v", c.Download.Env)
	}
}

func TestValidationNamesTheKey(t *testing.T) {
	cases := []struct {
		name string
		set  string // NAME=value replacing or adding to minimal()
		key  string // the key the error must name
	}{
		{"missing dsn", "WORKER_MYSQL_DSN=", "mysql.dsn"},
		{"bad dsn", "WORKER_MYSQL_DSN=not a dsn", "mysql.dsn"},
		{"empty command", "WORKER_DOWNLOAD_COMMAND=[]", "download.command"},
		{"command not json", "WORKER_DOWNLOAD_COMMAND=yt-dlp {url}", "download.command"},
		{"secret without prefix", "WORKER_WEBHOOK_SECRET=MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "webhook.secret"},
		{"secret bad base64", "WORKER_WEBHOOK_SECRET=whsec_!!!notbase64", "webhook.secret"},
		{"secret too short", "WORKER_WEBHOOK_SECRET=whsec_YWJj", "webhook.secret"},
		{"missing secret", "WORKER_WEBHOOK_SECRET=", "webhook.secret"},
		{"bad duration", "WORKER_DOWNLOAD_TIMEOUT=ten minutes", "download.timeout"},
		{"negative duration", "WORKER_ENROLLMENT_POLL_INTERVAL=-1s", "enrollment.poll_interval"},
		{"bad schedule", `WORKER_WEBHOOK_RETRY_SCHEDULE=["5s","soon"]`, "webhook.retry_schedule"},
		{"zero concurrency", "WORKER_WORKER_CONCURRENCY=0", "worker.concurrency"},
		{"concurrency not a number", "WORKER_WORKER_CONCURRENCY=two", "worker.concurrency"},
		{"zero attempts", "WORKER_RETRY_MAX_ATTEMPTS=0", "retry.max_attempts"},
		{"webhook not http", "WORKER_WEBHOOK_URL=ftp://x/y", "webhook.url"},
		{"missing dest", "WORKER_UPLOAD_DEST=", "upload.dest"},
		{"no link no template", "WORKER_UPLOAD_LINK=false", "upload.url_template"},
		{"bad bool", "WORKER_UPLOAD_LINK=maybe", "upload.link"},
		{"bad level", "WORKER_LOGS_LEVEL=loud", "logs.level"},
		{"bad host", `WORKER_DOWNLOAD_ALLOWED_HOSTS=["https://www.udemy.com/"]`, "download.allowed_hosts"},
		{"bad env item", `WORKER_DOWNLOAD_ENV=["NOEQUALS"]`, "download.env"},
		{"redis db", "WORKER_REDIS_DB=16", "redis.db"},
		{"negative min free", "WORKER_DOWNLOAD_MIN_FREE_MB=-1", "download.min_free_mb"},
		{"min free not a number", "WORKER_DOWNLOAD_MIN_FREE_MB=2GB", "download.min_free_mb"},
		{"zero keep failed", "WORKER_DOWNLOAD_KEEP_FAILED=0s", "download.keep_failed"},
		{"keep failed in days", "WORKER_DOWNLOAD_KEEP_FAILED=3d", "download.keep_failed"},
		{"cookies file missing", "WORKER_DOWNLOAD_COOKIES_FILE=/nonexistent/cookies.txt", "download.cookies_file"},
		{"cookies file a folder", "WORKER_DOWNLOAD_COOKIES_FILE=" + os.TempDir(), "download.cookies_file"},
		{"cookies placeholder without file", `WORKER_DOWNLOAD_COMMAND=["yt-dlp","--cookies","{cookies}","{url}"]`, "download.command"},
		{"bad egress guard", "WORKER_DOWNLOAD_EGRESS_GUARD=perhaps", "download.egress_guard"},
		{"egress allow not a cidr", `WORKER_DOWNLOAD_EGRESS_ALLOW=["localhost"]`, "download.egress_allow"},
		{"egress allow bad bits", `WORKER_DOWNLOAD_EGRESS_ALLOW=["10.0.0.0/33"]`, "download.egress_allow"},
		{"egress allow not json", "WORKER_DOWNLOAD_EGRESS_ALLOW=127.0.0.1/32", "download.egress_allow"},
		{"zero breaker", "WORKER_DOWNLOAD_BREAKER_FAILURES=0", "download.breaker_failures"},
		{"zero quota wait", "WORKER_UPLOAD_QUOTA_WAIT=0", "upload.quota_wait"},
		{"negative quota wait", "WORKER_UPLOAD_QUOTA_WAIT=-1h", "upload.quota_wait"},
		{"unknown announce", "WORKER_DOWNLOAD_ANNOUNCE=lines", "download.announce"},
		{"empty announce", "WORKER_DOWNLOAD_ANNOUNCE=", "download.announce"},
		{"announce pattern without a group", `WORKER_DOWNLOAD_ANNOUNCE=re:^done .+$`, "download.announce"},
		{"announce pattern not compiling", `WORKER_DOWNLOAD_ANNOUNCE=re:^done (.+$`, "download.announce"},
		{"zero parallel uploads", "WORKER_UPLOAD_PARALLEL=0", "upload.parallel"},
		{"too many parallel uploads", "WORKER_UPLOAD_PARALLEL=17", "upload.parallel"},
		{"sentinel master without addrs", "WORKER_REDIS_SENTINEL_MASTER=mymaster", "redis.sentinel.addrs"},
		{"sentinel addr", `WORKER_REDIS_SENTINEL_ADDRS=["10.0.0.1"]`, "redis.sentinel.addrs"},
		{"zero reconcile interval", "WORKER_RECONCILE_INTERVAL=0s", "reconcile.interval"},
		{"bad stale after", "WORKER_RECONCILE_STALE_AFTER=soon", "reconcile.stale_after"},
		{"bad console listen", "WORKER_CONSOLE_LISTEN=9109", "console.listen"},
		{"bad console role", `WORKER_CONSOLE_USERS=["admin:ann:$2a$10$abcdefghijklmnopqrstuuJ3m1Hn0eQ3Jb1d8y7Jq0p3QmYw1o7ZK"]`, "console.users"},
		{"bad console hash", `WORKER_CONSOLE_USERS=["viewer:ann:plaintext"]`, "console.users"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := append(minimal(), tc.set) // later entries win
			_, err := Load("", env)
			if err == nil {
				t.Fatalf("%s accepted", tc.set)
			}
			if !strings.Contains(err.Error(), tc.key+":") {
				t.Fatalf("error does not name %s: %v", tc.key, err)
			}
			for _, s := range []string{"s3cretpw", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"} {
				if strings.Contains(err.Error(), s) {
					t.Fatalf("error quotes a secret: %v", err)
				}
			}
		})
	}
}

func TestBadFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"), minimal())
	if err == nil || !strings.Contains(err.Error(), "nope.yaml") {
		t.Fatalf("missing file: %v", err)
	}
}

func TestRedacted(t *testing.T) {
	env := append(minimal(), "WORKER_REDIS_PASSWORD=redispw", `WORKER_UPLOAD_ENV=["RCLONE_DRIVE_TOKEN=tok123"]`)
	c, err := Load("", env)
	if err != nil {
		t.Fatal(err)
	}
	s := c.String()
	for _, secret := range []string{"s3cretpw", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "redispw", "tok123"} {
		if strings.Contains(s, secret) {
			t.Errorf("String() shows %q:\n%s", secret, s)
		}
	}
	if !strings.Contains(s, "RCLONE_DRIVE_TOKEN=***") || !strings.Contains(s, "app:***@tcp") {
		t.Errorf("redaction hides too much:\n%s", s)
	}
	if c.MySQL.DSN != "app:s3cretpw@tcp(127.0.0.1:3306)/app" {
		t.Error("Redacted changed the original")
	}
	if got := c.secrets(); len(got) != 3 {
		t.Errorf("secrets() = %d values, want 3", len(got))
	}
}

// The example file loads, and names every key the worker reads, nested as the
// key's dots say.
func TestExampleFile(t *testing.T) {
	path := filepath.Join("..", "..", "configs", "worker.example.yaml")
	env := slices.DeleteFunc(minimal(), func(kv string) bool { return strings.HasPrefix(kv, "WORKER_DOWNLOAD_COMMAND=") })
	c, err := Load(path, env)
	if err != nil {
		t.Fatal(err)
	}
	if c.Download.Command[0] != "yt-dlp" || !slices.Contains(c.Download.Command, "--ignore-config") || !slices.Contains(c.Download.Command, "--no-cache-dir") {
		t.Errorf("command = %v", c.Download.Command)
	}
	// Each lesson announced once final, progress kept, a record of what is done.
	for _, pair := range [][2]string{{"--print", "after_move:filepath"}, {"--download-archive", "{dir}/.download-archive"}} {
		if i := slices.Index(c.Download.Command, pair[0]); i < 0 || !slices.Contains(c.Download.Command[i:], pair[1]) {
			t.Errorf("command lacks %s %s: %v", pair[0], pair[1], c.Download.Command)
		}
	}
	if !slices.Contains(c.Download.Command, "--progress") || c.Download.Announce.String() != "path" {
		t.Errorf("command %v, announce %v", c.Download.Command, c.Download.Announce)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var tree map[string]any
	if err := yaml.Unmarshal(raw, &tree); err != nil {
		t.Fatal(err)
	}
	for _, k := range Keys() {
		node := any(tree)
		for _, part := range strings.Split(k, ".") {
			m, _ := node.(map[string]any)
			var ok bool
			if node, ok = m[part]; !ok {
				t.Errorf("example file lacks %s", k)
				break
			}
		}
	}
}

// Every field of Config is a key Load reads, and String shows each once.
func TestStringCoversEveryKey(t *testing.T) {
	c, err := Load("", minimal())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, kv := range c.flatten() {
		got = append(got, kv.key)
	}
	if !reflect.DeepEqual(got, Keys()) {
		t.Fatalf("Config fields %v\nkeys %v", got, Keys())
	}
	s := c.String()
	for _, want := range []string{"download.timeout: 2h0m0s\n", "webhook.retry_schedule: [5s, 5m0s, 30m0s, 2h0m0s, 5h0m0s, 10h0m0s, 14h0m0s, 20h0m0s, 24h0m0s]\n", "webhook.secret: ***\n"} {
		if !strings.Contains(s, want) {
			t.Errorf("String() lacks %q:\n%s", want, s)
		}
	}
}

// A Sentinel master with its Sentinels is a configuration the worker runs
// with (it used to be refused until Sentinel was supported).
func TestSentinelAccepted(t *testing.T) {
	env := append(minimal(), "WORKER_REDIS_SENTINEL_MASTER=mymaster",
		`WORKER_REDIS_SENTINEL_ADDRS=["10.0.0.1:26379","10.0.0.2:26379"]`, "WORKER_REDIS_SENTINEL_PASSWORD=sentinel-pw")
	c, err := Load("", env)
	if err != nil {
		t.Fatal(err)
	}
	s := c.Redis.Sentinel
	if s.Master != "mymaster" || len(s.Addrs) != 2 || s.Password != "sentinel-pw" {
		t.Fatalf("sentinel %+v", s)
	}
	if _, err := LoadForTool("", env); err != nil {
		t.Fatalf("workerctl: %v", err)
	}
}
