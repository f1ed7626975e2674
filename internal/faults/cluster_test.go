package faults

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/redis/go-redis/v9"

	"github.com/coursedl/worker/internal/process"
	"github.com/coursedl/worker/internal/rdb"
)

// queueKey is the web app's list (the default redis.queue).
const queueKey = "queue:downloads"

// cluster is one test's world: a Redis database and a MariaDB database of its
// own, the webhook receiver, a temporary folder (rclone's drive, the workers'
// logs and staging folders) and the worker processes.
type cluster struct {
	t        *testing.T
	name     string
	root     string
	redis    *redisServer
	rdb      *redis.Client
	db       *sqlx.DB
	hook     *receiver
	settings map[string]string // WORKER_ variables shared by every worker
	spans    string            // the downloader's record of its runs, when kept (recordSpans)
	lessons  int               // lessons of each course, when not the fake downloader's two

	mu      sync.Mutex
	workers []*worker
	tasks   []*task
}

// task is one purchase: its row and the job the web app pushes.
type task struct {
	id      int64
	orderID int64
	email   string
	url     string
	payload string
	// want is the row's final status: completed, or failed for a task never
	// enrolled.
	want string
}

// driveURL is the link the worker must record (upload.url_template).
func (tk *task) driveURL() string {
	return fmt.Sprintf("https://drive.example/%d/Fake%%20Course", tk.id)
}

