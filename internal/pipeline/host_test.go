package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coursedl/worker/internal/download"
	"github.com/coursedl/worker/internal/lifecycle"
	"github.com/coursedl/worker/internal/metrics"
	"github.com/coursedl/worker/internal/notify"
	"github.com/coursedl/worker/internal/process"
	"github.com/coursedl/worker/internal/progress"
	"github.com/coursedl/worker/internal/queue"
	"github.com/coursedl/worker/internal/staging"
	"github.com/coursedl/worker/internal/store"
	"github.com/coursedl/worker/internal/tasklog"
	"github.com/coursedl/worker/internal/testutil"
	"github.com/coursedl/worker/internal/upload"
)

// The download host's part of Handle: the disk, the breaker, the egress guard,
// the cookies copy and the resume state. Each case starts from the fixture of
// TestHandle (a task that completes), with a fakeHost that has room.

// Lines yt-dlp prints when the course site refuses us, and when the disk fills.
const (
	ytdlp403     = "ERROR: [udemy] go: Unable to download JSON metadata: HTTP Error 403: Forbidden (caused by <HTTPError 403: Forbidden>)"
	ytdlp401     = "ERROR: [udemy] go: Unable to download webpage: HTTP Error 401: Unauthorized"
	ytdlpNoSpace = "ERROR: unable to write data: [Errno 28] No space left on device"
)

// The lifecycle events of a task that got as far as a failed download.
var downloadFailedEvents = []string{lifecycle.JobReceived, lifecycle.EnrollConfirmed, lifecycle.DownloadStart, lifecycle.DownloadFailed}

