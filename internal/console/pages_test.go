package console_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/coursedl/worker/internal/console"
	"github.com/coursedl/worker/internal/ctl"
	"github.com/coursedl/worker/internal/lifecycle"
	"github.com/coursedl/worker/internal/progress"
	"github.com/coursedl/worker/internal/rdb"
	"github.com/coursedl/worker/internal/tasklog"
)

// With no users the console is read-only: no login, no form that changes
// anything, every POST refused, e-mail addresses masked and no search by
// e-mail; and it will not serve on an address other than loopback.
func TestReadOnly(t *testing.T) {
	b := newBench(t, nil)
	ctx := context.Background()
	id, job := b.task(12, "a+b.c@example.com")
	if err := b.door.DeadLetter(ctx, job, "email does not match the row", time.Now()); err != nil {
		t.Fatal(err)
	}
	br := b.browser()
	for _, path := range []string{"/", "/running", "/search", "/dead", "/delayed", "/webhooks", "/workers", fmt.Sprintf("/search?q=%d", id)} {
		br.get(path).is(t, http.StatusOK).has(t, "read-only").lacks(t, `method="post"`, "a+b.c@", "a&#43;b.c@", "b.c@example.com")
	}
	br.get(fmt.Sprintf("/search?q=%d", id)).has(t, "***@example.com")
	br.get("/dead").has(t, "***@example.com")
	br.get("/search?q="+url.QueryEscape("a+b.c@example.com")).has(t, "needs a login").lacks(t, "Task "+fmt.Sprint(id))
	br.get("/login").is(t, http.StatusSeeOther)
	for _, path := range []string{"/dead/requeue", "/intake/pause", "/login", "/logout"} {
		br.postFrom(b.srv.URL, path, url.Values{"all": {"1"}}).is(t, http.StatusForbidden)
	}
	if n := b.rc.LLen(ctx, rdb.DeadKey).Val(); n != 1 {
		t.Fatalf("dead letters: %d", n)
	}

	tool := &ctl.Tool{Redis: b.door}
	for _, listen := range []string{"0.0.0.0:0", ":9109", "192.0.2.1:9109"} {
		err := console.Serve(ctx, ctl.WebParams{Tool: tool, Listen: listen, Stderr: &strings.Builder{}})
		if err == nil || !strings.Contains(err.Error(), "console.listen") || !strings.Contains(err.Error(), "console.users is empty") {
			t.Fatalf("Serve on %s without users: %v", listen, err)
		}
	}
	// On loopback it serves, until its context ends.
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- console.Serve(sctx, ctl.WebParams{Tool: tool, Listen: "127.0.0.1:0", Stderr: &strings.Builder{}})
	}()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve on loopback: %v", err)
	}
}

