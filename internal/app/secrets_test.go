package app

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jmoiron/sqlx"
	"go.uber.org/zap"

	"github.com/coursedl/worker/internal/notify"
	"github.com/coursedl/worker/internal/rdb"
	"github.com/coursedl/worker/internal/testutil"
)

// secrets are the values of one test that must never be seen outside their place.
type secrets struct {
	dsnPassword  string
	hookSecret   string // whsec_<base64>
	accessToken  string // inside the rclone config
	refreshToken string // inside the rclone config
	envToken     string // in the worker's environment only
}

func (s secrets) all() map[string]string {
	return map[string]string{
		"DSN password":             s.dsnPassword,
		"webhook secret":           s.hookSecret,
		"webhook key (base64)":     strings.TrimPrefix(s.hookSecret, "whsec_"),
		"rclone access token":      s.accessToken,
		"rclone refresh token":     s.refreshToken,
		"token of the environment": s.envToken,
	}
}

// leaks returns the names of the secrets text holds.
func (s secrets) leaks(text string) []string {
	var out []string
	for name, v := range s.all() {
		if strings.Contains(text, v) {
			out = append(out, name)
		}
	}
	return out
}

// mysqlUser creates a MariaDB user with password, allowed everything on the test's
// database, and returns the DSN that logs in as it. The user is dropped at the end.
func mysqlUser(t *testing.T, e *env, password string) string {
	t.Helper()
	cfg, err := mysql.ParseDSN(e.dsn)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := sqlx.Open("mysql", testutil.MySQLDSN())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = admin.Close() })
	user := "u_" + strings.ToLower(rand.Text()[:10])
	admin.MustExec(fmt.Sprintf("CREATE USER '%s'@'127.0.0.1' IDENTIFIED BY '%s'", user, password))
	t.Cleanup(func() { _, _ = admin.Exec(fmt.Sprintf("DROP USER IF EXISTS '%s'@'127.0.0.1'", user)) })
	admin.MustExec(fmt.Sprintf("GRANT ALL ON `%s`.* TO '%s'@'127.0.0.1'", cfg.DBName, user))
	cfg.User, cfg.Passwd = user, password
	return cfg.FormatDSN()
}

// captureStderr sends what is written to os.Stderr from now on to a buffer, until
// the returned function is called; it returns what was written.
func captureStderr(t *testing.T) func() string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	saved := os.Stderr
	os.Stderr = w
	var buf bytes.Buffer
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(&buf, r)
		close(done)
	}()
	var once sync.Once
	stop := func() string {
		once.Do(func() {
			os.Stderr = saved
			_ = w.Close()
			<-done
			_ = r.Close()
		})
		return buf.String()
	}
	t.Cleanup(func() { stop() })
	return stop
}