func TestHandleHost(t *testing.T) {
	const cookies = "# Netscape HTTP Cookie File\n.udemy.com\tTRUE\t/\tTRUE\t0\taccess_token\tsecret\n"
	// fails returns a downloader that leaves part of a lesson in the task
	// folder and fails with err.
	fails := func(err error) func(context.Context, download.Job, func(process.Stream, [][]byte)) (process.Result, error) {
		return func(_ context.Context, j download.Job, _ func(process.Stream, [][]byte)) (process.Result, error) {
			if werr := os.WriteFile(filepath.Join(j.Dir, "lesson.mp4.part"), []byte("vid"), 0o640); werr != nil {
				return process.Result{}, werr
			}
			return process.Result{Duration: time.Millisecond}, err
		}
	}
	exitTail := func(tail ...string) error {
		return &process.ExitError{Program: "yt-dlp", ExitCode: 1, StderrTail: tail}
	}
	deferred := func() outcome {
		return outcome{result: queue.Retry, delay: baseDelay, row: store.StatusProcessing, ended: metrics.ResultRequeued,
			msg:    "task deferred; its job waits without using up an attempt",
			events: append(slices.Clone(downloadFailedEvents), lifecycle.TaskDeferred)}
	}
	// deferredAfterDownload checks a task deferred by its downloader's
	// failure: its row back to processing, its folder kept for the next run
	// and no state saying it downloaded.
	deferredAfterDownload := func(reason string, kinds ...string) func(*testing.T, *fixture) {
		return func(t *testing.T, f *fixture) {
			t.Helper()
			checkDeferred(t, f, reason)
			want := []string{store.StatusProcessing, store.StatusDownloading, store.StatusProcessing}
			if !slices.Equal(f.store.statuses, want) {
				t.Errorf("statuses %v, want %v", f.store.statuses, want)
			}
			if _, err := os.Stat(filepath.Join(dir(f), "lesson.mp4.part")); err != nil {
				t.Errorf("task folder not kept: %v", err)
			}
			if _, err := os.Stat(statePath(f)); !os.IsNotExist(err) {
				t.Errorf("state file after a failed download: %v", err)
			}
			if !slices.Equal(f.host.failed, kinds) || f.host.succeeded != 0 {
				t.Errorf("host told of failures %q and %d successes, want failures %q", f.host.failed, f.host.succeeded, kinds)
			}
			if f.up.calls != 0 {
				t.Error("uploaded after a failed download")
			}
			if log := f.taskLog(t); !strings.Contains(log, "task deferred ("+reason+"): ") {
				t.Errorf("task log lacks the deferral:\n%s", log)
			}
		}
	}
	completed := outcome{result: queue.Ack, row: store.StatusCompleted, final: progress.StageCompleted, hook: notify.TypeCompleted,
		ended: metrics.ResultCompleted, msg: "task completed",
		events: []string{lifecycle.JobReceived, lifecycle.EnrollConfirmed, lifecycle.DownloadStart, lifecycle.DownloadSuccess,
			lifecycle.UploadSuccess, lifecycle.TaskCompleted}}
	cases := []struct {
		name  string
		set   func(*testing.T, *fixture)
		want  outcome
		check func(*testing.T, *fixture)
	}{{
		// The disk is judged before the task begins: nothing of it is
		// written, its row stays as it was.
		name: "disk low before the task begins",
		set: func(_ *testing.T, f *fixture) {
			f.host.room = &staging.LowError{Dir: f.staging, Free: 100 * staging.MiB, MinMiB: 2048}
		},
		want: outcome{result: queue.Retry, delay: baseDelay, ended: metrics.ResultRequeued,
			msg: "task deferred; its job waits without using up an attempt", events: []string{lifecycle.JobReceived, lifecycle.TaskDeferred}},
		check: func(t *testing.T, f *fixture) {
			checkDeferred(t, f, reasonDiskLow)
			notRun(t, f)
			lockReleased(t, f)
			if f.enroller.calls != 0 || f.host.roomCalls != 1 || f.host.failed != nil {
				t.Errorf("enroller called %d times, room asked %d times, failures %q", f.enroller.calls, f.host.roomCalls, f.host.failed)
			}
			if _, err := os.Stat(dir(f)); !os.IsNotExist(err) {
				t.Errorf("task folder made: %v", err)
			}
			if _, err := os.Stat(tasklog.Path(f.logs, taskID)); !os.IsNotExist(err) {
				t.Errorf("task log opened: %v", err)
			}
		},
	}, {
		name: "disk fills: ENOSPC at the end of stderr",
		set: func(_ *testing.T, f *fixture) {
			f.down.run = fails(exitTail("[download] Destination: lesson.mp4", ytdlpNoSpace))
		},
		want:  deferred(),
		check: deferredAfterDownload(reasonDiskLow),
	}, {
		// Only the tail has it: the last line, the one in the error's
		// message, is another.
		name: "disk fills: ENOSPC earlier in the stderr tail",
		set: func(_ *testing.T, f *fixture) {
			f.down.run = fails(exitTail(ytdlpNoSpace, "Traceback (most recent call last):", "OSError: write failed"))
		},
		want:  deferred(),
		check: deferredAfterDownload(reasonDiskLow),
	}, {
		name:  "disk fills: ENOSPC wrapped in the error",
		set:   func(_ *testing.T, f *fixture) { f.down.run = fails(fmt.Errorf("write lesson.mp4: %w", syscall.ENOSPC)) },
		want:  deferred(),
		check: deferredAfterDownload(reasonDiskLow),
	}, {
		name: "course site refuses: HTTP 403",
		set: func(_ *testing.T, f *fixture) {
			f.down.run = fails(exitTail("[udemy] go: Downloading course curriculum", ytdlp403))
		},
		want: deferred(),
		check: func(t *testing.T, f *fixture) {
			deferredAfterDownload("course site refused: HTTP 403", "course site refused: HTTP 403")(t, f)
			if log := f.taskLog(t); strings.Contains(log, "intake paused") {
				t.Errorf("task log says intake paused while the breaker held:\n%s", log)
			}
		},
	}, {
		name: "course site refuses: HTTP 403 trips the breaker",
		set: func(_ *testing.T, f *fixture) {
			f.host.tripped = true
			f.down.run = fails(exitTail(ytdlp403))
		},
		want: deferred(),
		check: func(t *testing.T, f *fixture) {
			deferredAfterDownload("course site refused: HTTP 403", "course site refused: HTTP 403")(t, f)
			if log := f.taskLog(t); !strings.Contains(log, "intake paused: too many tasks in a row failed this way") {
				t.Errorf("task log lacks the breaker's pause:\n%s", log)
			}
		},
	}, {
		// The last stderr line is not the refusal: the tail is searched.
		name: "course site refuses: HTTP 401 earlier in the tail",
		set: func(_ *testing.T, f *fixture) {
			f.down.run = fails(exitTail(ytdlp401, "WARNING: cookies may be stale"))
		},
		want:  deferred(),
		check: deferredAfterDownload("course site refused: HTTP 401", "course site refused: HTTP 401"),
	}, {
		name: "downloader fails otherwise",
		set: func(_ *testing.T, f *fixture) {
			f.down.run = fails(exitTail("ERROR: HTTP Error 503: Service Unavailable"))
		},
		want: outcome{result: queue.Retry, delay: backoffDelay, row: store.StatusProcessing, tried: 1, ended: metrics.ResultRequeued,
			msg: "attempt failed; task will be retried", events: append(slices.Clone(downloadFailedEvents), lifecycle.TaskRetry)},
		check: func(t *testing.T, f *fixture) {
			if !slices.Equal(f.host.failed, []string{""}) || f.host.succeeded != 0 {
				t.Errorf("host told of failures %q and %d successes, want one failure of no kind", f.host.failed, f.host.succeeded)
			}
			if line := f.life.line(lifecycle.TaskDeferred); line != "" {
				t.Errorf("deferred too: %q", line)
			}
		},
	}, {
		name: "download succeeds",
		want: completed,
		check: func(t *testing.T, f *fixture) {
			if f.host.succeeded != 1 || f.host.failed != nil || f.host.roomCalls != 1 {
				t.Errorf("host: %d successes, failures %q, room asked %d times", f.host.succeeded, f.host.failed, f.host.roomCalls)
			}
			if _, err := os.Stat(statePath(f)); !os.IsNotExist(err) {
				t.Errorf("state file left after completion: %v", err)
			}
		},
	}, {
		// The proxy refuses a destination; yt-dlp then fails as it would,
		// saying 403 of the tunnel: the refusal, not the 403, decides.
		name: "egress guard refuses a destination",
		set: func(_ *testing.T, f *fixture) {
			eg := &fakeEgress{guard: &fakeGuard{}}
			f.p.Egress = eg
			f.down.run = func(_ context.Context, j download.Job, _ func(process.Stream, [][]byte)) (process.Result, error) {
				eg.refuse("evil.example:443", "not in download.allowed_hosts")
				return process.Result{Duration: time.Millisecond},
					exitTail("ERROR: Unable to download webpage: Tunnel connection failed: 403 Forbidden")
			}
		},
		want: outcome{result: queue.Ack, row: store.StatusFailed,
			errMsg: "download failed: the egress guard refused evil.example:443 (not in download.allowed_hosts)",
			final:  progress.StageFailed, hook: notify.TypeFailed, ended: metrics.ResultFailed, msg: "task failed",
			events: append(slices.Clone(downloadFailedEvents), lifecycle.TaskFailed)},
		check: func(t *testing.T, f *fixture) {
			eg := f.p.Egress.(*fakeEgress)
			if eg.started != 1 || eg.guard.closes() != 1 {
				t.Errorf("guard started %d times, closed %d times", eg.started, eg.guard.closes())
			}
			checkGuarded(t, f)
			if !slices.Equal(f.host.failed, []string{""}) {
				t.Errorf("host told of failures %q, want one of no kind", f.host.failed)
			}
			if ev := f.outbox.releasedEvents()[0]; !strings.Contains(ev.Error, "evil.example:443") {
				t.Errorf("webhook %+v", ev)
			}
			if log := f.taskLog(t); !strings.Contains(log, "egress guard refused evil.example:443: not in download.allowed_hosts") {
				t.Errorf("task log lacks the refusal:\n%s", log)
			}
		},
	}, {
		name: "egress guard, download succeeds",
		set: func(t *testing.T, f *fixture) {
			eg := &fakeEgress{guard: &fakeGuard{}}
			f.p.Egress = eg
			f.up.before = func(upload.Request) {
				if n := eg.guard.closes(); n != 1 {
					t.Errorf("guard closed %d times when the upload began, want 1", n)
				}
			}
		},
		want: completed,
		check: func(t *testing.T, f *fixture) {
			checkGuarded(t, f)
			if n := f.p.Egress.(*fakeEgress).guard.closes(); n != 1 {
				t.Errorf("guard closed %d times", n)
			}
		},
	}, {
		// A guard that cannot start holds the task back without an
		// attempt; the cookies copy made before it does not stay.
		name: "egress guard does not start",
		set: func(t *testing.T, f *fixture) {
			f.p.Egress = &fakeEgress{err: errors.New("listen tcp 127.0.0.1:0: too many open files")}
			f.p.CookiesFile = writeFile(t, cookies)
		},
		want: outcome{result: queue.Retry, delay: retryDelay, row: store.StatusProcessing, ended: metrics.ResultRequeued,
			msg: "task cannot go on now; job waits", events: []string{lifecycle.JobReceived, lifecycle.EnrollConfirmed}},
		check: func(t *testing.T, f *fixture) {
			if f.down.calls != 0 {
				t.Error("downloader ran without its guard")
			}
			if _, err := os.Stat(filepath.Join(dir(f), download.CookiesName)); !os.IsNotExist(err) {
				t.Errorf("cookies copy left: %v", err)
			}
		},
	}, {
		name: "cookies: a copy in the task folder while the downloader runs",
		set: func(t *testing.T, f *fixture) {
			f.p.CookiesFile = writeFile(t, cookies)
			f.down.run = func(ctx context.Context, j download.Job, on func(process.Stream, [][]byte)) (process.Result, error) {
				checkCookiesCopy(t, f, j, cookies)
				return (&fakeDownloader{}).Run(ctx, j, on)
			}
			f.up.before = func(upload.Request) {
				if _, err := os.Stat(filepath.Join(dir(f), download.CookiesName)); !os.IsNotExist(err) {
					t.Errorf("cookies copy still there when the upload began: %v", err)
				}
			}
		},
		want: completed,
		check: func(t *testing.T, f *fixture) {
			if f.up.calls != 1 {
				t.Errorf("%d uploads", f.up.calls)
			}
			if b, err := os.ReadFile(f.p.CookiesFile); err != nil || string(b) != cookies {
				t.Errorf("download.cookies_file changed: %q, %v", b, err)
			}
		},
	}, {
		name: "cookies: the copy goes when the download fails",
		set: func(t *testing.T, f *fixture) {
			f.p.CookiesFile = writeFile(t, cookies)
			run := fails(exitTail("ERROR: HTTP Error 503: Service Unavailable"))
			f.down.run = func(ctx context.Context, j download.Job, on func(process.Stream, [][]byte)) (process.Result, error) {
				checkCookiesCopy(t, f, j, cookies)
				return run(ctx, j, on)
			}
		},
		want: outcome{result: queue.Retry, delay: backoffDelay, row: store.StatusProcessing, tried: 1, ended: metrics.ResultRequeued,
			events: append(slices.Clone(downloadFailedEvents), lifecycle.TaskRetry)},
		check: func(t *testing.T, f *fixture) {
			if _, err := os.Stat(filepath.Join(dir(f), "lesson.mp4.part")); err != nil {
				t.Errorf("task folder not kept: %v", err)
			}
			if _, err := os.Stat(filepath.Join(dir(f), download.CookiesName)); !os.IsNotExist(err) {
				t.Errorf("cookies copy left in the kept folder: %v", err)
			}
		},
	}, {
		name: "cookies: download.cookies_file missing",
		set:  func(t *testing.T, f *fixture) { f.p.CookiesFile = filepath.Join(t.TempDir(), "gone.txt") },
		// Removed since start-up: the task waits, saying why, for an operator.
		want: outcome{result: queue.Retry, delay: baseDelay, row: store.StatusProcessing, ended: metrics.ResultRequeued,
			msg:    "task deferred; its job waits without using up an attempt",
			events: []string{lifecycle.JobReceived, lifecycle.EnrollConfirmed, lifecycle.TaskDeferred}},
		check: func(t *testing.T, f *fixture) {
			if f.down.calls != 0 {
				t.Error("downloader ran without its cookies")
			}
			checkDeferred(t, f, reasonCookies)
		},
	}, {
		// A quota that gives no time to wait for: BaseDelay at the least.
		name: "upload quota without an end",
		set: func(_ *testing.T, f *fixture) {
			f.up.err = &upload.Error{Op: "move", Limit: "userRateLimitExceeded", Err: upload.ErrQuotaWait}
		},
		want: outcome{result: queue.Retry, delay: baseDelay, row: store.StatusProcessing, ended: metrics.ResultRequeued,
			events: []string{lifecycle.JobReceived, lifecycle.EnrollConfirmed, lifecycle.DownloadStart, lifecycle.DownloadSuccess,
				lifecycle.UploadFailed, lifecycle.TaskDeferred}},
		check: func(t *testing.T, f *fixture) {
			checkDeferred(t, f, reasonUploadQuota)
			if st := readState(t, f); !st.Downloaded || st.Uploaded {
				t.Errorf("state %+v, want downloaded only", st)
			}
		},
	}, {
		// An earlier run uploaded and could not write the row: this one
		// neither downloads nor uploads, nor asks for room, and completes
		// with the earlier link.
		name: "state: uploaded by an earlier run",
		set: func(t *testing.T, f *fixture) {
			f.host.room = &staging.LowError{Dir: f.staging, Free: 0, MinMiB: 2048}
			if err := writeCourse(dir(f)); err != nil {
				t.Fatal(err)
			}
			writeState(t, f, `{"downloaded":true,"folder":"Go Course","uploaded":true,"dest":"drive:17/Go Course","driveUrl":"https://drive.example/earlier"}`)
		},
		want: outcome{result: queue.Ack, row: store.StatusCompleted, final: progress.StageCompleted, hook: notify.TypeCompleted,
			ended: metrics.ResultCompleted, msg: "task completed",
			events: []string{lifecycle.JobReceived, lifecycle.EnrollConfirmed, lifecycle.TaskCompleted}},
		check: func(t *testing.T, f *fixture) {
			if f.down.calls != 0 || f.up.calls != 0 || f.host.roomCalls != 0 {
				t.Errorf("downloader ran %d times, uploader %d, room asked %d times", f.down.calls, f.up.calls, f.host.roomCalls)
			}
			if f.store.driveURL != "https://drive.example/earlier" {
				t.Errorf("drive_url %q", f.store.driveURL)
			}
			if ev := f.outbox.releasedEvents()[0]; ev.DriveURL != "https://drive.example/earlier" || ev.Folder != "Go Course" {
				t.Errorf("webhook %+v", ev)
			}
			if line := f.life.line(lifecycle.TaskCompleted); !strings.Contains(line, "[DriveUrl: https://drive.example/earlier]") {
				t.Errorf("line %q", line)
			}
			if !slices.Equal(f.store.statuses, []string{store.StatusProcessing}) {
				t.Errorf("statuses %v", f.store.statuses)
			}
			if _, err := os.Stat(statePath(f)); !os.IsNotExist(err) {
				t.Errorf("state file left after completion: %v", err)
			}
			if _, err := os.Stat(dir(f)); !os.IsNotExist(err) {
				t.Errorf("task folder left after completion: %v", err)
			}
			if log := f.taskLog(t); !strings.Contains(log, "upload done by an earlier run, to drive:17/Go Course; link https://drive.example/earlier") {
				t.Errorf("task log:\n%s", log)
			}
		},
	}, {
		name:  "state: unreadable, cut short",
		set:   func(t *testing.T, f *fixture) { writeState(t, f, `{"downloaded":tru`) },
		want:  completed,
		check: startedAfresh,
	}, {
		// A field of the wrong type: what decoded before it is not trusted
		// either.
		name: "state: unreadable, a field of the wrong type",
		set: func(t *testing.T, f *fixture) {
			writeState(t, f, `{"downloaded":true,"folder":"Go Course","uploaded":"yes"}`)
		},
		want:  completed,
		check: startedAfresh,
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			handleCase(t, "", tc.set, tc.want, tc.check)
		})
	}
}