// newCluster makes a cluster on database redisDB of r and on a new database of m.
func newCluster(t *testing.T, name string, r *redisServer, redisDB int, m *mariaDB) *cluster {
	t.Helper()
	c := &cluster{t: t, name: name, root: rootDir(t, name), redis: r, rdb: r.client(t, redisDB)}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.rdb.FlushDB(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	var dsn string
	c.db, dsn = m.database(t, "faults_"+name)
	c.hook = newReceiver(t)
	rcloneConf := filepath.Join(c.root, "rclone.conf")
	if err := os.WriteFile(rcloneConf, []byte("[local]\ntype = local\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c.settings = map[string]string{
		"WORKER_WORKER_CONCURRENCY":       "3",
		"WORKER_WORKER_SHUTDOWN_GRACE":    "5s",
		"WORKER_RETRY_MAX_ATTEMPTS":       "3",
		"WORKER_RETRY_BASE_DELAY":         "1s",
		"WORKER_REDIS_ADDR":               r.addr,
		"WORKER_REDIS_DB":                 strconv.Itoa(redisDB),
		"WORKER_MYSQL_DSN":                dsn,
		"WORKER_ENROLLMENT_POLL_INTERVAL": "200ms",
		"WORKER_ENROLLMENT_MAX_WAIT":      "30s",
		"WORKER_DOWNLOAD_COMMAND":         fmt.Sprintf(`[%q, "slow", "{url}", "{dir}"]`, fakeDownloader),
		"WORKER_DOWNLOAD_ENV":             `["FAKE_SLOW_SECONDS=1"]`,
		"WORKER_DOWNLOAD_TIMEOUT":         "60s",
		"WORKER_DOWNLOAD_ALLOWED_HOSTS":   `["courses.example"]`,
		"WORKER_DOWNLOAD_MIN_FREE_MB":     "1",
		"WORKER_UPLOAD_CONFIG":            rcloneConf,
		"WORKER_UPLOAD_DEST":              "local:" + filepath.Join(c.root, "drive") + "/{task_id}",
		"WORKER_UPLOAD_LINK":              "false",
		"WORKER_UPLOAD_URL_TEMPLATE":      "https://drive.example/{task_id}/{folder}",
		"WORKER_UPLOAD_TIMEOUT":           "60s",
		"WORKER_WEBHOOK_URL":              c.hook.URL(),
		"WORKER_WEBHOOK_SECRET":           testSecret,
		"WORKER_WEBHOOK_TIMEOUT":          "2s",
		"WORKER_WEBHOOK_RETRY_SCHEDULE":   `["1s", "2s", "4s", "8s", "15s", "20s", "20s", "20s"]`,
		"WORKER_LOGS_LEVEL":               "info",
		"WORKER_METRICS_LISTEN":           "",
	}
	// Registered last, so run first: the workers are gone before the
	// servers stop and before the folders are removed.
	t.Cleanup(c.stopWorkers)
	return c
}

// rootDir is the cluster's folder: the test's own, or one kept under
// $FAULTS_KEEP for a look after the run.
func rootDir(t *testing.T, name string) string {
	t.Helper()
	keep := os.Getenv("FAULTS_KEEP")
	if keep == "" {
		return t.TempDir()
	}
	if err := os.MkdirAll(keep, 0o755); err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp(keep, name+"-")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("files kept in %s", dir)
	return dir
}

// addTasks inserts n paid orders and their tasks; enrolled says which start
// enrolled. The jobs are not pushed.
func (c *cluster) addTasks(n int, enrolled func(i int) bool) []*task {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*task
	for i := range n {
		seq := len(c.tasks) + 1
		tk := &task{
			email: fmt.Sprintf("buyer%d@example.com", seq),
			url:   fmt.Sprintf("https://courses.example/course/%s-%d/", c.name, seq),
			want:  "completed",
		}
		res := c.db.MustExec("INSERT INTO orders (email, amount, status) VALUES (?, 19.99, 'paid')", tk.email)
		tk.orderID, _ = res.LastInsertId()
		res = c.db.MustExec("INSERT INTO download_tasks (order_id, email, course_url, is_enrolled) VALUES (?, ?, ?, ?)",
			tk.orderID, tk.email, tk.url, enrolled == nil || enrolled(i))
		tk.id, _ = res.LastInsertId()
		b, _ := json.Marshal(map[string]any{"taskId": tk.id, "email": tk.email, "courseUrl": tk.url, "orderId": tk.orderID})
		tk.payload = string(b)
		c.tasks = append(c.tasks, tk)
		out = append(out, tk)
	}
	return out
}

// push enqueues the tasks' jobs as the web app does.
func (c *cluster) push(tasks ...*task) {
	c.t.Helper()
	for _, tk := range tasks {
		if err := c.rdb.LPush(context.Background(), queueKey, tk.payload).Err(); err != nil {
			c.t.Fatalf("push task %d: %v", tk.id, err)
		}
	}
}

// enroll sets the task's enrollment flag, as the web app's enrollment step does.
func (c *cluster) enroll(ctx context.Context, tk *task) error {
	_, err := c.db.ExecContext(ctx, "UPDATE download_tasks SET is_enrolled = 1 WHERE id = ?", tk.id)
	return err
}

// allTasks returns every task of the cluster.
func (c *cluster) allTasks() []*task {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*task(nil), c.tasks...)
}

// worker returns a new worker process named id, not started; extra overrides
// the cluster's settings for it.
func (c *cluster) worker(id string, extra map[string]string) *worker {
	c.t.Helper()
	w := &worker{c: c, id: id, extra: extra, out: newOutputFile(c.t, filepath.Join(c.root, id+".stderr"))}
	c.mu.Lock()
	c.workers = append(c.workers, w)
	c.mu.Unlock()
	return w
}

func (c *cluster) allWorkers() []*worker {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*worker(nil), c.workers...)
}

// stopWorkers kills what still runs, and shows the end of each worker's
// output when the test failed.
func (c *cluster) stopWorkers() {
	for _, w := range c.allWorkers() {
		if w.running() {
			w.kill()
		}
	}
	if !c.t.Failed() {
		return
	}
	for _, w := range c.allWorkers() {
		c.t.Logf("last lines of worker %s (all in %s):\n%s", w.id, w.out.path, tail(w.out.path, 40))
	}
}

// worker is one worker process, started and stopped many times under one
// worker.id, with its own logs and staging folders. Its stdout and stderr go
// to <root>/<id>.stderr.
type worker struct {
	c     *cluster
	id    string
	extra map[string]string
	out   *outputFile

	mu       sync.Mutex
	proc     *process.Proc
	done     chan struct{} // closed when proc has exited
	expected bool          // the test ended proc itself
	starts   int
	started  time.Time
}

