package ctl_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jmoiron/sqlx"
	"github.com/redis/go-redis/v9"

	"github.com/coursedl/worker/internal/ctl"
	"github.com/coursedl/worker/internal/rdb"
	"github.com/coursedl/worker/internal/testutil"
)

// world is what workerctl looks at in a test: a Redis database and a MariaDB
// database of the test's own, a logs folder, and a configuration file naming them
// as an operator's would (with the secrets in an environment file).
type world struct {
	t       *testing.T
	rc      *redis.Client
	db      *sqlx.DB
	logs    string
	config  string
	envFile string
}

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{t: t, rc: testutil.Redis(t), logs: filepath.Join(t.TempDir(), "logs")}
	var dsn string
	w.db, dsn = testutil.MySQL(t)
	dir := t.TempDir()
	w.config = filepath.Join(dir, "worker.yaml")
	// A worker's file: download, upload and webhook keys are the worker's business.
	yaml := fmt.Sprintf(`
worker: {concurrency: 2}
redis: {addr: %q, db: %d, queue: "queue:downloads"}
download: {command: [yt-dlp, "{url}"]}
logs: {dir: %q}
`, testutil.RedisAddr(), testutil.RedisDB(w.rc), w.logs)
	if err := os.WriteFile(w.config, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	w.envFile = filepath.Join(dir, "worker.env")
	env := fmt.Sprintf("# secrets\nWORKER_MYSQL_DSN='%s'\nWORKER_WEBHOOK_SECRET=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n", dsn)
	if err := os.WriteFile(w.envFile, []byte(env), 0o600); err != nil {
		t.Fatal(err)
	}
	return w
}

// door is the world's Redis as the process of worker id reaches it (a tool
// when id is empty), through package rdb as the worker does.
func (w *world) door(id string) *rdb.Client {
	return rdb.New(w.rc, rdb.Options{Queue: "queue:downloads", Worker: id})
}

// result is one workerctl run.
type result struct {
	code           int
	stdout, stderr string
}

// run runs workerctl with the world's configuration and environment file.
func (w *world) run(args ...string) result {
	w.t.Helper()
	return w.runEnv(false, nil, args...)
}

// runEnv runs workerctl with extra environment variables, on a terminal or not.
func (w *world) runEnv(terminal bool, environ []string, args ...string) result {
	w.t.Helper()
	var out, errOut bytes.Buffer
	full := append([]string{"--config", w.config, "--env-file", w.envFile}, args...)
	code := ctl.Main(context.Background(), ctl.Env{Args: full, Stdout: &out, Stderr: &errOut, Environ: environ, Terminal: terminal})
	return result{code: code, stdout: out.String(), stderr: errOut.String()}
}

// ok fails the test unless r exited 0.
func (r result) ok(t *testing.T) result {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	return r
}

// decode decodes r's stdout as JSON into v.
func (r result) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(r.stdout), v); err != nil {
		t.Fatalf("--json output is not JSON: %v\n%s", err, r.stdout)
	}
}

// hasLines checks that each of want is a line of out, after collapsing runs of
// spaces (tables align with spaces).
func hasLines(t *testing.T, out string, want ...string) {
	t.Helper()
	lines := map[string]bool{}
	for _, l := range strings.Split(out, "\n") {
		lines[strings.Join(strings.Fields(l), " ")] = true
	}
	for _, w := range want {
		if !lines[w] {
			t.Errorf("no line %q in:\n%s", w, out)
		}
	}
}

// task inserts a row and returns its id.
func (w *world) task(orderID any, email, url string, enrolled bool) int64 {
	w.t.Helper()
	res := w.db.MustExec("INSERT INTO download_tasks (order_id, email, course_url, is_enrolled) VALUES (?, ?, ?, ?)",
		orderID, email, url, enrolled)
	id, err := res.LastInsertId()
	if err != nil {
		w.t.Fatal(err)
	}
	return id
}