// An upload held back by the destination's quota defers the task until the
// quota's end; the next run uploads what the first downloaded, without
// downloading again (nor asking for room: the download is done).
func TestHandleUploadQuotaResumes(t *testing.T) {
	f := newFixture(t)
	until := time.Now().Add(10 * time.Minute)
	f.up.err = &upload.Error{Op: "move", ExitCode: 7, Limit: "uploadLimitExceeded", Until: until, Err: errors.New("exit status 7")}
	res := f.p.Handle(context.Background(), goodJob)
	if res.Outcome != queue.Retry || res.Delay > 10*time.Minute || res.Delay < 10*time.Minute-time.Minute {
		t.Fatalf("result %+v, want a retry in about 10m", res)
	}
	want := []string{lifecycle.JobReceived, lifecycle.EnrollConfirmed, lifecycle.DownloadStart, lifecycle.DownloadSuccess,
		lifecycle.UploadFailed, lifecycle.TaskDeferred}
	if got := f.life.events(); !slices.Equal(got, want) {
		t.Errorf("lifecycle events %v, want %v", got, want)
	}
	if next := checkDeferred(t, f, reasonUploadQuota); next.Before(until.Add(-time.Minute).Truncate(time.Second)) || next.After(until) {
		t.Errorf("next run at %s, want about %s", next, until.UTC())
	}
	if f.attempts.counted != 0 || f.store.status != store.StatusProcessing {
		t.Errorf("%d attempts counted, row %q", f.attempts.counted, f.store.status)
	}
	if st := readState(t, f); !st.Downloaded || st.Folder != "Go Course" || st.Uploaded || st.DriveURL != "" {
		t.Errorf("state %+v, want downloaded into Go Course, not uploaded", st)
	}
	if _, err := os.Stat(filepath.Join(dir(f), "Go Course", "lesson.mp4")); err != nil {
		t.Errorf("download not kept for the next run: %v", err)
	}

	f.nextRun()
	f.up.err = nil
	f.host.room = &staging.LowError{Dir: f.staging, Free: 0, MinMiB: 2048}
	res = f.p.Handle(context.Background(), goodJob)
	checkOutcome(t, f, res, outcome{result: queue.Ack, row: store.StatusCompleted, final: progress.StageCompleted,
		hook: notify.TypeCompleted, ended: metrics.ResultCompleted, msg: "task completed",
		events: []string{lifecycle.JobReceived, lifecycle.EnrollConfirmed, lifecycle.UploadSuccess, lifecycle.TaskCompleted}})
	if f.down.calls != 1 || f.up.calls != 2 || f.host.roomCalls != 1 {
		t.Errorf("over both runs: downloader ran %d times, uploader %d, room asked %d times; want 1, 2, 1",
			f.down.calls, f.up.calls, f.host.roomCalls)
	}
	if f.up.req.Folder != "Go Course" || f.store.driveURL != "https://drive.example/17" {
		t.Errorf("upload request %+v, drive_url %q", f.up.req, f.store.driveURL)
	}
	if want := []string{store.StatusProcessing, store.StatusUploading}; !slices.Equal(f.store.statuses, want) {
		t.Errorf("statuses of the second run %v, want %v", f.store.statuses, want)
	}
	if _, err := os.Stat(statePath(f)); !os.IsNotExist(err) {
		t.Errorf("state file left after completion: %v", err)
	}
}