// A whole run with known secrets: a completed task, a failed one, a rejected job,
// webhooks retried once, a start-up refused for a wrong password. None of the
// secrets appears in any file under logs/, in dl:dead, in any Redis value, in the
// webhook bodies, in error_message, on the worker's stderr, in the printed
// configuration, or in the environment of the downloader and of rclone.
func TestSecretsNeverLeak(t *testing.T) {
	e := newEnv(t)
	key := make([]byte, 24)
	_, _ = rand.Read(key)
	s := secrets{
		dsnPassword:  "Dsn-Pw_" + rand.Text()[:16],
		hookSecret:   "whsec_" + base64.StdEncoding.EncodeToString(key),
		accessToken:  "ya29.SECRET-" + rand.Text(),
		refreshToken: "1//SECRET-" + rand.Text(),
		envToken:     "Env-Tok_" + rand.Text()[:16],
	}
	dsn := mysqlUser(t, e, s.dsnPassword)

	// The worker's environment holds secrets, as it does in production.
	t.Setenv("WORKER_MYSQL_DSN", dsn)
	t.Setenv("WORKER_WEBHOOK_SECRET", s.hookSecret)
	t.Setenv("DRIVE_TOKEN", s.envToken)

	signer, err := notify.NewSigner(s.hookSecret)
	if err != nil {
		t.Fatal(err)
	}
	e.hook.signer = signer
	e.hook.fail(http.StatusServiceUnavailable)
	rcloneConf := filepath.Join(e.root, "rclone.conf")
	conf := fmt.Sprintf("[local]\ntype = local\ntoken = {\"access_token\":%q,\"token_type\":\"Bearer\",\"refresh_token\":%q,\"expiry\":\"2030-01-01T00:00:00Z\"}\n",
		s.accessToken, s.refreshToken)
	if err := os.WriteFile(rcloneConf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := s.leaks(conf); len(got) != 2 {
		t.Fatalf("the search finds %v in the rclone config, want the two tokens", got)
	}
	// rclone behind a wrapper that keeps its environment.
	wrapper := filepath.Join(e.root, "rclone-wrapper")
	if err := os.WriteFile(wrapper, []byte("#!/bin/sh\nenv >>\"$ENV_DUMP\"\nexec rclone \"$@\"\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	downloaderEnv, rcloneEnv := filepath.Join(e.root, "downloader-env.txt"), filepath.Join(e.root, "rclone-env.txt")
	e.fake("auto")
	e.setEnv("WORKER_DOWNLOAD_ENV", "FAKE_ENV_OUT="+downloaderEnv)
	e.setEnv("WORKER_UPLOAD_ENV", "ENV_DUMP="+rcloneEnv)
	e.settings["WORKER_UPLOAD_RCLONE"] = wrapper
	e.settings["WORKER_UPLOAD_CONFIG"] = rcloneConf
	e.settings["WORKER_MYSQL_DSN"] = dsn
	e.settings["WORKER_WEBHOOK_SECRET"] = s.hookSecret
	e.settings["WORKER_RETRY_MAX_ATTEMPTS"] = "1"
	e.settings["WORKER_LOGS_LEVEL"] = "debug"
	e.settings["WORKER_LOGS_FORMAT"] = "json"
	cfg := e.config()

	// The real logger: stderr, logs/worker-out.log, logs/worker-error.log.
	stderr := captureStderr(t)
	log, closeLog, err := NewLogger(cfg.Logs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(closeLog)

	// A start-up refused by MySQL says why without the password it tried.
	wrong := *cfg
	wrongDSN, _ := mysql.ParseDSN(dsn)
	wrongDSN.Passwd = s.dsnPassword + "-wrong"
	wrong.MySQL.DSN = wrongDSN.FormatDSN()
	startCtx, cancelStart := context.WithTimeout(context.Background(), 20*time.Second)
	_, startErr := New(startCtx, &wrong, log)
	cancelStart()
	if startErr == nil {
		t.Fatal("the worker started with a wrong MySQL password")
	}
	log.Error("start-up failed", zap.Error(startErr)) // as cmd/worker does

	ctx, cancel := context.WithCancel(context.Background())
	a, err := New(ctx, cfg, log)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
			_ = a.Close()
		}
	}
	t.Cleanup(stop)

	okID, okJob := e.task(true, "/c/ok.mp4?fake_mode=env")
	failID, failJob := e.task(true, "/c/fail.mp4?fake_mode=fail")
	badJob := fmt.Sprintf(`{"taskId": %d, "email": "buyer@example.com", "courseUrl": "file:///etc/passwd"}`, okID)
	for _, p := range []string{okJob, failJob, badJob} {
		e.push(p)
	}
	e.waitStatus(okID, "completed", 30*time.Second)
	e.waitStatus(failID, "failed", 30*time.Second)
	e.hook.accepted(t, okID)
	e.hook.accepted(t, failID)
	testutil.Eventually(t, 10*time.Second, func() bool {
		return e.rdb.LLen(context.Background(), rdb.DeadKey).Val() == 2
	}, "dl:dead should hold the bad job and the failed task")
	stop()
	closeLog()
	out := stderr()

	// Gather everything the run wrote.
	var seen []struct{ where, text string }
	add := func(where, text string) { seen = append(seen, struct{ where, text string }{where, text}) }
	add("stderr", out)
	err = filepath.WalkDir(filepath.Join(e.root, "logs"), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		add(p, string(b))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	add("start-up error", startErr.Error())
	add("printed configuration", cfg.String())
	ctxR := context.Background()
	for _, k := range e.rdb.Keys(ctxR, "*").Val() {
		switch e.rdb.Type(ctxR, k).Val() {
		case "string":
			add("redis "+k, e.rdb.Get(ctxR, k).Val())
		case "list":
			add("redis "+k, strings.Join(e.rdb.LRange(ctxR, k, 0, -1).Val(), "\n"))
		case "hash":
			add("redis "+k, fmt.Sprint(e.rdb.HGetAll(ctxR, k).Val()))
		case "zset":
			add("redis "+k, strings.Join(e.rdb.ZRange(ctxR, k, 0, -1).Val(), "\n"))
		case "set":
			add("redis "+k, strings.Join(e.rdb.SMembers(ctxR, k).Val(), "\n"))
		}
	}
	e.hook.mu.Lock()
	for _, d := range e.hook.got {
		add("webhook body", string(d.Body))
	}
	e.hook.mu.Unlock()
	var messages []string
	if err := e.db.Select(&messages, "SELECT COALESCE(error_message, '') FROM download_tasks"); err != nil {
		t.Fatal(err)
	}
	add("error_message", strings.Join(messages, "\n"))

	for _, x := range seen {
		if got := s.leaks(x.text); len(got) > 0 {
			t.Errorf("%s shows the %s", x.where, strings.Join(got, ", "))
		}
	}

	// The search looked at what it should: each place holds what the run did.
	joined := func(prefix string) string {
		var b strings.Builder
		for _, x := range seen {
			if strings.HasPrefix(x.where, prefix) {
				b.WriteString(x.text)
			}
		}
		return b.String()
	}
	logs := filepath.Join(e.root, "logs")
	for _, c := range []struct{ where, want string }{
		{"stderr", `"task completed"`},
		{filepath.Join(logs, "worker-out.log"), `"task completed"`},
		{filepath.Join(logs, "worker-error.log"), "start-up failed"},
		{filepath.Join(logs, "tasks"), "ERROR: fake failure for"},
		{filepath.Join(logs, "tasks"), "[rclone"},
		{filepath.Join(logs, "lifecycle-"), "[WEBHOOK_FAILED]"},
		{"redis " + rdb.DeadKey, "file:///etc/passwd"},
		{"webhook body", "task.failed"},
		{"error_message", "exit status 3"},
		{"start-up error", "Access denied"},
		{"printed configuration", "mysql.dsn: " + strings.SplitN(dsn, ":", 2)[0] + ":***@"},
	} {
		if !strings.Contains(joined(c.where), c.want) {
			t.Errorf("%q holds no %q: the run or the search is not what this test thinks", c.where, c.want)
		}
	}

	// The children saw a minimal environment: no WORKER_ variable, no secret.
	for _, path := range []string{downloaderEnv, rcloneEnv} {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		text := string(b)
		if got := s.leaks(text); len(got) > 0 {
			t.Errorf("%s: the child's environment holds the %s", filepath.Base(path), strings.Join(got, ", "))
		}
		for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
			name, value, _ := strings.Cut(line, "=")
			switch {
			case slices.Contains([]string{"PATH", "HOME", "LANG", "FAKE_ENV_OUT", "ENV_DUMP", "PWD", "SHLVL", "_"}, name):
			case path == downloaderEnv && strings.EqualFold(name, "no_proxy") && value == "":
			case path == downloaderEnv && slices.Contains([]string{"HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"}, strings.ToUpper(name)):
				// The egress guard of the task, on loopback.
				if !strings.HasPrefix(value, "http://127.0.0.1:") {
					t.Errorf("%s: %s=%q, want the task's egress guard", filepath.Base(path), name, value)
				}
			default:
				t.Errorf("%s: the child got %s", filepath.Base(path), name)
			}
		}
		for _, want := range []string{"PATH=", "HOME=", "LANG="} {
			if !strings.Contains(text, want) {
				t.Errorf("%s lacks %s", filepath.Base(path), want)
			}
		}
	}
	if errors.Is(startErr, context.DeadlineExceeded) {
		t.Errorf("the refused start-up waited for its deadline: %v", startErr)
	}
}