// env is the worker's whole environment.
func (w *worker) env() []string {
	vars := maps.Clone(w.c.settings)
	vars["WORKER_WORKER_ID"] = w.id
	vars["WORKER_LOGS_DIR"] = filepath.Join(w.c.root, "logs-"+w.id)
	vars["WORKER_DOWNLOAD_STAGING_DIR"] = filepath.Join(w.c.root, "staging-"+w.id)
	maps.Copy(vars, w.extra)
	// A worker built with -race reports to stderr and does not linger at exit.
	vars["GORACE"] = "halt_on_error=0 atexit_sleep_ms=0"
	return process.MinimalEnv(vars)
}

// set changes one of the worker's settings for its next start.
func (w *worker) set(key, value string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.extra == nil {
		w.extra = map[string]string{}
	}
	w.extra[key] = value
}

// start starts the worker process. A worker that exits without the test
// ending it fails the test.
func (w *worker) start() {
	w.c.t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	w.starts++
	w.out.printf("start %d of worker %s", w.starts, w.id)
	p, err := process.Start(context.Background(), process.Spec{
		Path:      workerBin,
		Args:      nil,
		Env:       w.env(),
		OnLine:    w.out.line,
		KillGrace: 30 * time.Second,
	})
	if err != nil {
		w.c.t.Fatalf("start worker %s: %v", w.id, err)
	}
	w.proc, w.done, w.expected, w.started = p, make(chan struct{}), false, time.Now()
	go w.watch(p, w.done)
}

// watch waits for the process and reports an exit the test did not cause.
func (w *worker) watch(p *process.Proc, done chan struct{}) {
	res, err := p.Wait()
	w.mu.Lock()
	expected := w.expected
	w.mu.Unlock()
	w.out.printf("worker %s pid %d exited: code %d, %v", w.id, res.Pid, res.ExitCode, err)
	if !expected {
		w.c.t.Errorf("worker %s (pid %d) exited by itself: %v; see %s", w.id, res.Pid, err, w.out.path)
	}
	close(done)
}

func (w *worker) running() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done == nil {
		return false
	}
	select {
	case <-w.done:
		return false
	default:
		return true
	}
}

// kill ends the worker with SIGKILL, as a crash or the OOM killer would, and
// waits for it. What it started (the downloader, rclone) lives on, as it
// would after a real crash: those are in process groups of their own.
func (w *worker) kill() {
	w.c.t.Helper()
	w.mu.Lock()
	p, done := w.proc, w.done
	w.expected = true
	w.mu.Unlock()
	w.out.printf("SIGKILL to worker %s pid %d", w.id, p.Pid())
	if err := p.Signal(syscall.SIGKILL); err != nil {
		w.c.t.Logf("SIGKILL to worker %s: %v", w.id, err)
	}
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		w.c.t.Fatalf("worker %s still runs 30 s after SIGKILL", w.id)
	}
}

// terminate sends SIGTERM and waits for the exit, at most within; it returns
// how the process ended and how long that took.
func (w *worker) terminate(within time.Duration) (process.Result, time.Duration, error) {
	w.c.t.Helper()
	w.mu.Lock()
	p, done := w.proc, w.done
	w.expected = true
	w.mu.Unlock()
	w.out.printf("SIGTERM to worker %s pid %d", w.id, p.Pid())
	begin := time.Now()
	if err := p.Signal(syscall.SIGTERM); err != nil {
		w.c.t.Fatalf("SIGTERM to worker %s: %v", w.id, err)
	}
	select {
	case <-done:
	case <-time.After(within):
		w.c.t.Errorf("worker %s still runs %s after SIGTERM; killing it", w.id, within)
		_ = p.Signal(syscall.SIGKILL)
		<-done
	}
	elapsed := time.Since(begin)
	res, err := p.Wait()
	return res, elapsed, err
}

// waitReady waits until the worker's current process has registered its
// heartbeat: its signal handlers are in place by then.
func (w *worker) waitReady() {
	w.c.t.Helper()
	w.mu.Lock()
	since := w.started
	w.mu.Unlock()
	waitFor(w.c.t, 30*time.Second, "worker "+w.id+" registered", func(ctx context.Context) bool {
		ms, err := w.c.rdb.ZScore(ctx, rdb.WorkersKey, w.id).Result()
		return err == nil && int64(ms) >= since.UnixMilli()
	})
}

// tail returns the last n lines of the file at path.
func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer func() { _ = f.Close() }() // only read from
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}

func itoa(n int) string { return strconv.Itoa(n) }