// The overview shows the figures and the intake; the workers page the
// heartbeats and the tasks each worker runs.
func TestOverviewAndWorkers(t *testing.T) {
	b := newBench(t, userItems(t, "olga"))
	ctx := context.Background()
	id, job := b.task(12, "buyer@example.com")
	b.rc.LPush(ctx, queueKey, job, job)
	w := rdb.New(b.rc, rdb.Options{Queue: queueKey, Worker: "dl-host-1"})
	if _, err := w.Beat(ctx, rdb.WorkerInfo{Host: "dl-host-1", PID: 4242, Concurrency: 2, Token: "t", Version: "v1.4.0", Started: "2026-11-28T19:00:00Z"}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if ok, err := w.AcquireLock(ctx, id, w.LockToken(rdb.LockSuffix("r", b.clock.Now().Add(-90*time.Second))), time.Minute); err != nil || !ok {
		t.Fatal("lock", err)
	}
	b.db.MustExec("UPDATE download_tasks SET status = 'completed' WHERE id = ?", id)
	if err := b.c.SampleNow(ctx); err != nil {
		t.Fatal(err)
	}
	br := b.browser().login("olga")
	p := br.get("/").is(t, http.StatusOK)
	p.has(t, `<span class="n" id="queue-depth">2</span>`, `<span class="n">1</span><span class="k">running</span>`,
		`<span class="n">1</span><span class="k">workers alive</span>`, "taking jobs", `<rect class="done"`, "1 completed",
		`<polyline class="line"`, `<option value="dl-host-1">`)
	br.get("/workers").has(t, "dl-host-1", "4242", "v1.4.0", "live", fmt.Sprintf(">%d</a>", id), "2026-11-28T19:00:00Z", "taking jobs")
	br.get("/running").has(t, fmt.Sprintf(`data-task="%d"`, id), "dl-host-1", "1m3")
}

// Search finds a task by id, order and e-mail address, and says where its job
// is, with its webhook events, lifecycle lines and log.
func TestSearch(t *testing.T) {
	b := newBench(t, userItems(t, "olga"))
	ctx := context.Background()
	queued, queuedJob := b.task(21, "queued@example.com")
	delayed, delayedJob := b.task(22, "delayed@example.com")
	dead, deadJob := b.task(23, "dead@example.com")
	running, runningJob := b.task(24, "running@example.com")
	b.task(24, "running@example.com") // a second task of order 24

	b.rc.LPush(ctx, queueKey, queuedJob, "other") // "other" is pushed last: the task's job is taken next
	due := time.Date(2026, 11, 28, 21, 0, 0, 0, time.UTC)
	b.rc.ZAdd(ctx, rdb.DelayedKey, redis.Z{Score: float64(due.UnixMilli()), Member: delayedJob})
	if err := b.door.DeadLetter(ctx, deadJob, "courseUrl: host not allowed", time.Date(2026, 11, 28, 20, 0, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	w := rdb.New(b.rc, rdb.Options{Queue: queueKey, Worker: "dl-host-1"})
	b.rc.LPush(ctx, rdb.ProcessingKey("dl-host-1"), runningJob)
	if ok, err := w.AcquireLock(ctx, running, w.LockToken("r"), time.Minute); err != nil || !ok {
		t.Fatal("lock", err)
	}
	if err := w.StageEvent(ctx, "msg_task_failed_x", dead, "task.failed", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	lc, err := lifecycle.Open(b.logs, nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = lc.Write("JOB_REJECTED", dead, lifecycle.F("Reason", "courseUrl: host not allowed"))
	_ = lc.Close()
	tl, err := tasklog.Open(tasklog.Options{Dir: b.logs}, running)
	if err != nil {
		t.Fatal(err)
	}
	tl.Line(tasklog.SourceDownload, []byte("[download]  42.0% of 1.00MiB"))
	_ = tl.Close()

	br := b.browser().login("olga")
	br.get(fmt.Sprintf("/search?q=%d", queued)).has(t, fmt.Sprintf("Task %d", queued), "queued@example.com",
		"Waiting in the queue, #1 in line", "pending")
	br.get("/search?q="+url.QueryEscape("DELAYED@example.com")).has(t, fmt.Sprintf("Task %d", delayed),
		"Delayed: its retry is due at 2026-11-28 21:00:00Z")
	br.get("/search?q=order:23").has(t, fmt.Sprintf("Task %d", dead), "Dead letter #1 since 2026-11-28T20:00:00Z: courseUrl: host not allowed",
		"msg_task_failed_x", "staged", "[JOB_REJECTED] [TaskId: ", "[Reason: courseUrl: host not allowed]")
	br.get(fmt.Sprintf("/search?q=task:%d", running)).has(t, "Running on dl-host-1.", "[download]  42.0% of 1.00MiB",
		fmt.Sprintf(`data-follow="/events/task/%d"`, running))
	br.get("/search?q=24").has(t, "2 tasks of this order", fmt.Sprintf(">%d</a>", running))
	br.get("/search?q=999999999").has(t, "No task 999999999", "No order 999999999 either.")
	br.get("/search?q="+url.QueryEscape("nobody@example.com")).has(t, "No task of this e-mail address.")
}

// A dead letter's payload is hostile: it shows as text, never as markup.
func TestHostilePayloadIsEscaped(t *testing.T) {
	b := newBench(t, userItems(t, "olga"))
	ctx := context.Background()
	hostile := `{"taskId":"</pre><script>alert(1)</script>","email":"<img src=x onerror=alert(2)>"}`
	if err := b.door.DeadLetter(ctx, hostile, `reason <b onmouseover=alert(3)>`, time.Now()); err != nil {
		t.Fatal(err)
	}
	b.rc.LPush(ctx, rdb.DeadKey, `<svg onload=alert(4)>not even JSON`)
	br := b.browser().login("olga")
	br.get("/dead").is(t, http.StatusOK).
		lacks(t, "<script>alert", "<img src=x", "<b onmouseover", "<svg onload", "</pre><script>").
		has(t, "&lt;/pre&gt;&lt;script&gt;alert(1)&lt;/script&gt;", "&lt;img src=x onerror=alert(2)&gt;",
			"reason &lt;b onmouseover=alert(3)&gt;", "&lt;svg onload=alert(4)&gt;not even JSON")
}

// The lists' forms requeue, purge, run now and redeliver, and Redis changes
// as the commands would change it.
func TestActions(t *testing.T) {
	b := newBench(t, userItems(t, "olga"))
	ctx := context.Background()
	a, jobA := b.task(31, "a@example.com")
	_, jobB := b.task(32, "b@example.com")
	_, jobC := b.task(33, "c@example.com")
	for _, j := range []string{jobA, jobB, jobC} {
		if err := b.door.DeadLetter(ctx, j, "test", time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	b.rc.HSet(ctx, rdb.AttemptsKey, fmt.Sprint(a), 3)
	br := b.browser().login("olga")
	page := br.get("/dead").has(t, "3 in the list")
	id := entryID(t, page.body, 1)
	br.post("/dead/requeue", url.Values{"id": {id}}).is(t, http.StatusSeeOther)
	if q := b.rc.LRange(ctx, queueKey, 0, -1).Val(); len(q) != 1 || q[0] != jobA {
		t.Fatalf("queue after requeueing #1: %q", q)
	}
	if b.rc.HExists(ctx, rdb.AttemptsKey, fmt.Sprint(a)).Val() {
		t.Fatal("attempts of a requeued task kept")
	}
	br.get("/dead").has(t, "Requeued 1 dead letter(s) onto queue:downloads.", "2 in the list")
	// The same id again: gone, nothing pushed.
	br.post("/dead/requeue", url.Values{"id": {id}}).is(t, http.StatusSeeOther)
	br.get("/dead").has(t, "Nothing requeued")
	if n := b.rc.LLen(ctx, queueKey).Val(); n != 1 {
		t.Fatalf("queue %d after requeueing a gone entry", n)
	}
	br.get("/dead?q=b@example").has(t, "1 match the filter").lacks(t, "c@example.com")
	br.post("/dead/requeue", url.Values{"all": {"1"}}).is(t, http.StatusSeeOther)
	if n := b.rc.LLen(ctx, queueKey).Val(); n != 3 || b.rc.LLen(ctx, rdb.DeadKey).Val() != 0 {
		t.Fatalf("after requeue all: queue %d, dead %d", n, b.rc.LLen(ctx, rdb.DeadKey).Val())
	}

	// Purge wants its box ticked.
	b.rc.LPush(ctx, rdb.DeadKey, "x", "y")
	br.post("/dead/purge", nil).is(t, http.StatusSeeOther)
	if n := b.rc.LLen(ctx, rdb.DeadKey).Val(); n != 2 {
		t.Fatalf("purge without confirm: %d left", n)
	}
	br.post("/dead/purge", url.Values{"confirm": {"yes"}}).is(t, http.StatusSeeOther)
	if n := b.rc.LLen(ctx, rdb.DeadKey).Val(); n != 0 {
		t.Fatalf("purge: %d left", n)
	}

	// Run a delayed job now: to the head of the queue.
	b.rc.Del(ctx, queueKey)
	b.rc.LPush(ctx, queueKey, "waiting")
	b.rc.ZAdd(ctx, rdb.DelayedKey, redis.Z{Score: float64(time.Now().Add(time.Hour).UnixMilli()), Member: jobB})
	page = br.get("/delayed").has(t, "1 delayed", "b@example.com", "in 59m")
	br.post("/delayed/run", url.Values{"id": {ctl.Digest(jobB)}}).is(t, http.StatusSeeOther)
	if q := b.rc.LRange(ctx, queueKey, 0, -1).Val(); len(q) != 2 || q[1] != jobB || b.rc.ZCard(ctx, rdb.DelayedKey).Val() != 0 {
		t.Fatalf("queue after run now: %q", q)
	}
	br.get("/delayed").has(t, "is at the head of the queue")

	// Redeliver a given-up webhook event.
	for _, ev := range []string{"msg_1", "msg_2"} {
		if err := b.door.StageEvent(ctx, ev, a, "task.completed", []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
		if err := b.door.ReleaseEvent(ctx, ev, a); err != nil {
			t.Fatal(err)
		}
		if err := b.door.BuryEvent(ctx, ev, 9, "HTTP 410 Gone"); err != nil {
			t.Fatal(err)
		}
	}
	br.get("/webhooks").has(t, "msg_1", "HTTP 410 Gone", "2 given up")
	br.post("/webhooks/redeliver", url.Values{"id": {"msg_1"}}).is(t, http.StatusSeeOther)
	if b.rc.ZScore(ctx, rdb.OutboxKey, "msg_1").Err() != nil || b.rc.LLen(ctx, rdb.OutboxDeadKey).Val() != 1 {
		t.Fatal("msg_1 not due again")
	}
	br.post("/webhooks/redeliver", url.Values{"all": {"1"}}).is(t, http.StatusSeeOther)
	if b.rc.ZCard(ctx, rdb.OutboxKey).Val() != 2 || b.rc.LLen(ctx, rdb.OutboxDeadKey).Val() != 0 {
		t.Fatal("redeliver all left events given up")
	}
}

// entryID reads the id of dead letter #index from the dead letters page.
func entryID(t *testing.T, body string, index int) string {
	t.Helper()
	i := strings.Index(body, fmt.Sprintf(`data-index="%d"`, index))
	if i < 0 {
		t.Fatalf("no dead letter #%d on the page", index)
	}
	rest := body[i:]
	j := strings.Index(rest, `name="id" value="`)
	if j < 0 {
		t.Fatalf("no requeue form for #%d", index)
	}
	rest = rest[j+len(`name="id" value="`):]
	return rest[:strings.IndexByte(rest, '"')]
}

// The progress stream sends every event published on dl:progress, as the
// contract spells it.
func TestProgressStream(t *testing.T) {
	b := newBench(t, userItems(t, "vic"))
	br := b.browser().login("vic")
	events := br.stream("/events/progress")
	pub := progress.NewPublisher(b.door, nil)
	pct := 42.5
	if err := pub.Publish(context.Background(), progress.Event{TaskID: 17, Stage: progress.StageDownloading, Percent: &pct, Speed: "1.2MiB/s", ETA: "00:07"}); err != nil {
		t.Fatal(err)
	}
	got := events.next(t)
	if got.event != "progress" || !strings.Contains(got.data, `"taskId":17`) || !strings.Contains(got.data, `"percent":42.5`) ||
		!strings.Contains(got.data, `"stage":"downloading"`) || !strings.Contains(got.data, `"eta":"00:07"`) {
		t.Fatalf("event %+v", got)
	}
}

// A task's stream follows its log and progress until it ends; e-mail
// addresses in its lines are masked for a visitor of a read-only console.
func TestTaskStream(t *testing.T) {
	b := newBench(t, nil)
	ctx := context.Background()
	id, _ := b.task(12, "buyer@example.com")
	tl, err := tasklog.Open(tasklog.Options{Dir: b.logs}, id)
	if err != nil {
		t.Fatal(err)
	}
	tl.Line(tasklog.SourceRclone, []byte("rclone: copying to gdrive:Courses/buyer@example.com/"))
	if err := tl.Close(); err != nil { // written out
		t.Fatal(err)
	}
	pub := progress.NewPublisher(b.door, nil)
	pct := 10.0
	if err := pub.Publish(ctx, progress.Event{TaskID: id, Stage: progress.StageDownloading, Percent: &pct}); err != nil {
		t.Fatal(err)
	}
	events := b.browser().stream(fmt.Sprintf("/events/task/%d", id))
	first := events.next(t)
	if !strings.Contains(first.data, `"log"`) || !strings.Contains(first.data, "***@example.com") || strings.Contains(first.data, "buyer@") {
		t.Fatalf("first event %+v: want the log line, masked", first)
	}
	if ev := events.next(t); !strings.Contains(ev.data, `"progress"`) || !strings.Contains(ev.data, `"percent":10`) {
		t.Fatalf("second event %+v: want the kept progress", ev)
	}
	if tl, err = tasklog.Open(tasklog.Options{Dir: b.logs}, id); err != nil {
		t.Fatal(err)
	}
	tl.Line(tasklog.SourceDownload, []byte("[download] 100% of 1.00MiB"))
	if ev := events.next(t); !strings.Contains(ev.data, "[download] 100% of 1.00MiB") {
		t.Fatalf("appended line: %+v", ev)
	}
	if err := pub.Publish(ctx, progress.Event{TaskID: id, Stage: progress.StageCompleted}); err != nil {
		t.Fatal(err)
	}
	_ = tl.Close()
	for {
		ev := events.next(t)
		if strings.Contains(ev.data, `"end":"completed"`) {
			break
		}
	}
}
