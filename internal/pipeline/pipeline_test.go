package pipeline

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coursedl/worker/internal/download"
	"github.com/coursedl/worker/internal/enroll"
	"github.com/coursedl/worker/internal/lifecycle"
	"github.com/coursedl/worker/internal/metrics"
	"github.com/coursedl/worker/internal/notify"
	"github.com/coursedl/worker/internal/process"
	"github.com/coursedl/worker/internal/progress"
	"github.com/coursedl/worker/internal/queue"
	"github.com/coursedl/worker/internal/store"
	"github.com/coursedl/worker/internal/upload"
)

// outcome is what a case expects of Handle. Zero fields are checked too: a
// task that did not end has no final progress event, no webhook, no row end.
type outcome struct {
	result queue.Outcome
	reason string        // in Result.Reason
	delay  time.Duration // of a Retry; backoffDelay: attempt 1's backoff of baseDelay
	events []string      // lifecycle events, in order
	row    string        // the row's status as written last ("" for none)
	errMsg string        // error_message, for a failed row
	final  string        // the final progress event's stage
	hook   string        // the type of the webhook event released
	tried  int           // attempts counted
	ended  string        // the metrics result
	msg    string        // a message of the worker's log
}

const backoffDelay = -1

func TestHandle(t *testing.T) {
	// The downloader as it is stopped: it waits for its context, as a killed
	// process group does.
	stopped := func(ctx context.Context, _ download.Job, _ func(process.Stream, [][]byte)) (process.Result, error) {
		<-ctx.Done()
		return process.Result{Duration: time.Millisecond}, &process.ExitError{Program: "yt-dlp", ExitCode: -1, Signal: syscall.SIGTERM, Canceled: true}
	}
	exit1 := func(ctx context.Context, _ download.Job, _ func(process.Stream, [][]byte)) (process.Result, error) {
		return process.Result{Duration: time.Millisecond}, &process.ExitError{Program: "yt-dlp", ExitCode: 1, StderrTail: []string{"ERROR: HTTP Error 503"}}
	}
	cases := []struct {
		name    string
		payload string // goodJob when empty
		set     func(*fixture)
		want    outcome
		check   func(*testing.T, *fixture)
	}{{
		name: "success",
		want: outcome{result: queue.Ack, row: store.StatusCompleted, final: progress.StageCompleted, hook: notify.TypeCompleted,
			ended: metrics.ResultCompleted, msg: "task completed",
			events: []string{lifecycle.JobReceived, lifecycle.EnrollConfirmed, lifecycle.DownloadStart, lifecycle.DownloadSuccess,
				lifecycle.UploadSuccess, lifecycle.TaskCompleted}},
		check: func(t *testing.T, f *fixture) {
			if want := []string{store.StatusProcessing, store.StatusDownloading, store.StatusUploading}; !slices.Equal(f.store.statuses, want) {
				t.Errorf("statuses %v, want %v", f.store.statuses, want)
			}
			if f.store.driveURL != "https://drive.example/17" {
				t.Errorf("drive_url %q", f.store.driveURL)
			}
			if _, ok := f.outbox.staged["msg_task17_completed"]; !ok {
				t.Errorf("staged %v, want msg_task17_completed", f.outbox.staged)
			}
			ev := f.outbox.releasedEvents()[0]
			if ev.DriveURL != "https://drive.example/17" || ev.Folder != "Go Course" || ev.OrderID == nil || *ev.OrderID != 12 || ev.Email != "buyer@example.com" {
				t.Errorf("webhook %+v", ev)
			}
			if f.up.req.Folder != "Go Course" || f.up.req.Email != "buyer@example.com" {
				t.Errorf("upload request %+v", f.up.req)
			}
			if _, err := os.Stat(dir(f)); !os.IsNotExist(err) {
				t.Errorf("staging folder left: %v", err)
			}
			if f.enroller.calls != 0 {
				t.Error("enrollment polled for a task the row says is enrolled")
			}
			if f.attempts.forgotten != 1 {
				t.Errorf("attempts forgotten %d times", f.attempts.forgotten)
			}
			if line := f.life.line(lifecycle.EnrollConfirmed); line != "ENROLL_CONFIRMED [TaskId: 17] [OrderId: 12]" {
				t.Errorf("line %q", line)
			}
			if line := f.life.line(lifecycle.TaskCompleted); !strings.HasPrefix(line, "TASK_COMPLETED [TaskId: 17] [OrderId: 12] [DriveUrl: https://drive.example/17] [Duration: ") {
				t.Errorf("line %q", line)
			}
			tp := f.taskProgress()
			if want := []string{progress.StageWaitingEnrollment, progress.StageDownloading, progress.StageUploading, progress.StageNotifying}; !slices.Equal(tp.stages, want) {
				t.Errorf("progress stages %v, want %v", tp.stages, want)
			}
			// Nothing moved early: rclone's first update starts uploading.
			if slices.Contains(tp.own, progress.StageUploading) {
				t.Errorf("events of a stage alone %v: uploading's ahead of rclone's", tp.own)
			}
			if f.metrics.bytes[metrics.Downloaded] != 5 || f.metrics.bytes[metrics.Uploaded] != 5 {
				t.Errorf("bytes %v", f.metrics.bytes)
			}
			log := f.taskLog(t)
			for _, want := range []string{"task 17: job received, order 12", "[download]  42.0%", "download:stderr", "a warning",
				"rclone:stderr", `upload of "Go Course" started`, "webhook task.completed queued as msg_task17_completed", "task completed in"} {
				if !strings.Contains(log, want) {
					t.Errorf("task log lacks %q:\n%s", want, log)
				}
			}
		},
	}, {
		name:    "bad job",
		payload: `{"taskId": 17, "email": "not an address", "courseUrl": "https://www.udemy.com/course/go/"}`,
		want: outcome{result: queue.DeadLetter, reason: "email", events: []string{lifecycle.JobReceived, lifecycle.JobRejected},
			ended: metrics.ResultRejected, msg: "job rejected"},
		check: func(t *testing.T, f *fixture) {
			// The task id the payload names is on the lines, read once.
			if line := f.life.line(lifecycle.JobRejected); !strings.HasPrefix(line, "JOB_REJECTED [TaskId: 17] [Reason: email ") {
				t.Errorf("line %q", line)
			}
			if f.locker.lock.releases() != 0 || f.down.calls != 0 {
				t.Error("a bad job took its task's lock or ran")
			}
		},
	}, {
		name:    "not JSON",
		payload: `garbage`,
		want: outcome{result: queue.DeadLetter, reason: "not a JSON object", events: []string{lifecycle.JobReceived, lifecycle.JobRejected},
			ended: metrics.ResultRejected},
		check: func(t *testing.T, f *fixture) {
			if line := f.life.line(lifecycle.JobRejected); !strings.HasPrefix(line, "JOB_REJECTED [TaskId: 0] [Reason: not a JSON object") {
				t.Errorf("line %q", line)
			}
		},
	}, {
		name: "no row",
		set:  func(f *fixture) { f.store.readErr = fmt.Errorf("task 17: %w", store.ErrNotFound) },
		want: outcome{result: queue.DeadLetter, reason: "no download_tasks row with id 17",
			events: []string{lifecycle.JobReceived, lifecycle.JobRejected}, ended: metrics.ResultRejected},
		check: lockReleased,
	}, {
		name: "row mismatch",
		set:  func(f *fixture) { f.store.row.Email = "other@example.com" },
		want: outcome{result: queue.DeadLetter, reason: "email does not match the download_tasks row",
			events: []string{lifecycle.JobReceived, lifecycle.JobRejected}, ended: metrics.ResultRejected},
		check: func(t *testing.T, f *fixture) {
			// Rejected before it was admitted: no order on the line.
			if line := f.life.line(lifecycle.JobRejected); line != "JOB_REJECTED [TaskId: 17] [Reason: email does not match the download_tasks row]" {
				t.Errorf("line %q", line)
			}
			lockReleased(t, f)
		},
	}, {
		name: "completed row",
		set:  func(f *fixture) { f.store.row.Status = store.StatusCompleted },
		want: outcome{result: queue.Ack, events: []string{lifecycle.JobReceived}, ended: metrics.ResultSkipped,
			msg: "task already completed; job acknowledged and skipped"},
		check: func(t *testing.T, f *fixture) {
			if f.outbox.releaseStaged != 1 {
				t.Errorf("staged webhook released %d times", f.outbox.releaseStaged)
			}
			if f.down.calls != 0 || f.taskProgress() != nil {
				t.Error("a completed task ran again")
			}
			lockReleased(t, f)
		},
	}, {
		name: "lock held",
		set:  func(f *fixture) { f.locker.err = queue.ErrLocked },
		want: outcome{result: queue.Retry, delay: lockedDelay, events: []string{lifecycle.JobReceived}, ended: metrics.ResultRequeued,
			msg: "task is being run by another worker; job waits"},
		check: notRun,
	}, {
		name: "row read fails",
		set:  func(f *fixture) { f.store.readErr = errors.New("dial tcp: connection refused") },
		want: outcome{result: queue.Retry, delay: retryDelay, events: []string{lifecycle.JobReceived}, ended: metrics.ResultRequeued,
			msg: "task cannot go on now; job waits"},
		check: func(t *testing.T, f *fixture) {
			notRun(t, f)
			lockReleased(t, f)
		},
	}, {
		name:  "lock fails",
		set:   func(f *fixture) { f.locker.err = errors.New("redis: connection refused") },
		want:  outcome{result: queue.Retry, delay: retryDelay, events: []string{lifecycle.JobReceived}, ended: metrics.ResultRequeued},
		check: notRun,
	}, {
		name: "enrollment timeout",
		set: func(f *fixture) {
			f.store.row.IsEnrolled = false
			f.enroller.err = enroll.ErrTimeout
		},
		want: outcome{result: queue.Ack, row: store.StatusFailed, errMsg: "enrollment required", final: progress.StageFailed,
			hook: notify.TypeFailed, ended: metrics.ResultFailed, msg: "task failed",
			events: []string{lifecycle.JobReceived, lifecycle.EnrollTimeout, lifecycle.TaskFailed}},
		check: func(t *testing.T, f *fixture) {
			if f.enroller.calls != 1 || f.down.calls != 0 {
				t.Errorf("enroller called %d times, downloader %d", f.enroller.calls, f.down.calls)
			}
			if ev := f.outbox.releasedEvents()[0]; ev.Error != "enrollment required" || ev.DriveURL != "" || ev.Folder != "task-17" {
				t.Errorf("webhook %+v", ev)
			}
			if line := f.life.line(lifecycle.EnrollTimeout); line != "ENROLL_TIMEOUT [TaskId: 17] [OrderId: 12]" {
				t.Errorf("line %q", line)
			}
		},
	}, {
		name: "enrollment poll fails",
		set: func(f *fixture) {
			f.store.row.IsEnrolled = false
			f.enroller.err = errors.New("mysql: bad connection")
		},
		want: outcome{result: queue.Retry, delay: retryDelay, row: store.StatusProcessing, ended: metrics.ResultRequeued,
			events: []string{lifecycle.JobReceived}},
	}, {
		name: "downloader fails, transient",
		set:  func(f *fixture) { f.down.run = exit1 },
		want: outcome{result: queue.Retry, delay: backoffDelay, row: store.StatusProcessing, tried: 1, ended: metrics.ResultRequeued,
			msg: "attempt failed; task will be retried",
			events: []string{lifecycle.JobReceived, lifecycle.EnrollConfirmed, lifecycle.DownloadStart, lifecycle.DownloadFailed,
				lifecycle.TaskRetry}},
		check: func(t *testing.T, f *fixture) {
			if line := f.life.line(lifecycle.TaskRetry); !strings.HasPrefix(line, "TASK_RETRY [TaskId: 17] [OrderId: 12] [Attempt: 1] [Next: ") ||
				!strings.Contains(line, "[Reason: download failed: yt-dlp") {
				t.Errorf("line %q", line)
			}
			if f.up.calls != 0 {
				t.Error("uploaded after a failed download")
			}
			if tp := f.taskProgress(); !tp.closed {
				t.Error("progress not closed")
			}
			if _, err := os.Stat(dir(f)); err != nil {
				t.Errorf("staging folder not kept for the next attempt: %v", err)
			}
		},
	}, {
		name: "downloader fails, last attempt",
		set: func(f *fixture) {
			f.down.run = exit1
			f.attempts.done = maxAttempt - 1
		},
		want: outcome{result: queue.DeadLetter, reason: "download failed: yt-dlp", row: store.StatusFailed,
			errMsg: "(after 3 attempts)", final: progress.StageFailed, hook: notify.TypeFailed, tried: 1, ended: metrics.ResultFailed,
			events: []string{lifecycle.JobReceived, lifecycle.EnrollConfirmed, lifecycle.DownloadStart, lifecycle.DownloadFailed,
				lifecycle.TaskFailed}},
		check: func(t *testing.T, f *fixture) {
			if _, err := os.Stat(dir(f)); err != nil {
				t.Errorf("staging folder not kept after failure: %v", err)
			}
		},
	}, {
		// A failure of the downloader itself is always transient; a run that
		// exits 0 without leaving a file is not worth another attempt.
		name: "downloader leaves nothing",
		set: func(f *fixture) {
			f.down.run = func(context.Context, download.Job, func(process.Stream, [][]byte)) (process.Result, error) {
				return process.Result{}, nil
			}
		},
		want: outcome{result: queue.Ack, row: store.StatusFailed, errMsg: "download failed: the downloader exited 0 but left no files",
			final: progress.StageFailed, hook: notify.TypeFailed, ended: metrics.ResultFailed,
			events: []string{lifecycle.JobReceived, lifecycle.EnrollConfirmed, lifecycle.DownloadStart, lifecycle.DownloadSuccess,
				lifecycle.TaskFailed}},
		check: func(t *testing.T, f *fixture) {
			if f.attempts.counted != 0 || f.up.calls != 0 {
				t.Errorf("%d attempts counted, %d uploads", f.attempts.counted, f.up.calls)
			}
		},
	}, {
		// systemd's SIGTERM to the cgroup reaches the downloader before the
		// worker: it is a stop, not a failure.
		name: "downloader stopped from outside",
		set: func(f *fixture) {
			f.down.run = func(context.Context, download.Job, func(process.Stream, [][]byte)) (process.Result, error) {
				return process.Result{}, &process.ExitError{Program: "yt-dlp", ExitCode: -1, Signal: syscall.SIGTERM}
			}
		},
		want: outcome{result: queue.Retry, delay: retryDelay, row: store.StatusDownloading, ended: metrics.ResultRequeued,
			events: []string{lifecycle.JobReceived, lifecycle.EnrollConfirmed, lifecycle.DownloadStart}},
	}, {
		name: "upload fails, temporary",
		set:  func(f *fixture) { f.up.err = &upload.Error{Op: "move", ExitCode: 5, Err: errors.New("exit status 5")} },
		want: outcome{result: queue.Retry, delay: backoffDelay, row: store.StatusProcessing, tried: 1, ended: metrics.ResultRequeued,
			events: []string{lifecycle.JobReceived, lifecycle.EnrollConfirmed, lifecycle.DownloadStart, lifecycle.DownloadSuccess,
				lifecycle.UploadFailed, lifecycle.TaskRetry}},
		check: func(t *testing.T, f *fixture) {
			if line := f.life.line(lifecycle.UploadFailed); line != "UPLOAD_FAILED [TaskId: 17] [OrderId: 12] [Error: rclone move: exit status 5]" {
				t.Errorf("line %q", line)
			}
		},
	}, {
		name: "upload fails, fatal",
		set:  func(f *fixture) { f.up.err = &upload.Error{Op: "move", ExitCode: 7, Err: errors.New("exit status 7")} },
		want: outcome{result: queue.Ack, row: store.StatusFailed, errMsg: "upload failed: rclone move: exit status 7",
			final: progress.StageFailed, hook: notify.TypeFailed, ended: metrics.ResultFailed,
			events: []string{lifecycle.JobReceived, lifecycle.EnrollConfirmed, lifecycle.DownloadStart, lifecycle.DownloadSuccess,
				lifecycle.UploadFailed, lifecycle.TaskFailed}},
	}, {
		name: "status write fails",
		set:  func(f *fixture) { f.store.statusErr = errors.New("mysql: bad connection") },
		want: outcome{result: queue.Retry, delay: retryDelay, ended: metrics.ResultRequeued, msg: "task cannot go on now; job waits",
			events: []string{lifecycle.JobReceived}},
		check: func(t *testing.T, f *fixture) {
			if f.down.calls != 0 || f.taskProgress() != nil {
				t.Error("the task went on without its row")
			}
			lockReleased(t, f)
		},
	}, {
		name: "row end write fails",
		set:  func(f *fixture) { f.store.endErr = errors.New("mysql: bad connection") },
		want: outcome{result: queue.Retry, delay: retryDelay, row: store.StatusUploading, ended: metrics.ResultRequeued,
			events: []string{lifecycle.JobReceived, lifecycle.EnrollConfirmed, lifecycle.DownloadStart, lifecycle.DownloadSuccess,
				lifecycle.UploadSuccess}},
		check: func(t *testing.T, f *fixture) {
			// Staged, so that the next run, or the one that finds the row
			// completed, sends it; not released.
			if len(f.outbox.staged) != 1 {
				t.Errorf("staged %v", f.outbox.staged)
			}
			if tp := f.taskProgress(); !tp.closed || tp.stages[len(tp.stages)-1] != progress.StageNotifying {
				t.Errorf("progress %+v", tp)
			}
		},
	}, {
		name: "shutdown mid-download",
		set: func(f *fixture) {
			f.down.run = func(ctx context.Context, j download.Job, on func(process.Stream, [][]byte)) (process.Result, error) {
				f.cancel()
				return stopped(ctx, j, on)
			}
		},
		want: outcome{result: queue.Requeue, row: store.StatusDownloading, ended: metrics.ResultRequeued,
			msg:    "task interrupted; job goes back to the queue",
			events: []string{lifecycle.JobReceived, lifecycle.EnrollConfirmed, lifecycle.DownloadStart}},
		check: lockReleased,
	}, {
		name: "lock lost mid-download",
		set: func(f *fixture) {
			f.down.run = func(ctx context.Context, j download.Job, on func(process.Stream, [][]byte)) (process.Result, error) {
				close(f.locker.lock.lost)
				return stopped(ctx, j, on)
			}
		},
		want: outcome{result: queue.Retry, delay: lockedDelay, row: store.StatusDownloading, ended: metrics.ResultRequeued,
			msg:    "task stopped: another runner took its lock; job waits",
			events: []string{lifecycle.JobReceived, lifecycle.EnrollConfirmed, lifecycle.DownloadStart}},
	}, {
		// The lock could not be renewed in time (Redis out of reach): the task
		// stops itself before another worker may take it, and its job waits
		// for recovery without using up an attempt.
		name: "lock fenced mid-download",
		set: func(f *fixture) {
			f.down.run = func(ctx context.Context, j download.Job, on func(process.Stream, [][]byte)) (process.Result, error) {
				f.locker.lock.lose(queue.ErrFenced)
				return stopped(ctx, j, on)
			}
		},
		want: outcome{result: queue.Retry, delay: lockedDelay, row: store.StatusDownloading, ended: metrics.ResultRequeued,
			msg:    "lock not renewed; task stopped (fenced); job waits for recovery",
			events: []string{lifecycle.JobReceived, lifecycle.EnrollConfirmed, lifecycle.DownloadStart}},
		check: lockReleased,
	}, {
		name: "lock not confirmed before the upload",
		set: func(f *fixture) {
			f.locker.lock.confirmErr = errors.New("renew lock of task 17: dial tcp: connection refused")
		},
		want: outcome{result: queue.Retry, delay: lockedDelay, row: store.StatusDownloading, ended: metrics.ResultRequeued,
			msg: "task stopped: its lock could not be confirmed; job waits",
			events: []string{lifecycle.JobReceived, lifecycle.EnrollConfirmed, lifecycle.DownloadStart,
				lifecycle.DownloadSuccess}},
		check: func(t *testing.T, f *fixture) {
			if f.up.calls != 0 {
				t.Error("rclone ran without the lock confirmed")
			}
			// Nothing announced: the folder's name went with the download's
			// end, in one write of the state.
			if st := readState(t, f); !st.Downloaded || st.Folder != "Go Course" {
				t.Errorf("state %+v, want downloaded into Go Course", st)
			}
			lockReleased(t, f)
		},
	}, {
		name: "lock not confirmed before the final write",
		set: func(f *fixture) {
			f.locker.lock.confirmErr, f.locker.lock.failAt = queue.ErrLockLost, 2
		},
		want: outcome{result: queue.Retry, delay: lockedDelay, row: store.StatusUploading, ended: metrics.ResultRequeued,
			msg: "task stopped: its lock could not be confirmed; job waits",
			events: []string{lifecycle.JobReceived, lifecycle.EnrollConfirmed, lifecycle.DownloadStart,
				lifecycle.DownloadSuccess, lifecycle.UploadSuccess}},
		check: func(t *testing.T, f *fixture) {
			if len(f.outbox.staged) != 0 || f.locker.lock.confirms != 2 {
				t.Errorf("staged %v after %d confirms: the webhook was staged without the lock", f.outbox.staged, f.locker.lock.confirms)
			}
			lockReleased(t, f)
		},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var set func(*testing.T, *fixture)
			if tc.set != nil {
				set = func(_ *testing.T, f *fixture) { tc.set(f) }
			}
			handleCase(t, tc.payload, set, tc.want, tc.check)
		})
	}
}

