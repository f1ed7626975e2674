package bench

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/coursedl/worker/internal/process"
	"github.com/coursedl/worker/internal/rdb"
	"github.com/coursedl/worker/internal/testsvc"
)

// jobQueue is the worker's default redis.queue.
const jobQueue = "queue:downloads"

// systemdPath is the PATH systemd gives a service that sets none.
const systemdPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin"

// workerProc is a worker binary running under the bench.
type workerProc struct {
	id      string
	dir     string // its logs, staging and drive
	metrics string // metrics.listen
	proc    *process.Proc
	started time.Time // just before the process was started
	done    chan struct{}
	res     process.Result
	err     error
	kill    context.CancelFunc // stops its whole process group
}

// workerSetup describes one worker run.
type workerSetup struct {
	name        string   // names its folder under the bench's
	concurrency int      // worker.concurrency
	download    []string // download.command
	hookURL     string   // webhook.url
	id          string   // worker.id; a new one when empty
	// env overrides or adds WORKER_ variables, last.
	env map[string]string
}

// startWorker starts the worker binary with its configuration in the environment,
// as a deployment's environment file gives it. It does not wait for it to be up.
func (b *Bench) startWorker(ctx context.Context, s workerSetup) (*workerProc, error) {
	dir := filepath.Join(b.dir, s.name)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, err
	}
	rcloneConf := filepath.Join(dir, "rclone.conf")
	if err := os.WriteFile(rcloneConf, []byte("[local]\ntype = local\n"), 0o600); err != nil {
		return nil, err
	}
	port, err := freePort(ctx)
	if err != nil {
		return nil, err
	}
	w := &workerProc{
		id:      s.id,
		dir:     dir,
		metrics: "127.0.0.1:" + strconv.Itoa(port),
		done:    make(chan struct{}),
	}
	if w.id == "" {
		w.id = "bench-" + strings.ToLower(rand.Text()[:8])
	}
	settings := b.workerSettings(w, s, rcloneConf)
	runCtx, kill := context.WithCancel(context.WithoutCancel(ctx))
	w.kill = kill
	w.started = time.Now()
	w.proc, err = process.Start(runCtx, process.Spec{
		Path:      b.opts.Worker,
		Dir:       dir,
		Env:       process.MinimalEnv(settings),
		KillGrace: 5 * time.Second,
	})
	if err != nil {
		kill()
		return nil, fmt.Errorf("start worker: %w", err)
	}
	go func() {
		w.res, w.err = w.proc.Wait()
		close(w.done)
	}()
	return w, nil
}

// workerSettings is the environment of worker w run as s describes, with its
// rclone configuration at rcloneConf.
func (b *Bench) workerSettings(w *workerProc, s workerSetup, rcloneConf string) map[string]string {
	command, _ := json.Marshal(s.download)
	settings := map[string]string{
		// As systemd runs a service (deploy/systemd/course-worker.service sets no
		// PATH), not the interactive PATH the bench may have been given.
		"PATH":                            systemdPath,
		"WORKER_WORKER_ID":                w.id,
		"WORKER_WORKER_CONCURRENCY":       strconv.Itoa(s.concurrency),
		"WORKER_WORKER_SHUTDOWN_GRACE":    "10s",
		"WORKER_RETRY_MAX_ATTEMPTS":       "1",
		"WORKER_REDIS_ADDR":               testsvc.RedisAddr(),
		"WORKER_REDIS_DB":                 strconv.Itoa(b.redisDB),
		"WORKER_REDIS_QUEUE":              jobQueue,
		"WORKER_MYSQL_DSN":                b.dsn,
		"WORKER_DOWNLOAD_COMMAND":         string(command),
		"WORKER_DOWNLOAD_TIMEOUT":         "5m",
		"WORKER_DOWNLOAD_STAGING_DIR":     filepath.Join(w.dir, "staging"),
		"WORKER_DOWNLOAD_ALLOWED_HOSTS":   `["127.0.0.1"]`,
		"WORKER_DOWNLOAD_EGRESS_ALLOW":    `["127.0.0.1/32"]`,
		"WORKER_DOWNLOAD_MIN_FREE_MB":     "1",
		"WORKER_UPLOAD_CONFIG":            rcloneConf,
		"WORKER_UPLOAD_DEST":              "local:" + filepath.Join(w.dir, "drive") + "/{task_id}/{folder}",
		"WORKER_UPLOAD_LINK":              "false",
		"WORKER_UPLOAD_URL_TEMPLATE":      "https://drive.example/{task_id}/{folder}",
		"WORKER_WEBHOOK_URL":              s.hookURL,
		"WORKER_WEBHOOK_SECRET":           hookSecret,
		"WORKER_WEBHOOK_TIMEOUT":          "5s",
		"WORKER_WEBHOOK_RETRY_SCHEDULE":   `["1s", "2s"]`,
		"WORKER_LOGS_DIR":                 filepath.Join(w.dir, "logs"),
		"WORKER_METRICS_LISTEN":           w.metrics,
		"WORKER_ENROLLMENT_POLL_INTERVAL": "2s",
	}
	if s.hookURL == "" {
		settings["WORKER_WEBHOOK_URL"] = "http://127.0.0.1:9/unused"
	}
	maps.Copy(settings, s.env)
	return settings
}

