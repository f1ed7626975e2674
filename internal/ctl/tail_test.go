package ctl_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/coursedl/worker/internal/ctl"
	"github.com/coursedl/worker/internal/progress"
	"github.com/coursedl/worker/internal/tasklog"
	"github.com/coursedl/worker/internal/testutil"
)

// tailRun is a `workerctl tail` running in the background.
type tailRun struct {
	out  *testutil.SyncBuffer
	done chan int
}

func (w *world) startTail(terminal bool, args ...string) *tailRun {
	w.t.Helper()
	tr := &tailRun{out: &testutil.SyncBuffer{}, done: make(chan int, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	full := append([]string{"--config", w.config, "--env-file", w.envFile, "tail"}, args...)
	go func() {
		tr.done <- ctl.Main(ctx, ctl.Env{Args: full, Stdout: tr.out, Stderr: tr.out, Terminal: terminal})
	}()
	w.t.Cleanup(cancel)
	return tr
}

func (tr *tailRun) waitFor(t *testing.T, s string) {
	t.Helper()
	testutil.Eventually(t, 10*time.Second, func() bool { return strings.Contains(tr.out.String(), s) },
		"tail never showed %q; it showed:\n%s", s, tr.out)
}

func (tr *tailRun) exit(t *testing.T) int {
	t.Helper()
	select {
	case code := <-tr.done:
		return code
	case <-time.After(15 * time.Second):
		t.Fatalf("tail did not end; it showed:\n%s", tr.out)
		return -1
	}
}

// runTask plays a task as the worker would: log lines through tasklog, events
// through the publisher, the row last; the final log line is still in tasklog's
// buffer when the final event goes out.
func (w *world) runTask(t *testing.T, tr *tailRun, id int64, final string) {
	t.Helper()
	ctx := context.Background()
	pub := progress.NewPublisher(w.door(""), nil)
	tl, err := tasklog.Open(tasklog.Options{Dir: w.logs}, id)
	if err != nil {
		t.Fatal(err)
	}
	tl.Printf("download started")
	for _, p := range []float64{10, 55.5} {
		if err := pub.Publish(ctx, progress.Event{TaskID: id, Stage: progress.StageDownloading, Percent: percent(p), Speed: "2.00MiB/s", ETA: "00:05"}); err != nil {
			t.Fatal(err)
		}
	}
	// Another task's events on the same channel are not shown.
	if err := pub.Publish(ctx, progress.Event{TaskID: id + 1, Stage: progress.StageFailed}); err != nil {
		t.Fatal(err)
	}
	tr.waitFor(t, "55.5")
	tr.waitFor(t, "download started")
	if err := pub.Publish(ctx, progress.Event{TaskID: id, Stage: progress.StageUploading}); err != nil {
		t.Fatal(err)
	}
	if final == progress.StageFailed {
		w.db.MustExec("UPDATE download_tasks SET status = 'failed', error_message = 'upload failed: rclone exit 5' WHERE id = ?", id)
	} else {
		w.db.MustExec("UPDATE download_tasks SET status = 'completed' WHERE id = ?", id)
	}
	tl.Printf("task %s", final)
	if err := pub.Publish(ctx, progress.Event{TaskID: id, Stage: final}); err != nil {
		t.Fatal(err)
	}
	// The worker closes the log after the final event: the last line reaches the
	// file after the event reached tail.
	if err := tl.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestTailFollowsATaskToItsEnd(t *testing.T) {
	w := newWorld(t)
	id := w.task(nil, "buyer@example.com", "https://www.udemy.com/course/x/", true)
	w.taskLog(id, "before-1", "before-2")
	tr := w.startTail(false, fmt.Sprint(id))
	tr.waitFor(t, "before-2") // shown after the subscription is active
	w.runTask(t, tr, id, progress.StageCompleted)
	if code := tr.exit(t); code != 0 {
		t.Fatalf("exit %d:\n%s", code, tr.out)
	}
	out := tr.out.String()
	order := []string{
		"[download] before-1", "[download] before-2", "[worker] download started",
		"progress: downloading [##----------------------]  10.0%  2.00MiB/s  eta 00:05",
		"progress: downloading [#############-----------]  55.5%  2.00MiB/s  eta 00:05",
		"progress: uploading", "[worker] task completed", "progress: completed",
		fmt.Sprintf("task %d completed\n", id),
	}
	for _, s := range order {
		if !strings.Contains(out, s) {
			t.Fatalf("%q missing from:\n%s", s, out)
		}
	}
	if strings.Index(out, "before-1") > strings.Index(out, "before-2") ||
		strings.Index(out, "progress: downloading") > strings.Index(out, "progress: uploading") ||
		strings.Index(out, "progress: uploading") > strings.Index(out, "progress: completed") ||
		!strings.HasSuffix(out, fmt.Sprintf("task %d completed\n", id)) {
		t.Fatalf("out of order:\n%s", out)
	}
	if strings.Contains(out, "\r") || strings.Contains(out, fmt.Sprintf("%d failed", id)) {
		t.Fatalf("plain output holds a redraw or another task's event:\n%q", out)
	}
}

func TestTailOnATerminalRedrawsOneLine(t *testing.T) {
	w := newWorld(t)
	id := w.task(nil, "buyer@example.com", "https://www.udemy.com/course/x/", true)
	w.taskLog(id, "before")
	tr := w.startTail(true, fmt.Sprint(id))
	tr.waitFor(t, "before")
	w.runTask(t, tr, id, progress.StageFailed)
	if code := tr.exit(t); code != ctl.ExitError {
		t.Fatalf("a failed task: exit %d, want %d", code, ctl.ExitError)
	}
	out := tr.out.String()
	for _, s := range []string{
		"\r\x1b[Kdownloading [#############-----------]  55.5%  2.00MiB/s  eta 00:05",
		"\r\x1b[Kuploading",
		// a log line clears the progress line, then redraws it below
		"\r\x1b[K" + "20",
		"\r\x1b[Kfailed",
		"\nfailed\n", // the progress line redrawn under the last log line, then ended
		fmt.Sprintf("task %d failed: upload failed: rclone exit 5\n", id),
	} {
		if !strings.Contains(out, s) {
			t.Fatalf("%q missing from:\n%q", s, out)
		}
	}
}

func TestTailJSON(t *testing.T) {
	w := newWorld(t)
	id := w.task(nil, "buyer@example.com", "https://www.udemy.com/course/x/", true)
	tr := w.startTail(false, fmt.Sprint(id), "--json")
	// No log yet: wait for the subscription through a first event.
	pub := progress.NewPublisher(w.door(""), nil)
	testutil.Eventually(t, 10*time.Second, func() bool {
		_ = pub.Publish(context.Background(), progress.Event{TaskID: id, Stage: progress.StageWaitingEnrollment})
		return strings.Contains(tr.out.String(), "waiting_enrollment")
	}, "tail --json never showed the first event")
	w.runTask(t, tr, id, progress.StageCompleted)
	if code := tr.exit(t); code != 0 {
		t.Fatalf("exit %d:\n%s", code, tr.out)
	}
	lines := strings.Split(strings.TrimSuffix(tr.out.String(), "\n"), "\n")
	var kinds []string
	for _, l := range lines {
		var v map[string]json.RawMessage
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Fatalf("not a JSON line: %q", l)
		}
		for k := range v {
			if k != "taskId" {
				kinds = append(kinds, k)
			}
		}
	}
	var last struct {
		End    string `json:"end"`
		TaskID int64  `json:"taskId"`
	}
	_ = json.Unmarshal([]byte(lines[len(lines)-1]), &last)
	if last.End != "completed" || last.TaskID != id {
		t.Fatalf("last line %q", lines[len(lines)-1])
	}
	joined := strings.Join(kinds, " ")
	if !strings.Contains(joined, "progress") || !strings.Contains(joined, "log") {
		t.Fatalf("kinds of lines: %s\n%s", joined, tr.out)
	}
	var ev struct {
		Progress progress.Event `json:"progress"`
	}
	for _, l := range lines {
		if strings.Contains(l, `"55.5`) || strings.Contains(l, `55.5`) {
			_ = json.Unmarshal([]byte(l), &ev)
		}
	}
	if ev.Progress.TaskID != id || ev.Progress.Percent == nil || *ev.Progress.Percent != 55.5 || ev.Progress.Speed != "2.00MiB/s" {
		t.Fatalf("progress line: %+v", ev.Progress)
	}
}

func TestTailOfAnEndedTaskReturnsAtOnce(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	// Ended with its last event kept.
	done := w.task(nil, "buyer@example.com", "https://www.udemy.com/course/x/", true)
	w.taskLog(done, "the end")
	if err := progress.NewPublisher(w.door(""), nil).Publish(ctx, progress.Event{TaskID: done, Stage: progress.StageCompleted}); err != nil {
		t.Fatal(err)
	}
	r := w.run("tail", fmt.Sprint(done)).ok(t)
	if !strings.Contains(r.stdout, "[download] the end\nprogress: completed\n") || !strings.HasSuffix(r.stdout, fmt.Sprintf("task %d completed\n", done)) {
		t.Fatalf("tail of a completed task:\n%s", r.stdout)
	}
	// Ended long ago: its event expired; the row says failed.
	old := w.task(nil, "buyer@example.com", "https://www.udemy.com/course/x/", true)
	w.db.MustExec("UPDATE download_tasks SET status = 'failed', error_message = 'enrollment required' WHERE id = ?", old)
	r = w.run("tail", fmt.Sprint(old))
	if r.code != ctl.ExitError || r.stdout != fmt.Sprintf("task %d failed: enrollment required\n", old) {
		t.Fatalf("tail of an old failed task: exit %d %q %q", r.code, r.stdout, r.stderr)
	}
}