// nextRun makes the fixture's recording fakes new, for another Handle of the
// same task; the row, the staging folder and the runs counted stay.
func (f *fixture) nextRun() {
	f.life = &fakeLifecycle{}
	f.metrics = &fakeMetrics{}
	f.progress = &fakeProgress{}
	f.attempts = &fakeAttempts{}
	f.locker.lock = &fakeLock{lost: make(chan struct{})}
	f.store.statuses = nil
	f.p.Lifecycle, f.p.Metrics, f.p.Progress, f.p.Attempts = f.life, f.metrics, f.progress, f.attempts
}

// checkDeferred checks the task's TASK_DEFERRED line and its log line, and
// returns the line's Next.
func checkDeferred(t *testing.T, f *fixture, reason string) time.Time {
	t.Helper()
	line := f.life.line(lifecycle.TaskDeferred)
	prefix := "TASK_DEFERRED [TaskId: 17] [OrderId: 12] [Reason: " + reason + "] [Next: "
	if !strings.HasPrefix(line, prefix) || !strings.HasSuffix(line, "]") {
		t.Errorf("line %q, want it to begin %q", line, prefix)
		return time.Time{}
	}
	next, err := time.Parse(time.RFC3339, strings.TrimSuffix(strings.TrimPrefix(line, prefix), "]"))
	if err != nil {
		t.Errorf("line %q: Next: %v", line, err)
	}
	for _, e := range f.zap.FilterMessage("task deferred; its job waits without using up an attempt").All() {
		if got := e.ContextMap()["reason"]; got != reason {
			t.Errorf("log line with reason %v, want %q", got, reason)
		}
	}
	return next
}