// handleCase runs one case of a table: a fixture made and set, Handle of
// payload (goodJob when empty) under a context the fixture can cancel, its
// outcome checked against want, then check.
func handleCase(t *testing.T, payload string, set func(*testing.T, *fixture), want outcome, check func(*testing.T, *fixture)) {
	t.Helper()
	f := newFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	f.cancel = cancel
	if set != nil {
		set(t, f)
	}
	if payload == "" {
		payload = goodJob
	}
	checkOutcome(t, f, f.p.Handle(ctx, payload), want)
	if check != nil {
		check(t, f)
	}
}

func checkOutcome(t *testing.T, f *fixture, res queue.Result, want outcome) {
	t.Helper()
	if res.Outcome != want.result || !strings.Contains(res.Reason, want.reason) || (want.reason == "") != (res.Reason == "") {
		t.Errorf("result %+v, want outcome %v with reason %q", res, want.result, want.reason)
	}
	switch want.delay {
	case backoffDelay:
		if res.Delay < baseDelay*8/10 || res.Delay > baseDelay*12/10 {
			t.Errorf("delay %s, want %s give or take 20%%", res.Delay, baseDelay)
		}
	default:
		if res.Delay != want.delay {
			t.Errorf("delay %s, want %s", res.Delay, want.delay)
		}
	}
	if got := f.life.events(); !slices.Equal(got, want.events) {
		t.Errorf("lifecycle events %v, want %v", got, want.events)
	}
	if f.store.status != want.row || !strings.Contains(f.store.reason, want.errMsg) || (want.errMsg == "") != (f.store.reason == "") {
		t.Errorf("row %q with error_message %q, want %q with %q", f.store.status, f.store.reason, want.row, want.errMsg)
	}
	final := ""
	if tp := f.taskProgress(); tp != nil {
		final = tp.final
		if !tp.closed {
			t.Error("progress of the task not closed")
		}
	}
	if final != want.final {
		t.Errorf("final progress event %q, want %q", final, want.final)
	}
	var hooks []string
	for _, ev := range f.outbox.releasedEvents() {
		hooks = append(hooks, ev.Type)
	}
	if want.hook == "" && len(hooks) != 0 || want.hook != "" && !slices.Equal(hooks, []string{want.hook}) {
		t.Errorf("webhooks released %v, want %q", hooks, want.hook)
	}
	if f.attempts.counted != want.tried {
		t.Errorf("%d attempts counted, want %d", f.attempts.counted, want.tried)
	}
	if f.metrics.started != 1 || !slices.Equal(f.metrics.ended, []string{want.ended}) || f.metrics.stages[metrics.StageTask] != 1 {
		t.Errorf("metrics: %d started, ended %v, task timed %d times; want ended %q", f.metrics.started, f.metrics.ended,
			f.metrics.stages[metrics.StageTask], want.ended)
	}
	if want.msg != "" && !slices.Contains(f.messages(), want.msg) {
		t.Errorf("log %q, want %q among them", f.messages(), want.msg)
	}
	if f.taskProgress() != nil && f.locker.lock.releases() != 1 {
		t.Errorf("the lock of a task that ran released %d times", f.locker.lock.releases())
	}
}

func dir(f *fixture) string { return f.staging + "/task-17" }

func lockReleased(t *testing.T, f *fixture) {
	t.Helper()
	if n := f.locker.lock.releases(); n != 1 {
		t.Errorf("lock released %d times, want 1", n)
	}
}

func notRun(t *testing.T, f *fixture) {
	t.Helper()
	if f.down.calls != 0 || f.taskProgress() != nil || f.store.statuses != nil {
		t.Error("the task ran")
	}
}

// With no Metrics, Handle records none and runs all the same.
func TestHandleWithoutMetrics(t *testing.T) {
	f := newFixture(t)
	f.p.Metrics = nil
	if res := f.p.Handle(context.Background(), goodJob); res.Outcome != queue.Ack || f.store.status != store.StatusCompleted {
		t.Fatalf("result %+v, row %q", res, f.store.status)
	}
}
