package console_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/coursedl/worker/internal/app"
	"github.com/coursedl/worker/internal/config"
	"github.com/coursedl/worker/internal/console"
	"github.com/coursedl/worker/internal/ctl"
	"github.com/coursedl/worker/internal/rdb"
	"github.com/coursedl/worker/internal/store"
	"github.com/coursedl/worker/internal/testutil"
)

// The browser test: headless Chromium (Debian's chromium) drives the console
// of a worker that runs real tasks (the fake downloader, rclone to a local
// remote) on real Redis and MariaDB. It logs in, watches a running task's bar
// move, finds the task by e-mail and sees its log followed to the end,
// requeues a dead letter and sees the task complete, checks that a hostile
// dead letter opens no dialog and loads nothing, and pauses and resumes
// intake. It saves a screenshot of every page in COURSEDL_SCREENSHOTS (default
// <temp>/coursedl-console-shots), which outlives the test.

const courseHost = "courses.example"

// world is the worker and the console the browser looks at.
type world struct {
	*bench
	root string
	tool *ctl.Tool // the console's
}

// startWorld runs a worker (in this process, as internal/app's tests do) and
// a console with one operator, on one Redis and MariaDB database.
func startWorld(t *testing.T) *world {
	t.Helper()
	w := &world{bench: newBench(t, userItems(t, "olga")), root: t.TempDir()}
	w.logs = filepath.Join(w.root, "logs") // the worker's, read by the console
	hook := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) { rw.WriteHeader(http.StatusNoContent) }))
	t.Cleanup(hook.Close)
	rclone := filepath.Join(w.root, "rclone.conf")
	if err := os.WriteFile(rclone, []byte("[local]\ntype = local\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load("", []string{
		"WORKER_WORKER_ID=browser-" + rand.Text()[:8],
		"WORKER_WORKER_CONCURRENCY=2",
		"WORKER_WORKER_SHUTDOWN_GRACE=2s",
		"WORKER_REDIS_ADDR=" + testutil.RedisAddr(),
		fmt.Sprintf("WORKER_REDIS_DB=%d", testutil.RedisDB(w.rc)),
		"WORKER_MYSQL_DSN=" + w.dsn,
		"WORKER_ENROLLMENT_POLL_INTERVAL=100ms",
		"WORKER_ENROLLMENT_MAX_WAIT=3s",
		fmt.Sprintf(`WORKER_DOWNLOAD_COMMAND=[%q, "auto", "{url}", "{dir}"]`, filepath.Join(testutil.Root(t), "testdata", "fake-downloader")),
		`WORKER_DOWNLOAD_ENV=["FAKE_CRAWL_STEPS=40"]`,
		"WORKER_DOWNLOAD_TIMEOUT=60s",
		"WORKER_DOWNLOAD_STAGING_DIR=" + filepath.Join(w.root, "staging"),
		`WORKER_DOWNLOAD_ALLOWED_HOSTS=["` + courseHost + `"]`,
		"WORKER_DOWNLOAD_MIN_FREE_MB=1",
		"WORKER_UPLOAD_CONFIG=" + rclone,
		"WORKER_UPLOAD_DEST=local:" + filepath.Join(w.root, "drive") + "/{folder}",
		"WORKER_UPLOAD_LINK=false",
		"WORKER_UPLOAD_URL_TEMPLATE=https://drive.example/{task_id}/{folder}",
		"WORKER_WEBHOOK_URL=" + hook.URL,
		"WORKER_WEBHOOK_SECRET=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
		"WORKER_LOGS_DIR=" + w.logs,
		"WORKER_METRICS_LISTEN=",
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	worker, err := app.New(ctx, cfg, zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- worker.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("worker: %v", err)
		}
		_ = worker.Close()
	})
	// The console reads this worker's logs folder: it runs on its host.
	s, err := store.Open(context.Background(), cfg.MySQL.DSN)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	w.tool = &ctl.Tool{Redis: w.door, Rows: s, LogsDir: w.logs}
	c, err := console.New(console.Params{Tool: w.tool, Rows: s,
		Users: userItems(t, "olga"), Log: zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)), FailDelay: -1,
		SampleEvery: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	sampling := make(chan error, 1)
	go func() { sampling <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-sampling; err != nil {
			t.Errorf("console: %v", err)
		}
	})
	w.c = c // served by the bench's server from now on
	return w
}

