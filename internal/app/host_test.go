package app

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coursedl/worker/internal/rdb"
	"github.com/coursedl/worker/internal/testutil"
)

// The download host's cases of issue "a download host in the real world": each
// drives the whole worker against real Redis, MariaDB, rclone (or yt-dlp) and
// asserts what a user sees: rows, lifecycle lines, /readyz, files, webhooks.

// readyz returns /readyz's status and body.
func (e *env) readyz() (int, string) {
	e.t.Helper()
	return testutil.Get(e.t, "http://"+e.app.MetricsAddr()+"/readyz")
}

// fillFile writes a file of mib MiB at path.
func fillFile(t *testing.T, path string, mib int) {
	t.Helper()
	if err := os.WriteFile(path, make([]byte, mib<<20), 0o600); err != nil {
		t.Fatal(err)
	}
}

func (e *env) queued() int64 {
	return e.rdb.LLen(context.Background(), "queue:downloads").Val()
}

func (e *env) attempts(id int64) string {
	return e.rdb.HGet(context.Background(), rdb.AttemptsKey, fmt.Sprint(id)).Val()
}

// No task starts while the staging disk has less than download.min_free_mb:
// the job waits in the queue, /readyz says why, and it runs once there is room.
func TestDiskLowHoldsJobsBack(t *testing.T) {
	e := newEnv(t)
	e.fake("ok")
	disk := testutil.Tmpfs(t, 16)
	e.settings["WORKER_DOWNLOAD_STAGING_DIR"] = disk
	e.settings["WORKER_DOWNLOAD_MIN_FREE_MB"] = "8"
	e.settings["WORKER_METRICS_LISTEN"] = "127.0.0.1:0"
	filler := filepath.Join(disk, "filler")
	fillFile(t, filler, 12)
	e.start()
	testutil.Eventually(t, 10*time.Second, func() bool {
		code, body := e.readyz()
		return code == http.StatusServiceUnavailable && strings.Contains(body, "staging disk low")
	}, "/readyz with the disk low: want 503 naming the disk")
	id, payload := e.task(true, "/c/x.mp4")
	e.push(payload)
	testutil.Consistently(t, 1500*time.Millisecond, func() bool { return e.queued() == 1 && e.row(id).Status == "pending" },
		"a job was taken while the staging disk was low")
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	e.waitStatus(id, "completed", 30*time.Second)
	testutil.Eventually(t, 10*time.Second, func() bool { code, _ := e.readyz(); return code == http.StatusOK }, "/readyz 200 with room again")
	_, body := testutil.Get(t, "http://"+e.app.MetricsAddr()+"/metrics")
	if v := metric(body, "coursedl_staging_free_bytes"); v < 8<<20 {
		t.Errorf("coursedl_staging_free_bytes = %v with the disk free again", v)
	}
}

// A download that fills the disk is deferred, not failed: no attempt used up,
// its folder kept for the next run to go on from.
func TestDownloadHittingENOSPCIsDeferred(t *testing.T) {
	e := newEnv(t)
	e.fake("fill")
	disk := testutil.Tmpfs(t, 16)
	e.settings["WORKER_DOWNLOAD_STAGING_DIR"] = disk
	e.settings["WORKER_RETRY_BASE_DELAY"] = "1h" // one run is enough to look at
	id, payload := e.task(true, "/c/x.mp4")
	e.start()
	e.push(payload)
	deferred := regexp.MustCompile(fmt.Sprintf(`\[TASK_DEFERRED\] \[TaskId: %d\] \[OrderId: \d+\] \[Reason: disk low\] \[Next: \S+\]`, id))
	testutil.Eventually(t, 30*time.Second, func() bool { return deferred.MatchString(e.lifecycle()) }, "no TASK_DEFERRED disk low line:\n%s", e.lifecycle())
	testutil.Eventually(t, 10*time.Second, func() bool { return e.row(id).Status == "processing" }, "the row waits as processing")
	if lc := e.lifecycle(); strings.Contains(lc, "[TASK_FAILED]") || strings.Contains(lc, "[TASK_RETRY]") {
		t.Fatalf("a full disk failed or retried the task:\n%s", lc)
	}
	if a := e.attempts(id); a != "" {
		t.Fatalf("a full disk used up an attempt: %s", a)
	}
	if _, err := os.Stat(filepath.Join(disk, fmt.Sprintf("task-%d", id), "Fake Course", "lesson-1.txt")); err != nil {
		t.Fatalf("the partial download was not kept: %v", err)
	}
	if !strings.Contains(e.taskLog(id), "No space left on device") {
		t.Fatalf("the task log does not say why:\n%s", e.taskLog(id))
	}
}