// pid is the worker's process id.
func (w *workerProc) pid() int { return w.proc.Pid() }

// waitUp waits until the worker has registered its heartbeat: it has connected to
// Redis and MySQL and is about to fetch.
func (w *workerProc) waitUp(ctx context.Context, client *redis.Client) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		if err := client.ZScore(ctx, rdb.WorkersKey, w.id).Err(); err == nil {
			return nil
		}
		select {
		case <-w.done:
			//nolint:errorlint // w.err is nil after a clean exit, which %w would print as %!w(<nil>)
			return fmt.Errorf("worker exited at start-up: %v\n%s", w.err, strings.Join(w.res.StderrTail, "\n"))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return errors.New("worker not up after 60 s")
		}
	}
}

// stop sends SIGTERM, as systemd does, and waits for a clean exit; past 20 s the
// whole group is killed.
func (w *workerProc) stop() error {
	_ = w.proc.Signal(syscall.SIGTERM)
	select {
	case <-w.done:
	case <-time.After(20 * time.Second):
		w.kill()
		<-w.done
		return errors.New("worker did not stop within 20 s of SIGTERM")
	}
	w.kill()
	if w.err != nil {
		return fmt.Errorf("worker: %w\n%s", w.err, strings.Join(w.res.StderrTail, "\n"))
	}
	return nil
}

// crash sends SIGKILL to the worker alone, as kill -9 does (its downloader and
// rclone die with it: package process starts them with a parent-death signal),
// and waits until it has exited.
func (w *workerProc) crash() error {
	if err := w.proc.Signal(syscall.SIGKILL); err != nil {
		return fmt.Errorf("SIGKILL to the worker: %w", err)
	}
	select {
	case <-w.done:
	case <-time.After(20 * time.Second):
		return errors.New("worker still runs 20 s after SIGKILL")
	}
	w.kill()
	return nil
}

// readyz answers the status of GET /readyz, or an error when nothing listens.
func (w *workerProc) readyz(ctx context.Context, c *http.Client) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+w.metrics+"/readyz", nil)
	if err != nil {
		return 0, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	_ = resp.Body.Close() // only the status counts
	return resp.StatusCode, nil
}

// taskTimes reads the "task completed" lines of the worker's log: the task's
// duration and the time its subprocesses ran, by task id.
func (w *workerProc) taskTimes() (map[int64]taskTime, error) {
	f, err := os.Open(filepath.Join(w.dir, "logs", "worker-out.log"))
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }() // read only
	out := map[int64]taskTime{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var line struct {
			Msg        string `json:"msg"`
			TaskID     int64  `json:"task_id"`
			Duration   string `json:"duration"`
			Subprocess string `json:"subprocess_duration"`
		}
		if !strings.Contains(sc.Text(), `"task completed"`) || json.Unmarshal(sc.Bytes(), &line) != nil || line.Msg != "task completed" {
			continue
		}
		d, err1 := time.ParseDuration(line.Duration)
		s, err2 := time.ParseDuration(line.Subprocess)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("task %d: unreadable durations %q, %q", line.TaskID, line.Duration, line.Subprocess)
		}
		out[line.TaskID] = taskTime{whole: d, subprocess: s}
	}
	return out, sc.Err()
}

// taskTime is what the worker logs of one task's times.
type taskTime struct {
	whole      time.Duration // job received to the end, in the pipeline
	subprocess time.Duration // downloader and rclone runs
}

// freePort returns a TCP port free on 127.0.0.1 now.
func freePort(ctx context.Context) (int, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer func() { _ = ln.Close() }() // only its port was wanted
	return ln.Addr().(*net.TCPAddr).Port, nil
}