// course inserts a task whose download runs in mode, and returns its id and
// its job.
func (w *world) course(email, mode string) (int64, string) {
	w.t.Helper()
	url := "https://" + courseHost + "/course/go?fake_mode=" + mode
	res := w.db.MustExec("INSERT INTO download_tasks (order_id, email, course_url, is_enrolled) VALUES (7, ?, ?, 1)", email, url)
	id, err := res.LastInsertId()
	if err != nil {
		w.t.Fatal(err)
	}
	b, _ := json.Marshal(map[string]any{"taskId": id, "email": email, "courseUrl": url})
	return id, string(b)
}

func (w *world) status(id int64) string {
	w.t.Helper()
	var s string
	if err := w.db.Get(&s, "SELECT status FROM download_tasks WHERE id = ?", id); err != nil {
		w.t.Fatal(err)
	}
	return s
}

// lifecycleHas reports whether a lifecycle line holds s.
func (w *world) lifecycleHas(s string) bool {
	files, _ := filepath.Glob(filepath.Join(w.logs, "lifecycle-*.log"))
	for _, f := range files {
		if b, err := os.ReadFile(f); err == nil && strings.Contains(string(b), s) { //nolint:gosec // the test's own logs
			return true
		}
	}
	return false
}

// chrome is a headless Chromium tab, with what it saw: dialogs opened and
// every request made.
type chrome struct {
	t        *testing.T
	ctx      context.Context
	shots    string
	mu       sync.Mutex
	dialogs  []string
	requests []string
}

// openChrome starts Debian's chromium, headless, with a fresh profile.
func openChrome(t *testing.T) *chrome {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("no chromium on PATH: install Debian's chromium (scripts/services.sh install does): %v", err)
	}
	profile, err := os.MkdirTemp("", "coursedl-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Chromium's children may still write there for a moment after it stops.
		testutil.Eventually(t, 10*time.Second, func() bool { return os.RemoveAll(profile) == nil }, "remove %s", profile)
	})
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // tests run as root
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1280, 900),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	c := &chrome{t: t, shots: shotsDir(t)}
	ctx, cancelTab := chromedp.NewContext(allocCtx, chromedp.WithListener(c.saw))
	ctx, cancelTime := context.WithTimeout(ctx, 40*time.Second)
	t.Cleanup(func() {
		cancelTime()
		cancelTab()
		cancelAlloc()
	})
	c.ctx = ctx
	return c
}

// saw records the events the test asserts on. It runs on the tab's reading
// goroutine: it only appends.
func (c *chrome) saw(ev any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch e := ev.(type) {
	case *cdppage.EventJavascriptDialogOpening:
		c.dialogs = append(c.dialogs, string(e.Type)+": "+e.Message)
	case *network.EventRequestWillBeSent:
		c.requests = append(c.requests, e.Request.URL)
	}
}

// do runs actions, failing the test with what was being done.
func (c *chrome) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	c.t.Helper()
	if err := chromedp.Do(c.ctx, actions...); err != nil {
		c.t.Fatalf("%s: %v", what, err)
	}
}

// click clicks sel and waits for the page it loads.
func (c *chrome) click(sel string) {
	c.t.Helper()
	if _, err := chromedp.RunResponse(c.ctx, chromedp.Click(chromedp.CSS(sel))); err != nil {
		c.t.Fatalf("click %s: %v", sel, err)
	}
}

// poll waits until the JavaScript expression is truthy, and returns it.
func poll[T any](c *chrome, what, expr string) T {
	c.t.Helper()
	v, err := chromedp.Run(c.ctx, chromedp.Poll[T](expr, chromedp.WithPollingTimeout(30*time.Second), chromedp.WithPollingInterval(50*time.Millisecond)))
	if err != nil {
		c.t.Fatalf("wait for %s: %v", what, err)
	}
	return v
}