// checkGuarded checks that the downloader reached the network through the
// guard.
func checkGuarded(t *testing.T, f *fixture) {
	t.Helper()
	j := f.down.job
	if j.Proxy != guardURL || !slices.Equal(j.Env, (&fakeGuard{}).Env()) {
		t.Errorf("downloader's job has proxy %q and env %q, want the guard's", j.Proxy, j.Env)
	}
}

// checkCookiesCopy checks, while the downloader runs, that its job names a
// copy of the cookies in the task folder.
func checkCookiesCopy(t *testing.T, f *fixture, j download.Job, want string) {
	t.Helper()
	if filepath.Dir(j.Cookies) != dir(f) || j.Cookies == f.p.CookiesFile {
		t.Errorf("cookies %q, want a copy in %s", j.Cookies, dir(f))
	}
	if b, err := os.ReadFile(j.Cookies); err != nil || string(b) != want {
		t.Errorf("cookies copy holds %q (%v), want the file's contents", b, err)
	}
}

// startedAfresh checks that a task whose state was unreadable ran every step.
func startedAfresh(t *testing.T, f *fixture) {
	t.Helper()
	if f.down.calls != 1 || f.up.calls != 1 || f.host.roomCalls != 1 {
		t.Errorf("downloader ran %d times, uploader %d, room asked %d times", f.down.calls, f.up.calls, f.host.roomCalls)
	}
	if !slices.Contains(f.messages(), "the task's state from an earlier run is unreadable; starting afresh") {
		t.Errorf("log %q", f.messages())
	}
	if _, err := os.Stat(statePath(f)); !os.IsNotExist(err) {
		t.Errorf("state file left after completion: %v", err)
	}
}

