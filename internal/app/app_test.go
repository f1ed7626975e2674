package app

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coursedl/worker/internal/progress"
	"github.com/coursedl/worker/internal/rdb"
	"github.com/coursedl/worker/internal/testutil"
	"github.com/coursedl/worker/internal/upload"
)

// subscribe collects the progress events of task id from dl:progress.
func subscribe(t *testing.T, e *env, id int64) func() []progress.Event {
	t.Helper()
	sub := e.rdb.Subscribe(context.Background(), rdb.ProgressChannel)
	if _, err := sub.Receive(context.Background()); err != nil { // subscription confirmed
		t.Fatal(err)
	}
	var mu sync.Mutex
	var events []progress.Event
	go func() {
		for msg := range sub.Channel() {
			var ev progress.Event
			if json.Unmarshal([]byte(msg.Payload), &ev) == nil && ev.TaskID == id {
				mu.Lock()
				events = append(events, ev)
				mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() { _ = sub.Close() })
	return func() []progress.Event {
		mu.Lock()
		defer mu.Unlock()
		return append([]progress.Event(nil), events...)
	}
}

func stages(evs []progress.Event) []string {
	var out []string
	for _, ev := range evs {
		if len(out) == 0 || out[len(out)-1] != ev.Stage {
			out = append(out, ev.Stage)
		}
	}
	return out
}

// The whole path: a job pushed as the web app pushes it ends as a completed row,
// files in the destination, a verified webhook, progress, logs, no staging.
func TestJobBecomesDriveLink(t *testing.T) {
	e := newEnv(t)
	id, payload := e.task(true, "/courses/go/lesson-1.mp4")
	events := subscribe(t, e, id)
	e.start()
	e.push(payload)

	r := e.waitStatus(id, "completed", 60*time.Second)
	// The row is written first; the cleanup, the task log's last lines and the
	// acknowledgement follow: wait for the job to leave the processing list.
	testutil.Eventually(t, 10*time.Second, func() bool {
		return e.rdb.LLen(context.Background(), rdb.ProcessingKey(e.settings["WORKER_WORKER_ID"])).Val() == 0
	}, "job acknowledged")
	wantURL := fmt.Sprintf("https://drive.example/%d/Course", id)
	if r.DriveURL == nil || *r.DriveURL != wantURL || r.ErrMsg != nil {
		t.Fatalf("row = %+v, want drive_url %s", r, wantURL)
	}
	files, err := upload.Files(filepath.Join(e.root, "drive", "Course"))
	if err != nil || len(files) != 1 || files[0] != "lesson-1.mp4" {
		t.Fatalf("destination holds %v, %v", files, err)
	}
	if fi, _ := os.Stat(filepath.Join(e.root, "drive", "Course", "lesson-1.mp4")); fi.Size() != 2<<20 {
		t.Fatalf("uploaded file of %d bytes", fi.Size())
	}

	d := e.hook.accepted(t, id)
	if !d.Verified || d.Event.Type != "task.completed" || d.Event.DriveURL != wantURL ||
		d.Event.Email != "buyer@example.com" || d.Event.Folder != "Course" || d.Event.OrderID == nil {
		t.Fatalf("webhook = %+v", d)
	}
	for _, key := range []string{"type", "taskId", "orderId", "email", "driveUrl", "folder", "durationSeconds", "timestamp"} {
		if _, ok := d.Raw[key]; !ok {
			t.Errorf("webhook body lacks %s: %v", key, d.Raw)
		}
	}

	if _, err := os.Stat(e.stagingDir(id)); !os.IsNotExist(err) {
		t.Errorf("staging folder left after success: %v", err)
	}
	tl := e.taskLog(id)
	if !regexp.MustCompile(`(?m)^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \[download\] \[download\] +\d+\.\d+% of`).MatchString(tl) {
		t.Errorf("task log lacks yt-dlp's [download] lines:\n%s", tl)
	}
	if !strings.Contains(tl, "[rclone") {
		t.Errorf("task log lacks rclone's lines:\n%s", tl)
	}
	lc := e.lifecycle()
	for _, ev := range []string{"JOB_RECEIVED", "ENROLL_CONFIRMED", "DOWNLOAD_START", "DOWNLOAD_SUCCESS", "UPLOAD_SUCCESS", "TASK_COMPLETED"} {
		if !regexp.MustCompile(`(?m)^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \[` + ev + `\] \[TaskId: ` + strconv.FormatInt(id, 10) + `\]`).MatchString(lc) {
			t.Errorf("lifecycle lacks %s for task %d:\n%s", ev, id, lc)
		}
	}
	testutil.Eventually(t, 10*time.Second, func() bool { return strings.Contains(e.lifecycle(), "[WEBHOOK_SENT]") }, "WEBHOOK_SENT line")

	testutil.Eventually(t, 5*time.Second, func() bool {
		evs := events()
		return len(evs) > 0 && evs[len(evs)-1].Stage == progress.StageCompleted
	}, "progress ends with completed: %v", stages(events()))
	got := stages(events())
	idx := func(s string) int {
		for i, g := range got {
			if g == s {
				return i
			}
		}
		return -1
	}
	if idx("downloading") < 0 || idx("downloading") > idx("completed") {
		t.Errorf("progress stages %v: want downloading before completed", got)
	}
	sawPercent := false
	for _, ev := range events() {
		if ev.Stage == progress.StageDownloading && ev.Percent != nil {
			sawPercent = true
		}
	}
	if !sawPercent {
		t.Error("no downloading event with a percent")
	}
	hash := e.rdb.HGetAll(context.Background(), rdb.ProgressKey(id)).Val()
	if hash["stage"] != "completed" {
		t.Errorf("latest progress in %s = %v", rdb.ProgressKey(id), hash)
	}
}

func TestEnrollment(t *testing.T) {
	e := newEnv(t)
	e.fake("ok")
	e.start()

	t.Run("set 1 s after the push", func(t *testing.T) {
		id, payload := e.task(false, "/c/late.mp4")
		e.push(payload)
		time.AfterFunc(time.Second, func() { e.db.MustExec("UPDATE download_tasks SET is_enrolled = 1 WHERE id = ?", id) })
		e.waitStatus(id, "completed", 30*time.Second)
		if d := e.hook.accepted(t, id); d.Event.Type != "task.completed" {
			t.Fatalf("webhook %+v", d.Event)
		}
	})
	t.Run("never set", func(t *testing.T) {
		id, payload := e.task(false, "/c/never.mp4")
		e.push(payload)
		r := e.waitStatus(id, "failed", 30*time.Second)
		if r.ErrMsg == nil || *r.ErrMsg != "enrollment required" {
			t.Fatalf("error_message = %v", r.ErrMsg)
		}
		d := e.hook.accepted(t, id)
		if d.Event.Type != "task.failed" || d.Event.Error != "enrollment required" || d.Event.DriveURL != "" || !d.Verified {
			t.Fatalf("webhook %+v", d)
		}
		if _, ok := d.Raw["driveUrl"]; ok {
			t.Error("task.failed carries driveUrl")
		}
		if _, err := os.Stat(e.stagingDir(id)); !os.IsNotExist(err) {
			t.Error("the downloader's folder exists: it was started")
		}
		lc := e.lifecycle()
		if !strings.Contains(lc, fmt.Sprintf("[ENROLL_TIMEOUT] [TaskId: %d]", id)) || strings.Contains(lc, fmt.Sprintf("[DOWNLOAD_START] [TaskId: %d]", id)) {
			t.Fatalf("lifecycle:\n%s", lc)
		}
	})
}

func TestDownloaderFails(t *testing.T) {
	e := newEnv(t)
	e.fake("fail")
	e.start()
	id, payload := e.task(true, "/c/x.mp4")
	e.push(payload)
	r := e.waitStatus(id, "failed", 30*time.Second)
	if r.ErrMsg == nil || !strings.Contains(*r.ErrMsg, "exit status 3") || !strings.Contains(*r.ErrMsg, "ERROR: fake failure for http://127.0.0.1") {
		t.Fatalf("error_message = %v; want the exit status and the last stderr lines", r.ErrMsg)
	}
	if _, err := os.Stat(e.stagingDir(id)); err != nil {
		t.Errorf("staging folder not kept after failure: %v", err)
	}
	if d := e.hook.accepted(t, id); d.Event.Type != "task.failed" || !strings.Contains(d.Event.Error, "exit status 3") {
		t.Fatalf("webhook %+v", d.Event)
	}
	lc := e.lifecycle()
	if strings.Count(lc, fmt.Sprintf("[DOWNLOAD_FAILED] [TaskId: %d]", id)) != 2 {
		t.Fatalf("want DOWNLOAD_FAILED for each of the 2 attempts:\n%s", lc)
	}
	if !regexp.MustCompile(fmt.Sprintf(`\[TASK_RETRY\] \[TaskId: %d\] \[OrderId: \d+\] \[Attempt: 1\] \[Next: \S+Z\]`, id)).MatchString(lc) {
		t.Fatalf("no TASK_RETRY line with the attempt and the next time:\n%s", lc)
	}
	// After the last attempt the job is in dl:dead with the reason.
	testutil.Eventually(t, 5*time.Second, func() bool {
		dead, _ := e.dead()
		return len(dead) == 1 && dead[0].Payload == payload && strings.Contains(dead[0].Reason, "after 2 attempts")
	}, "job in dl:dead after the last attempt")
	if !strings.Contains(*r.ErrMsg, "(after 2 attempts)") {
		t.Errorf("error_message = %q", *r.ErrMsg)
	}
	if n := e.rdb.HLen(context.Background(), rdb.AttemptsKey).Val(); n != 0 {
		t.Errorf("attempt count left behind")
	}
}

func TestDownloaderTimeoutKillsTree(t *testing.T) {
	e := newEnv(t)
	e.fake("hang")
	e.settings["WORKER_DOWNLOAD_TIMEOUT"] = "1s"
	e.start()
	id, payload := e.task(true, "/c/x.mp4")
	e.push(payload)
	r := e.waitStatus(id, "failed", 30*time.Second)
	if r.ErrMsg == nil || !strings.Contains(*r.ErrMsg, "timed out after 1s") {
		t.Fatalf("error_message = %v", r.ErrMsg)
	}
	raw, err := os.ReadFile(filepath.Join(e.stagingDir(id), "grandchild.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(raw)))
	testutil.Eventually(t, 10*time.Second, func() bool { return gone(pid) }, "grandchild %d still alive", pid)
}

// The status write beside the downloader's start: when it cannot be made, the
// downloader is stopped (not left to run to its timeout), nothing is recorded as
// a download failure, and the job waits to run again.
func TestStatusWriteFailureStopsDownloader(t *testing.T) {
	e := newEnv(t)
	e.fake("slow")
	e.settings["WORKER_DOWNLOAD_ENV"] = `["FAKE_SLOW_SECONDS=60"]`
	e.db.MustExec(`CREATE TRIGGER no_downloading BEFORE UPDATE ON download_tasks FOR EACH ROW
		IF NEW.status = 'downloading' THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'no downloading now'; END IF`)
	e.start()
	id, payload := e.task(true, "/c/x.mp4")
	e.push(payload)
	// write tries for about 2 s; the downloader would run for 60.
	testutil.Eventually(t, 20*time.Second, func() bool {
		return e.rdb.ZScore(context.Background(), rdb.DelayedKey, payload).Err() == nil
	}, "job not waiting in %s", rdb.DelayedKey)
	if !strings.Contains(e.taskLog(id), "] [download] ") {
		t.Errorf("the downloader never ran beside the status write:\n%s", e.taskLog(id))
	}
	if r := e.row(id); r.Status != "processing" || r.ErrMsg != nil {
		t.Errorf("row = %s, %v; want processing and no error", r.Status, deref(r.ErrMsg))
	}
	if lc := e.lifecycle(); strings.Contains(lc, "DOWNLOAD_FAILED") || strings.Contains(lc, "DOWNLOAD_SUCCESS") {
		t.Errorf("a status write failure recorded as the download's outcome:\n%s", lc)
	}
	if n, _ := e.rdb.LLen(context.Background(), rdb.DeadKey).Result(); n != 0 {
		t.Errorf("%d dead letters, want none", n)
	}
}

// gone reports whether pid no longer runs (a zombie waiting for init counts).
func gone(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return true
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	return err != nil || strings.Contains(string(stat), ") Z ")
}

// Each kind of bad job of contract section 1 goes to dl:dead with its reason; the
// worker goes on.
func TestBadJobsDeadLettered(t *testing.T) {
	e := newEnv(t)
	e.fake("ok")
	e.start()
	id, _ := e.task(true, "/c/x.mp4")
	url := e.course.URL + "/c/x.mp4"
	cases := []struct{ payload, reason string }{
		{`not json`, "not a JSON object"},
		{`{"email": "buyer@example.com", "courseUrl": "` + url + `"}`, "taskId is missing"},
		{`{"taskId": "abc", "email": "buyer@example.com", "courseUrl": "` + url + `"}`, "taskId must be a positive whole number"},
		{`{"taskId": 999999999999, "email": "buyer@example.com", "courseUrl": "` + url + `"}`, "no download_tasks row with id 999999999999"},
		{fmt.Sprintf(`{"taskId": %d, "email": "other@example.com", "courseUrl": %q}`, id, url), "email does not match"},
		{fmt.Sprintf(`{"taskId": %d, "email": "buyer@example.com", "courseUrl": %q}`, id, url+"?x"), "courseUrl does not match"},
		{fmt.Sprintf(`{"taskId": %d, "email": "buyer@example.com", "courseUrl": %q, "orderId": 987654321}`, id, url), "orderId does not match"},
		{fmt.Sprintf(`{"taskId": %d, "email": "not-an-email", "courseUrl": %q}`, id, url), "not a valid address"},
		{fmt.Sprintf(`{"taskId": %d, "email": "buyer@example.com", "courseUrl": "https://evil.test/c"}`, id), "not in download.allowed_hosts"},
		{fmt.Sprintf(`{"taskId": %d, "email": "buyer@example.com", "courseUrl": "ftp://127.0.0.1/c"}`, id), "http or https"},
	}
	for _, c := range cases {
		e.push(c.payload)
	}
	var dead []rdb.Dead
	testutil.Eventually(t, 20*time.Second, func() bool {
		dead, _ = e.dead()
		return len(dead) == len(cases)
	}, "not all %d jobs in dl:dead", len(cases))
	byPayload := map[string]rdb.Dead{}
	for _, d := range dead {
		byPayload[d.Payload] = d
	}
	for _, c := range cases {
		d, ok := byPayload[c.payload]
		if !ok {
			t.Errorf("%s: not in dl:dead as received", c.payload)
			continue
		}
		if !strings.Contains(d.Reason, c.reason) || d.Worker != e.settings["WORKER_WORKER_ID"] || d.At == "" {
			t.Errorf("%s: dead entry %+v, want reason %q", c.payload, d, c.reason)
		}
	}
	if n := strings.Count(e.lifecycle(), "[JOB_REJECTED]"); n != len(cases) {
		t.Errorf("%d JOB_REJECTED lines, want %d", n, len(cases))
	}
	// The worker is alive: a good job still completes.
	_, payload := e.task(true, "/c/after.mp4")
	e.push(payload)
	good := taskIDOf(t, payload)
	e.waitStatus(good, "completed", 30*time.Second)
	if st := e.row(id).Status; st != "pending" {
		t.Errorf("a rejected job touched its row: %s", st)
	}
}

func taskIDOf(t *testing.T, payload string) int64 {
	t.Helper()
	var j struct{ TaskID int64 }
	if err := json.Unmarshal([]byte(payload), &j); err != nil {
		t.Fatal(err)
	}
	return j.TaskID
}

func TestCompletedTaskSkipped(t *testing.T) {
	e := newEnv(t)
	e.fake("hang") // would time out if it ran
	e.start()
	id, payload := e.task(true, "/c/x.mp4")
	e.db.MustExec("UPDATE download_tasks SET status = 'completed', drive_url = 'https://d/1' WHERE id = ?", id)
	e.push(payload)
	testutil.Eventually(t, 10*time.Second, func() bool {
		ctx := context.Background()
		return e.rdb.LLen(ctx, "queue:downloads").Val() == 0 &&
			e.rdb.LLen(ctx, rdb.ProcessingKey(e.settings["WORKER_WORKER_ID"])).Val() == 0
	}, "job acknowledged")
	if n := e.rdb.LLen(context.Background(), rdb.DeadKey).Val(); n != 0 {
		t.Fatalf("a duplicate job was dead-lettered")
	}
	if _, err := os.Stat(e.stagingDir(id)); !os.IsNotExist(err) {
		t.Fatal("a completed task ran again")
	}
	if r := e.row(id); r.Status != "completed" || *r.DriveURL != "https://d/1" {
		t.Fatalf("row = %+v", r)
	}
}

func TestWebhookRetriedWithOneID(t *testing.T) {
	// Any answer but 2xx is retried on the schedule (contract section 4): a web
	// app down (503), or a deploy answering 404 for a while.
	for _, statuses := range [][]int{{503, 503}, {404, 404, 404}} {
		t.Run(fmt.Sprint(statuses), func(t *testing.T) {
			e := newEnv(t)
			e.fake("ok")
			e.hook.fail(statuses...)
			e.start()
			id, payload := e.task(true, "/c/x.mp4")
			e.push(payload)
			e.waitStatus(id, "completed", 30*time.Second)
			e.hook.accepted(t, id)
			ds := e.hook.deliveries(id)
			if len(ds) != len(statuses)+1 {
				t.Fatalf("%d attempts, want %d (%v, then 200)", len(ds), len(statuses)+1, statuses)
			}
			for _, d := range ds {
				if d.ID != ds[0].ID || !d.Verified {
					t.Fatalf("attempts %+v: want one webhook-id, each signed", ds)
				}
			}
			lc := e.lifecycle()
			if c := strings.Count(lc, "[WEBHOOK_FAILED]"); c != len(statuses) {
				t.Errorf("%d WEBHOOK_FAILED lines, want %d", c, len(statuses))
			}
			if strings.Contains(lc, "[Final: true]") {
				t.Errorf("an event was given up:\n%s", lc)
			}
		})
	}
}

// SIGTERM-like stop during a download: the job goes back to the queue.
func TestStopRequeues(t *testing.T) {
	e := newEnv(t)
	e.fake("slow")
	e.settings["WORKER_WORKER_SHUTDOWN_GRACE"] = "200ms"
	stop := e.start()
	id, payload := e.task(true, "/c/x.mp4")
	e.push(payload)
	testutil.Eventually(t, 20*time.Second, func() bool { return e.row(id).Status == "downloading" }, "download started")
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	q := e.rdb.LRange(context.Background(), "queue:downloads", 0, -1).Val()
	if len(q) != 1 || q[0] != payload {
		t.Fatalf("queue after stop = %v, want the job back", q)
	}
	e.settings["WORKER_WORKER_SHUTDOWN_GRACE"] = "5s"
	e.start()
	e.waitStatus(id, "completed", 30*time.Second)
}