// text returns the text content of sel.
func (c *chrome) text(sel string) string {
	c.t.Helper()
	s, err := chromedp.Run(c.ctx, chromedp.TextContent(chromedp.CSS(sel)))
	if err != nil {
		c.t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

// shot saves a PNG of the whole page.
func (c *chrome) shot(name string) {
	c.t.Helper()
	png, err := chromedp.Run(c.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		c.t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(c.shots, name+".png")
	if err := os.WriteFile(path, png, 0o600); err != nil {
		c.t.Fatal(err)
	}
}

// shotsDir is where the screenshots go: COURSEDL_SCREENSHOTS, or a folder in
// the system's temporary folder; it outlives the test, for a person to look at.
func shotsDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("COURSEDL_SCREENSHOTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "coursedl-console-shots")
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots in %s", dir)
	return dir
}

func TestBrowser(t *testing.T) {
	w := startWorld(t)
	c := openChrome(t)
	url := w.srv.URL

	// Log in.
	c.do("log in", chromedp.Navigate(url+"/login"),
		chromedp.SendKeys(chromedp.CSS(`input[name="name"]`), "olga"),
		chromedp.SendKeys(chromedp.CSS(`input[name="password"]`), passwords["olga"]))
	c.shot("01-login")
	c.click(`section.login button[type="submit"]`)
	c.do("overview", chromedp.WaitVisible(chromedp.CSS("#queue-depth")))
	c.shot("02-overview")

	// A task runs: its bar moves on the running page, without a reload.
	ada, adaJob := w.course("ada@example.com", "crawl")
	w.rc.LPush(context.Background(), queueKey, adaJob)
	testutil.Eventually(t, 20*time.Second, func() bool {
		return w.rc.HGet(context.Background(), rdb.ProgressKey(ada), "percent").Val() != ""
	}, "task %d never reported a percentage", ada)
	c.do("running page", chromedp.Navigate(url+"/running"))
	bar := fmt.Sprintf(`document.querySelector('tr[data-task="%d"] progress')`, ada)
	first := poll[float64](c, "a value on the bar", fmt.Sprintf(`%s && %s.hasAttribute("value") && %s.value`, bar, bar, bar))
	c.do("mark the page", chromedp.Evaluate[chromedp.Void](`window.notReloaded = true`))
	later := poll[float64](c, "the bar to move", fmt.Sprintf(`%s.value >= %f + 10 && %s.value`, bar, first, bar))
	if !poll[bool](c, "the same page", `window.notReloaded === true`) {
		t.Fatal("the running page reloaded")
	}
	t.Logf("running page: the bar of task %d moved from %.1f%% to %.1f%%", ada, first, later)
	c.shot("03-running")

	// Find it by e-mail; its log is followed until it completes.
	c.do("search", chromedp.Navigate(url+"/search"), chromedp.SendKeys(chromedp.CSS(`input[name="q"]`), "ada@example.com"))
	c.click(`form.search button`)
	c.do("task found", chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`#task[data-task="%d"]`, ada))))
	if got := c.text("#row-email"); got != "ada@example.com" {
		t.Fatalf("e-mail shown %q", got)
	}
	poll[bool](c, "the live log", `document.getElementById("log").textContent.includes("[download]")`)
	c.shot("04-search-running")
	poll[bool](c, "the task to complete", `document.getElementById("row-status").textContent === "completed"`)
	if got := w.status(ada); got != store.StatusCompleted {
		t.Fatalf("task %d: %s", ada, got)
	}
	c.shot("05-search-completed")

	// A rejected job: its row says another address. The row is put right,
	// the dead letter requeued from the page, and the task runs.
	bob, _ := w.course("bob@example.com", "ok")
	bobJob, _ := json.Marshal(map[string]any{"taskId": bob, "email": "robert@example.com", "courseUrl": "https://" + courseHost + "/course/go?fake_mode=ok"})
	w.rc.LPush(context.Background(), queueKey, string(bobJob))
	testutil.Eventually(t, 20*time.Second, func() bool { return w.rc.LLen(context.Background(), rdb.DeadKey).Val() == 1 }, "job not dead-lettered")
	w.db.MustExec("UPDATE download_tasks SET email = 'robert@example.com' WHERE id = ?", bob)
	c.do("dead letters", chromedp.Navigate(url+"/dead"), chromedp.WaitVisible(chromedp.CSS("article.entry")))
	c.shot("06-dead")
	c.click("article.entry button.requeue")
	if got := c.text(".flash"); !strings.Contains(got, "Requeued 1 dead letter") {
		t.Fatalf("after requeue: %q", got)
	}
	testutil.Eventually(t, 30*time.Second, func() bool { return w.status(bob) == store.StatusCompleted }, "requeued task %d never completed", bob)
	c.do("the requeued task", chromedp.Navigate(fmt.Sprintf("%s/search?q=task:%d", url, bob)), chromedp.WaitVisible(chromedp.CSS("#row-status")))
	if got := c.text("#row-status"); got != "completed" {
		t.Fatalf("requeued task shows %q", got)
	}
	c.shot("07-requeued-completed")

	hostileDeadLetter(t, w, c)
	pauseAndResume(t, w, c)
	otherLists(t, w, c)
	readOnly(t, w, c, ada)
}