// download.breaker_failures tasks in a row refused by the course site pause
// intake instead of failing every paid task; the tasks wait; `workerctl
// resume` after new cookies lets them all complete.
func TestBreakerPausesIntakeAndTheTasksWait(t *testing.T) {
	e := newEnv(t)
	forbid := filepath.Join(t.TempDir(), "cookies-expired")
	fillFile(t, forbid, 0)
	e.fake("forbid")
	e.settings["WORKER_DOWNLOAD_ENV"] = fmt.Sprintf(`["FAKE_FORBID=%s"]`, forbid)
	e.settings["WORKER_DOWNLOAD_BREAKER_FAILURES"] = "2"
	e.settings["WORKER_METRICS_LISTEN"] = "127.0.0.1:0"
	e.start()
	var ids []int64
	for range 2 {
		id, payload := e.task(true, "/c/x.mp4")
		ids = append(ids, id)
		e.push(payload)
	}
	testutil.Eventually(t, 30*time.Second, func() bool { return strings.Contains(e.lifecycle(), "[INTAKE_PAUSED]") },
		"no INTAKE_PAUSED line:\n%s", e.lifecycle())
	lc := e.lifecycle()
	if !regexp.MustCompile(`\[INTAKE_PAUSED\] \[Reason: 2 tasks in a row failed in the downloader: HTTP 403`).MatchString(lc) {
		t.Errorf("INTAKE_PAUSED does not say why:\n%s", lc)
	}
	testutil.Eventually(t, 10*time.Second, func() bool { code, body := e.readyz(); return code == 503 && strings.Contains(body, "intake paused") },
		"/readyz does not say intake is paused")
	pausedGauge := func() float64 {
		_, body := testutil.Get(t, "http://"+e.app.MetricsAddr()+"/metrics")
		return metric(body, "coursedl_intake_paused")
	}
	if v := pausedGauge(); v != 1 {
		t.Errorf("coursedl_intake_paused = %v while paused, want 1", v)
	}
	third, payload := e.task(true, "/c/x.mp4")
	e.push(payload)
	testutil.Consistently(t, 1500*time.Millisecond, func() bool { return e.row(third).Status == "pending" }, "a job was taken while intake was paused")
	for _, id := range ids {
		// The pause is written as the second task fails, before its own line.
		testutil.Eventually(t, 10*time.Second, func() bool {
			return strings.Contains(e.lifecycle(), fmt.Sprintf("[TASK_DEFERRED] [TaskId: %d]", id))
		}, "task %d has no TASK_DEFERRED line", id)
		if r := e.row(id); r.Status == "failed" || e.attempts(id) != "" {
			t.Fatalf("task %d tripped the breaker and was failed or used an attempt: %+v, attempts %q", id, r, e.attempts(id))
		}
	}
	// The operator renews the cookies and resumes.
	if err := os.Remove(forbid); err != nil {
		t.Fatal(err)
	}
	if _, err := rdb.New(e.rdb, rdb.Options{Queue: "queue:downloads"}).Resume(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, id := range append(ids, third) {
		e.waitStatus(id, "completed", 30*time.Second)
		e.hook.accepted(t, id)
	}
	if !strings.Contains(e.lifecycle(), "[INTAKE_RESUMED]") {
		t.Errorf("no INTAKE_RESUMED line:\n%s", e.lifecycle())
	}
	if v := pausedGauge(); v != 0 {
		t.Errorf("coursedl_intake_paused = %v after resume, want 0", v)
	}
}

// rcloneRuns counts the runs a record file of fake-rclone holds whose
// arguments include word.
func rcloneRuns(t *testing.T, path, word string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, run := range strings.Split(string(b), "\n") {
		if strings.Contains(run, "\x00"+word+"\x00") || strings.HasPrefix(run, word+"\x00") {
			n++
		}
	}
	return n
}

// The upload destination's quota defers the task until upload.quota_wait has
// passed; the downloaded files stay and the downloader does not run again: the
// task resumes at the upload.
func TestUploadQuotaDefersAndResumesAtTheUpload(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	dl, rc := filepath.Join(dir, "downloader-runs"), filepath.Join(dir, "rclone-runs")
	quotaLog := filepath.Join(dir, "quota.json")
	b, err := os.ReadFile(filepath.Join(testutil.Root(t), "testdata", "rclone", "move-drive-quota-json.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(quotaLog, b, 0o600); err != nil {
		t.Fatal(err)
	}
	e.fake("record")
	e.settings["WORKER_DOWNLOAD_ENV"] = fmt.Sprintf(`["FAKE_RECORD=%s"]`, dl)
	e.settings["WORKER_UPLOAD_RCLONE"] = filepath.Join(testutil.Root(t), "testdata", "fake-rclone")
	e.settings["WORKER_UPLOAD_ENV"] = fmt.Sprintf(`["FAKE_RCLONE_LOG=%s", "FAKE_RCLONE_RECORD=%s"]`, quotaLog, rc)
	e.settings["WORKER_UPLOAD_QUOTA_WAIT"] = "2s"
	e.start()
	id, payload := e.task(true, "/c/x.mp4")
	e.push(payload)
	testutil.Eventually(t, 30*time.Second, func() bool {
		return strings.Contains(e.lifecycle(), fmt.Sprintf("[TASK_DEFERRED] [TaskId: %d]", id))
	}, "no TASK_DEFERRED line:\n%s", e.lifecycle())
	if lc := e.lifecycle(); !strings.Contains(lc, "[Reason: upload quota]") || strings.Contains(lc, "[TASK_FAILED]") {
		t.Fatalf("want the task deferred for the upload quota, not failed:\n%s", lc)
	}
	// The quota is back (the next day): rclone moves again.
	if err := os.Remove(quotaLog); err != nil {
		t.Fatal(err)
	}
	e.waitStatus(id, "completed", 30*time.Second)
	e.hook.accepted(t, id)
	if n := len(runs(t, dl)); n != 1 {
		t.Errorf("the downloader ran %d times, want once: the task resumes at the upload", n)
	}
	if n := rcloneRuns(t, rc, "move"); n != 2 {
		t.Errorf("rclone move ran %d times, want 2 (refused, then done)", n)
	}
	if e.attempts(id) != "" {
		t.Errorf("the quota used up an attempt")
	}
}

// After a successful upload, a row that cannot be written makes the job wait;
// its next run neither downloads nor uploads again.
func TestRowWriteFailureAfterUploadDoesNotDownloadAgain(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	dl, rc := filepath.Join(dir, "downloader-runs"), filepath.Join(dir, "rclone-runs")
	e.fake("record")
	e.settings["WORKER_DOWNLOAD_ENV"] = fmt.Sprintf(`["FAKE_RECORD=%s"]`, dl)
	e.settings["WORKER_UPLOAD_RCLONE"] = filepath.Join(testutil.Root(t), "testdata", "fake-rclone")
	e.settings["WORKER_UPLOAD_ENV"] = fmt.Sprintf(`["FAKE_RCLONE_RECORD=%s"]`, rc)
	// MariaDB refuses to mark a task completed until the trigger goes.
	e.db.MustExec(`CREATE TRIGGER refuse_completion BEFORE UPDATE ON download_tasks FOR EACH ROW
BEGIN
  IF NEW.status = 'completed' THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'test: completion refused'; END IF;
END`)
	e.start()
	id, payload := e.task(true, "/c/x.mp4")
	e.push(payload)
	testutil.Eventually(t, 30*time.Second, func() bool {
		return e.rdb.ZCard(context.Background(), rdb.DelayedKey).Val() == 1 && strings.Contains(e.lifecycle(), "[UPLOAD_SUCCESS]")
	}, "the job never waited after its row could not be written")
	e.db.MustExec("DROP TRIGGER refuse_completion")
	e.waitStatus(id, "completed", 30*time.Second)
	e.hook.accepted(t, id)
	if n := len(runs(t, dl)); n != 1 {
		t.Errorf("the downloader ran %d times, want once", n)
	}
	if n := rcloneRuns(t, rc, "move"); n != 1 {
		t.Errorf("rclone move ran %d times, want once", n)
	}
	if !strings.Contains(e.taskLog(id), "upload done by an earlier run") {
		t.Errorf("the task log does not say the re-run went on from the upload:\n%s", e.taskLog(id))
	}
	if ds := e.hook.deliveries(id); len(ds) != 1 {
		t.Errorf("%d task.completed deliveries, want 1", len(ds))
	}
}

// download.cookies_file: each task its own 0600 copy ({cookies}), which the
// downloader may write back to; the original never changes; the copy is gone
// when the task ends, also from a folder kept after a failure; the contents
// reach no log.
func TestCookiesCopyPerTask(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	cookies, seen := filepath.Join(dir, "cookies.txt"), filepath.Join(dir, "seen")
	const secretCookie = "session-7d1f0c2a9e"
	orig := "# Netscape HTTP Cookie File\n.127.0.0.1\tTRUE\t/\tFALSE\t0\tsid\t" + secretCookie + "\n"
	if err := os.WriteFile(cookies, []byte(orig), 0o600); err != nil {
		t.Fatal(err)
	}
	e.settings["WORKER_DOWNLOAD_COMMAND"] = fmt.Sprintf(`[%q, "auto", "{url}", "{dir}", "{cookies}"]`,
		filepath.Join(testutil.Root(t), "testdata", "fake-downloader"))
	e.settings["WORKER_DOWNLOAD_COOKIES_FILE"] = cookies
	e.settings["WORKER_DOWNLOAD_ENV"] = fmt.Sprintf(`["FAKE_COOKIES_SEEN=%s"]`, seen)
	e.start()
	a, pa := e.task(true, "/c/x.mp4?fake_mode=cookies")
	b, pb := e.task(true, "/c/y.mp4?fake_mode=cookies")
	c, pc := e.task(true, "/c/z.mp4?fake_mode=cookiesonly")
	for _, p := range []string{pa, pb, pc} {
		e.push(p)
	}
	e.waitStatus(a, "completed", 30*time.Second)
	e.waitStatus(b, "completed", 30*time.Second)
	e.waitStatus(c, "failed", 30*time.Second)
	var got []byte
	records, _ := filepath.Glob(seen + ".*")
	for _, r := range records {
		b, _ := os.ReadFile(r)
		got = append(got, b...)
	}
	for _, id := range []int64{a, b, c} {
		want := "path " + filepath.Join(e.root, "staging", fmt.Sprintf("task-%d", id), ".cookies.txt") + "\n" + orig
		if !strings.Contains(string(got), want) {
			t.Errorf("task %d's downloader did not get its own copy of the cookies:\n%s", id, got)
		}
	}
	if strings.Contains(string(got), "written back") {
		t.Errorf("a downloader saw what another wrote into its cookies:\n%s", got)
	}
	if now, _ := os.ReadFile(cookies); string(now) != orig {
		t.Errorf("download.cookies_file changed: %q", now)
	}
	if _, err := os.Stat(e.stagingDir(c)); err != nil {
		t.Fatalf("the failed task's folder was not kept: %v", err)
	}
	if _, err := os.Stat(filepath.Join(e.stagingDir(c), ".cookies.txt")); !os.IsNotExist(err) {
		t.Errorf("the cookies copy outlived its task in the kept folder: %v", err)
	}
	logs := e.lifecycle()
	for _, id := range []int64{a, b, c} {
		logs += e.taskLog(id)
	}
	if strings.Contains(logs, secretCookie) {
		t.Errorf("the cookies' contents reached a log")
	}
}

// A course site allowed by download.allowed_hosts redirects to a loopback
// address: real yt-dlp, through the task's egress guard, never reaches it, and
// nothing of it is uploaded.
func TestEgressGuardRefusesARedirectToLoopback(t *testing.T) {
	e := newEnv(t)
	var hits atomic.Int64
	ln, err := (&net.ListenConfig{}).Listen(t.Context(), "tcp", "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	internal := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		_, _ = w.Write([]byte("internal secret"))
	}))
	_ = internal.Listener.Close()
	internal.Listener = ln
	internal.Start()
	t.Cleanup(internal.Close)
	site := httptest.NewServer(http.RedirectHandler(internal.URL+"/internal-secret.mp4", http.StatusFound))
	t.Cleanup(site.Close)
	e.settings["WORKER_RETRY_MAX_ATTEMPTS"] = "1"
	e.start()
	id, payload := e.task(true, "/c/x.mp4")
	url := site.URL + "/c/x.mp4" // the same host as the course server: allowed
	e.db.MustExec("UPDATE download_tasks SET course_url = ? WHERE id = ?", url, id)
	payload = strings.Replace(payload, e.course.URL+"/c/x.mp4", url, 1)
	e.push(payload)
	r := e.waitStatus(id, "failed", 60*time.Second)
	if !strings.Contains(deref(r.ErrMsg), "egress guard refused 127.0.0.2") {
		t.Errorf("error_message = %q, want it to name the refused destination", deref(r.ErrMsg))
	}
	if !strings.Contains(e.taskLog(id), "egress guard refused 127.0.0.2") {
		t.Errorf("no refusal line in the task log:\n%s", e.taskLog(id))
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("the internal server was reached %d times", n)
	}
	if files, _ := filepath.Glob(filepath.Join(e.root, "drive", "*", "*")); len(files) != 0 {
		t.Fatalf("uploaded: %v", files)
	}
}