func statePath(f *fixture) string { return filepath.Join(f.staging, "task-17.state") }

func writeState(t *testing.T, f *fixture, s string) {
	t.Helper()
	if err := os.WriteFile(statePath(f), []byte(s), 0o640); err != nil {
		t.Fatal(err)
	}
}

func readState(t *testing.T, f *fixture) resume {
	t.Helper()
	b, err := os.ReadFile(statePath(f))
	if err != nil {
		t.Fatalf("state file: %v", err)
	}
	var st resume
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatalf("state file %q: %v", b, err)
	}
	return st
}

// writeFile writes s to a new file and returns its path.
func writeFile(t *testing.T, s string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "cookies.txt")
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// A staging disk out of inodes (bytes to spare, so the room check passes)
// cannot take the task's folder: the task is deferred, not failed.
func TestTaskFolderOnADiskOutOfInodesIsDeferred(t *testing.T) {
	f := newFixture(t)
	f.staging = testutil.TmpfsInodes(t, 1, 4)
	f.p.StagingDir = f.staging
	for i := 0; ; i++ {
		if err := os.WriteFile(filepath.Join(f.staging, fmt.Sprint("filler-", i)), nil, 0o600); err != nil {
			break
		}
	}
	res := f.p.Handle(context.Background(), goodJob)
	if res.Outcome != queue.Retry || res.Delay < baseDelay {
		t.Fatalf("Handle = %+v, want the job deferred for BaseDelay", res)
	}
	checkDeferred(t, f, reasonDiskLow)
	if slices.Contains(f.store.statuses, store.StatusFailed) || f.store.status == store.StatusFailed || f.down.calls != 0 {
		t.Fatalf("row statuses %v, downloader runs %d: want neither failed nor run", f.store.statuses, f.down.calls)
	}
}