// The same data through a console without users: nothing to log in to, no
// form, the buyer's address masked.
func readOnly(t *testing.T, w *world, c *chrome, task int64) {
	t.Helper()
	ro, err := console.New(console.Params{Tool: w.tool, Log: zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(ro)
	t.Cleanup(srv.Close)
	c.do("read-only search", chromedp.Navigate(fmt.Sprintf("%s/search?q=task:%d", srv.URL, task)), chromedp.WaitVisible(chromedp.CSS("#row-email")))
	if got := c.text("#row-email"); got != "***@example.com" {
		t.Fatalf("read-only console shows the address as %q", got)
	}
	if n := poll[string](c, "a count", `String(document.querySelectorAll('form[method="post"]').length)`); n != "0" {
		t.Fatalf("%s forms that change things on a read-only console", n)
	}
	c.shot("14-read-only-search")
}

// A dead letter whose payload carries markup shows it as text: no dialog, no
// element made, no request to the image it names (on the console's own
// origin, which the Content-Security-Policy would let through).
func hostileDeadLetter(t *testing.T, w *world, c *chrome) {
	t.Helper()
	payload := `{"taskId":"<script>alert(1)</script>","email":"<img src=/canary.png onerror=alert(2)>"}`
	if err := w.door.DeadLetter(context.Background(), payload, `<script>alert(3)</script> <img src=/canary-reason.png>`, time.Now()); err != nil {
		t.Fatal(err)
	}
	c.do("hostile dead letter", chromedp.Navigate(w.srv.URL+"/dead"), chromedp.WaitVisible(chromedp.CSS("article.entry pre.payload")))
	if got := c.text("article.entry pre.payload"); got != payload {
		t.Fatalf("payload shown as %q, want the text %q", got, payload)
	}
	if n := poll[float64](c, "the entries", `document.querySelectorAll("article.entry").length`); n < 1 {
		t.Fatal("no entries")
	}
	if n := poll[string](c, "a count", `String(document.querySelectorAll("main script, main img").length)`); n != "0" {
		t.Fatalf("%s script or img elements made from a dead letter", n)
	}
	c.shot("08-hostile")
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.dialogs) > 0 {
		t.Fatalf("dialogs opened: %q", c.dialogs)
	}
	for _, u := range c.requests {
		if strings.Contains(u, "canary") {
			t.Fatalf("the browser asked for %s", u)
		}
	}
	t.Logf("hostile dead letter: shown as text; %d requests made, none to its images; no dialog", len(c.requests))
}

// Pause and resume intake from the overview: the workers see it and say so.
func pauseAndResume(t *testing.T, w *world, c *chrome) {
	t.Helper()
	c.do("overview", chromedp.Navigate(w.srv.URL+"/"),
		chromedp.SendKeys(chromedp.CSS(`input[name="reason"]`), "new cookies"))
	c.click("#pause")
	if got := c.text("#intake-state"); !strings.Contains(got, "paused") {
		t.Fatalf("intake after pause: %q", got)
	}
	testutil.Eventually(t, 20*time.Second, func() bool { return w.lifecycleHas("[INTAKE_PAUSED] [Reason: operator: new cookies (by olga)]") },
		"no INTAKE_PAUSED line")
	c.shot("09-paused")
	c.click("#resume")
	if got := c.text("#intake-state"); !strings.Contains(got, "taking jobs") {
		t.Fatalf("intake after resume: %q", got)
	}
	testutil.Eventually(t, 20*time.Second, func() bool { return w.lifecycleHas("[INTAKE_RESUMED]") }, "no INTAKE_RESUMED line")
	c.shot("10-resumed")
}

// The other lists, with something in them, for the screenshots.
func otherLists(t *testing.T, w *world, c *chrome) {
	t.Helper()
	ctx := context.Background()
	late, lateJob := w.course("late@example.com", "ok")
	w.rc.ZAdd(ctx, rdb.DelayedKey, redis.Z{Score: float64(time.Now().Add(10 * time.Minute).UnixMilli()), Member: lateJob})
	w.rc.HSet(ctx, rdb.AttemptsKey, fmt.Sprint(late), 1)
	id := fmt.Sprintf("msg_task%d_completed", late)
	if err := w.door.StageEvent(ctx, id, late, "task.completed", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	if err := w.door.BuryEvent(ctx, id, 9, "HTTP 410 Gone"); err != nil {
		t.Fatal(err)
	}
	c.do("delayed", chromedp.Navigate(w.srv.URL+"/delayed"), chromedp.WaitVisible(chromedp.CSS("button.run-now")))
	c.shot("11-delayed")
	c.do("webhooks", chromedp.Navigate(w.srv.URL+"/webhooks"), chromedp.WaitVisible(chromedp.CSS("button.redeliver")))
	c.shot("12-webhooks")
	c.do("workers", chromedp.Navigate(w.srv.URL+"/workers"), chromedp.WaitVisible(chromedp.CSS("span.state.live")))
	c.shot("13-workers")
}
