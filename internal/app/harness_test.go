package app

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/coursedl/worker/internal/config"
	"github.com/coursedl/worker/internal/notify"
	"github.com/coursedl/worker/internal/rdb"
	"github.com/coursedl/worker/internal/testutil"
)

const testSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// env is one worker's world: real Redis, MariaDB, rclone with a local remote, a
// course server on 127.0.0.1 and a webhook receiver that verifies signatures.
type env struct {
	t        *testing.T
	rdb      *redis.Client
	db       *sqlx.DB
	dsn      string
	root     string // temp folder holding logs, staging, drive
	course   *httptest.Server
	hook     *receiver
	hookURL  string
	settings map[string]string // WORKER_ variables
	app      *App              // the worker start made last
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, rdb: testutil.Redis(t), root: t.TempDir()}
	e.db, e.dsn = testutil.MySQL(t)
	e.course = httptest.NewServer(courseHandler())
	t.Cleanup(e.course.Close)
	signer, err := notify.NewSigner(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	e.hook = &receiver{signer: signer}
	hookSrv := httptest.NewServer(e.hook)
	t.Cleanup(hookSrv.Close)
	e.hookURL = hookSrv.URL + "/hook"
	rcloneConf := filepath.Join(e.root, "rclone.conf")
	if err := os.WriteFile(rcloneConf, []byte("[local]\ntype = local\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.settings = map[string]string{
		"WORKER_WORKER_ID":                "test-" + rand.Text()[:8],
		"WORKER_WORKER_CONCURRENCY":       "2",
		"WORKER_WORKER_SHUTDOWN_GRACE":    "5s",
		"WORKER_RETRY_MAX_ATTEMPTS":       "2",
		"WORKER_RETRY_BASE_DELAY":         "100ms",
		"WORKER_REDIS_ADDR":               testutil.RedisAddr(),
		"WORKER_REDIS_DB":                 fmt.Sprint(e.rdb.Options().DB),
		"WORKER_MYSQL_DSN":                e.dsn,
		"WORKER_ENROLLMENT_POLL_INTERVAL": "100ms",
		"WORKER_ENROLLMENT_MAX_WAIT":      "3s",
		"WORKER_DOWNLOAD_COMMAND":         `["yt-dlp", "--ignore-config", "--no-cache-dir", "--newline", "--no-colors", "--proxy", "{proxy}", "-P", "{dir}", "-o", "%(playlist_title|Course)s/%(title)s.%(ext)s", "{url}"]`,
		"WORKER_DOWNLOAD_TIMEOUT":         "60s",
		"WORKER_DOWNLOAD_STAGING_DIR":     filepath.Join(e.root, "staging"),
		"WORKER_DOWNLOAD_ALLOWED_HOSTS":   `["127.0.0.1"]`,
		// The course server is on loopback, which the egress guard refuses
		// unless told; the shared /tmp may have little room.
		"WORKER_DOWNLOAD_EGRESS_ALLOW":  `["127.0.0.1/32"]`,
		"WORKER_DOWNLOAD_MIN_FREE_MB":   "1",
		"WORKER_UPLOAD_CONFIG":          rcloneConf,
		"WORKER_UPLOAD_DEST":            "local:" + filepath.Join(e.root, "drive") + "/{folder}",
		"WORKER_UPLOAD_URL_TEMPLATE":    "https://drive.example/{task_id}/{folder}",
		"WORKER_WEBHOOK_URL":            e.hookURL,
		"WORKER_WEBHOOK_SECRET":         testSecret,
		"WORKER_WEBHOOK_TIMEOUT":        "2s",
		"WORKER_WEBHOOK_RETRY_SCHEDULE": `["50ms", "100ms", "200ms"]`,
		"WORKER_LOGS_DIR":               filepath.Join(e.root, "logs"),
		"WORKER_METRICS_LISTEN":         "",
	}
	return e
}

// fake sets the downloader to our fake course downloader in mode.
func (e *env) fake(mode string) {
	e.settings["WORKER_DOWNLOAD_COMMAND"] = fmt.Sprintf(`[%q, %q, "{url}", "{dir}"]`,
		filepath.Join(testutil.Root(e.t), "testdata", "fake-downloader"), mode)
}

func (e *env) config() *config.Config {
	e.t.Helper()
	var environ []string
	for k, v := range e.settings {
		environ = append(environ, k+"="+v)
	}
	cfg, err := config.Load("", environ)
	if err != nil {
		e.t.Fatal(err)
	}
	return cfg
}

// start runs a worker until the test ends; stop stops it gracefully and waits.
func (e *env) start() (stop func() error) {
	e.t.Helper()
	cfg := e.config()
	log := zaptest.NewLogger(e.t, zaptest.Level(zap.WarnLevel))
	ctx, cancel := context.WithCancel(context.Background())
	a, err := New(ctx, cfg, log)
	if err != nil {
		e.t.Fatal(err)
	}
	e.app = a
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	var once sync.Once
	var runErr error
	stop = func() error {
		once.Do(func() {
			cancel()
			runErr = <-done
			_ = a.Close()
		})
		return runErr
	}
	e.t.Cleanup(func() { _ = stop() })
	return stop
}

// task inserts a paid order and its task; it returns the task id and the job the
// web app would push.
func (e *env) task(enrolled bool, path string) (int64, string) {
	e.t.Helper()
	res := e.db.MustExec("INSERT INTO orders (email, amount, status) VALUES ('buyer@example.com', 19.99, 'paid')")
	orderID, _ := res.LastInsertId()
	url := e.course.URL + path
	res = e.db.MustExec("INSERT INTO download_tasks (order_id, email, course_url, is_enrolled) VALUES (?, 'buyer@example.com', ?, ?)",
		orderID, url, enrolled)
	id, _ := res.LastInsertId()
	b, _ := json.Marshal(map[string]any{"taskId": id, "email": "buyer@example.com", "courseUrl": url, "orderId": orderID})
	return id, string(b)
}

func (e *env) push(payload string) {
	e.t.Helper()
	if err := e.rdb.LPush(context.Background(), "queue:downloads", payload).Err(); err != nil {
		e.t.Fatal(err)
	}
}

type row struct {
	Status   string  `db:"status"`
	DriveURL *string `db:"drive_url"`
	ErrMsg   *string `db:"error_message"`
}

func (e *env) row(id int64) row {
	e.t.Helper()
	var r row
	if err := e.db.Get(&r, "SELECT status, drive_url, error_message FROM download_tasks WHERE id = ?", id); err != nil {
		e.t.Fatal(err)
	}
	return r
}

// waitStatus waits until the row reaches status (completed or failed) and the
// task has ended: the row is written first, then the task log is closed, the
// staging folder cleaned and the job settled, so it also waits for the worker's
// processing list to be empty.
func (e *env) waitStatus(id int64, status string, within time.Duration) row {
	e.t.Helper()
	deadline := time.Now().Add(within)
	processing := rdb.ProcessingKey(e.settings["WORKER_WORKER_ID"])
	for {
		r := e.row(id)
		if r.Status == status && e.rdb.LLen(context.Background(), processing).Val() == 0 {
			return r
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("after %s: task %d never reached %s (now %s, error %v)", within, id, status, r.Status, deref(r.ErrMsg))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (e *env) lifecycle() string {
	e.t.Helper()
	matches, _ := filepath.Glob(filepath.Join(e.root, "logs", "lifecycle-*.log"))
	var b strings.Builder
	for _, m := range matches {
		data, _ := os.ReadFile(m)
		b.Write(data)
	}
	return b.String()
}

func (e *env) taskLog(id int64) string {
	e.t.Helper()
	data, _ := os.ReadFile(filepath.Join(e.root, "logs", "tasks", fmt.Sprintf("task-%d.log", id)))
	return string(data)
}

func (e *env) stagingDir(id int64) string {
	return filepath.Join(e.root, "staging", fmt.Sprintf("task-%d", id))
}

// courseHandler serves lessons of 2 MiB, slowly enough for yt-dlp to print
// progress, and /missing.mp4 as a 404.
func courseHandler() http.Handler {
	lesson := make([]byte, 2<<20)
	_, _ = rand.Read(lesson)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasSuffix(r.URL.Path, ".mp4") || strings.Contains(r.URL.Path, "missing") {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "video/mp4")
		w.Header().Set("Content-Length", fmt.Sprint(len(lesson)))
		if r.Method == http.MethodHead {
			return
		}
		for off := 0; off < len(lesson); off += 64 << 10 {
			if _, err := w.Write(lesson[off : off+64<<10]); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			time.Sleep(5 * time.Millisecond)
		}
	})
}

// receiver is the web app's webhook endpoint: it verifies every signature and
// answers with the queued statuses first, then 200.
type receiver struct {
	signer   *notify.Signer
	mu       sync.Mutex
	statuses []int
	got      []delivery
}

type delivery struct {
	ID       string
	TS       string // webhook-timestamp
	Body     []byte
	Verified bool
	Event    notify.Event
	Raw      map[string]any
	Status   int
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	id := req.Header.Get("webhook-id")
	err := r.signer.Verify(id, req.Header.Get("webhook-timestamp"), body, req.Header.Get("webhook-signature"), time.Now(), time.Minute)
	d := delivery{ID: id, TS: req.Header.Get("webhook-timestamp"), Body: body, Verified: err == nil, Status: http.StatusOK}
	_ = json.Unmarshal(body, &d.Event)
	_ = json.Unmarshal(body, &d.Raw)
	r.mu.Lock()
	if len(r.statuses) > 0 {
		d.Status, r.statuses = r.statuses[0], r.statuses[1:]
	}
	r.got = append(r.got, d)
	r.mu.Unlock()
	w.WriteHeader(d.Status)
}

func (r *receiver) fail(statuses ...int) {
	r.mu.Lock()
	r.statuses = append(r.statuses, statuses...)
	r.mu.Unlock()
}

// deliveries returns the requests received for task id.
func (r *receiver) deliveries(id int64) []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []delivery
	for _, d := range r.got {
		if d.Event.TaskID == id {
			out = append(out, d)
		}
	}
	return out
}

// accepted waits for the event of task id that was answered 200.
func (r *receiver) accepted(t *testing.T, id int64) delivery {
	t.Helper()
	var found delivery
	testutil.Eventually(t, 15*time.Second, func() bool {
		for _, d := range r.deliveries(id) {
			if d.Status == http.StatusOK {
				found = d
				return true
			}
		}
		return false
	}, "no accepted webhook for task %d", id)
	return found
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

// dead reads the dead-letter list, newest entry first.
func (e *env) dead() ([]rdb.Dead, error) {
	raw, err := e.rdb.LRange(context.Background(), rdb.DeadKey, 0, -1).Result()
	if err != nil {
		return nil, err
	}
	out := make([]rdb.Dead, 0, len(raw))
	for _, r := range raw {
		var d rdb.Dead
		if err := json.Unmarshal([]byte(r), &d); err != nil {
			return nil, fmt.Errorf("dead letter %q: %w", r, err)
		}
		out = append(out, d)
	}
	return out, nil
}