// Real yt-dlp against a course site answering 403 (the cookies expired): the
// task waits, unfailed, and the breaker (download.breaker_failures 1 here)
// pauses intake.
func TestCourseSiteAnswering403TripsTheBreaker(t *testing.T) {
	e := newEnv(t)
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "log in first", http.StatusForbidden)
	}))
	t.Cleanup(site.Close)
	e.settings["WORKER_DOWNLOAD_BREAKER_FAILURES"] = "1"
	e.start()
	id, payload := e.task(true, "/c/x.mp4")
	url := site.URL + "/c/x.mp4"
	e.db.MustExec("UPDATE download_tasks SET course_url = ? WHERE id = ?", url, id)
	e.push(strings.Replace(payload, e.course.URL+"/c/x.mp4", url, 1))
	testutil.Eventually(t, 60*time.Second, func() bool { return strings.Contains(e.lifecycle(), "[INTAKE_PAUSED]") },
		"no INTAKE_PAUSED line:\n%s", e.lifecycle())
	// The pause is written as the task fails, before the task's own line.
	testutil.Eventually(t, 10*time.Second, func() bool {
		lc := e.lifecycle()
		return strings.Contains(lc, fmt.Sprintf("[TASK_DEFERRED] [TaskId: %d] [OrderId: ", id)) && strings.Contains(lc, "[Reason: course site refused: HTTP 403]")
	}, "no TASK_DEFERRED line naming the 403:\n%s", e.lifecycle())
	if r := e.row(id); r.Status == "failed" || e.attempts(id) != "" {
		t.Fatalf("the task was failed or used an attempt: %+v", r)
	}
}
