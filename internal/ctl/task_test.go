package ctl_test

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/coursedl/worker/internal/ctl"
	"github.com/coursedl/worker/internal/progress"
	"github.com/coursedl/worker/internal/rdb"
	"github.com/coursedl/worker/internal/tasklog"
)

// taskLog writes lines to the task's log through the worker's own writer.
func (w *world) taskLog(id int64, lines ...string) {
	w.t.Helper()
	l, err := tasklog.Open(tasklog.Options{Dir: w.logs}, id)
	if err != nil {
		w.t.Fatal(err)
	}
	for _, s := range lines {
		l.Line(tasklog.SourceDownload, []byte(s))
	}
	if err := l.Close(); err != nil {
		w.t.Fatal(err)
	}
}

func percent(p float64) *float64 { return &p }

func TestTask(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	id := w.task(nil, "buyer@example.com", "https://www.udemy.com/course/x/", true)
	w.db.MustExec("UPDATE download_tasks SET status = 'downloading' WHERE id = ?", id)
	var lines []string
	for i := 1; i <= 30; i++ {
		lines = append(lines, fmt.Sprintf("[download] %d.0%% of 10.00MiB", i))
	}
	w.taskLog(id, lines...)
	pub := progress.NewPublisher(w.door(""), nil)
	at := time.Date(2026, 11, 28, 20, 0, 0, 0, time.UTC)
	if err := pub.Publish(ctx, progress.Event{TaskID: id, Stage: progress.StageDownloading, Percent: percent(42.3), Speed: "1.23MiB/s", ETA: "00:07", At: at}); err != nil {
		t.Fatal(err)
	}
	w.rc.HSet(ctx, rdb.AttemptsKey, fmt.Sprint(id), 2)
	w.rc.Set(ctx, rdb.LockKey(id), "token", time.Minute)
	w.rc.LPush(ctx, rdb.ProcessingKey("host-a"), jobOf(id+1), jobOf(id))
	w.rc.LPush(ctx, rdb.ProcessingKey("host-b"), jobOf(id+2))

	r := w.run("task", fmt.Sprint(id)).ok(t)
	hasLines(t, r.stdout,
		fmt.Sprintf("task %d", id),
		"status downloading",
		"email buyer@example.com",
		"course https://www.udemy.com/course/x/",
		"order none",
		"enrolled yes",
		"drive url -",
		"error -",
		"progress downloading [##########--------------] 42.3% 1.23MiB/s eta 00:07 (at 2026-11-28T20:00:00Z)",
		"attempts 2",
		"in hand of host-a (its log is on that host)",
	)
	if !regexp.MustCompile(`(?m)^  running +yes: a worker holds its lock`).MatchString(r.stdout) {
		t.Errorf("lock not shown:\n%s", r.stdout)
	}
	if !strings.Contains(r.stdout, fmt.Sprintf("log %s (last 20 lines):\n", tasklog.Path(w.logs, id))) {
		t.Errorf("log heading missing:\n%s", r.stdout)
	}
	logPart := r.stdout[strings.Index(r.stdout, "(last 20 lines):\n")+len("(last 20 lines):\n"):]
	logLines := strings.Split(strings.TrimSuffix(logPart, "\n"), "\n")
	if len(logLines) != 20 || !strings.HasSuffix(logLines[0], "[download] [download] 11.0% of 10.00MiB") ||
		!strings.HasSuffix(logLines[19], "[download] [download] 30.0% of 10.00MiB") {
		t.Errorf("log lines: %d, first %q, last %q", len(logLines), logLines[0], logLines[len(logLines)-1])
	}

	// Failed, with -n and --json.
	w.db.MustExec("UPDATE download_tasks SET status = 'failed', error_message = 'download failed: exit 1' WHERE id = ?", id)
	w.rc.Del(ctx, rdb.LockKey(id))
	w.rc.Del(ctx, rdb.ProcessingKey("host-a"))
	due := time.Date(2026, 11, 28, 21, 0, 0, 0, time.UTC)
	w.rc.ZAdd(ctx, rdb.DelayedKey, redis.Z{Score: float64(due.UnixMilli()), Member: jobOf(id)})
	var rep ctl.TaskReport
	w.run("task", fmt.Sprint(id), "-n", "3", "--json").ok(t).decode(t, &rep)
	if rep.TaskID != id || rep.Row == nil || rep.Row.Status != "failed" || rep.Row.ErrorMessage == nil ||
		*rep.Row.ErrorMessage != "download failed: exit 1" || rep.Row.OrderID != nil || rep.Row.DriveURL != nil ||
		rep.Progress == nil || rep.Progress.Stage != "downloading" || *rep.Progress.Percent != 42.3 || !rep.Progress.At.Equal(at) ||
		rep.Attempts != 2 || rep.LockTTLSeconds != nil || !rep.Log.Exists || len(rep.Log.Lines) != 3 ||
		len(rep.InHandOf) != 0 || rep.RetryAt == nil || !rep.RetryAt.Equal(due) {
		t.Fatalf("task --json: %+v", rep)
	}

	// A task the worker has never seen: the row only.
	fresh := w.task(nil, "buyer@example.com", "https://www.udemy.com/course/y/", false)
	r = w.run("task", fmt.Sprint(fresh)).ok(t)
	hasLines(t, r.stdout, "status pending", "progress none kept (none yet, or expired 24 h after the task ended)",
		"attempts 0", "running no worker holds its lock",
		fmt.Sprintf("log %s: none yet", tasklog.Path(w.logs, fresh)))

	r = w.run("task", fmt.Sprint(fresh+1000))
	if r.code != ctl.ExitError || !strings.Contains(r.stderr, "no download_tasks row") {
		t.Fatalf("unknown task: exit %d %q", r.code, r.stderr)
	}
}

// `task` says where the task's jobs and webhook events are: in the queue, among
// the dead letters, in the outbox.
func TestTaskWhereItsJobIs(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	id := w.task(nil, "buyer@example.com", "https://www.udemy.com/course/x/", true)
	w.rc.LPush(ctx, "queue:downloads", jobOf(id), jobOf(id+1)) // the task's job is taken next
	door := w.door("host-a")
	if err := door.DeadLetter(ctx, jobOf(id), "taskId: no download_tasks row", time.Date(2026, 11, 28, 20, 0, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	if err := door.StageEvent(ctx, "msg_x", id, "task.failed", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	if err := door.ReleaseEvent(ctx, "msg_x", id); err != nil {
		t.Fatal(err)
	}
	if err := door.BuryEvent(ctx, "msg_x", 9, "HTTP 410"); err != nil {
		t.Fatal(err)
	}
	r := w.run("task", fmt.Sprint(id)).ok(t)
	hasLines(t, r.stdout,
		"queued #1 in line (1 is taken next)",
		"dead letter #1 at 2026-11-28T20:00:00Z: taskId: no download_tasks row",
		"webhook task.failed msg_x: given up, 9 attempts, last error: HTTP 410")
	var rep ctl.TaskReport
	w.run("task", fmt.Sprint(id), "--json").ok(t).decode(t, &rep)
	if rep.Queued != 1 || len(rep.Dead) != 1 || rep.Dead[0].Payload != jobOf(id) ||
		len(rep.Webhooks) != 1 || rep.Webhooks[0].State != rdb.EventGivenUp || rep.Webhooks[0].Due != nil {
		t.Fatalf("task --json: %+v", rep)
	}
}
