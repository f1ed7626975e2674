package pipeline

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/coursedl/worker/internal/download"
	"github.com/coursedl/worker/internal/enroll"
	"github.com/coursedl/worker/internal/lifecycle"
	"github.com/coursedl/worker/internal/metrics"
	"github.com/coursedl/worker/internal/notify"
	"github.com/coursedl/worker/internal/process"
	"github.com/coursedl/worker/internal/progress"
	"github.com/coursedl/worker/internal/queue"
	"github.com/coursedl/worker/internal/store"
	"github.com/coursedl/worker/internal/tasklog"
	"github.com/coursedl/worker/internal/upload"
)

// task is one run of a job whose row checked out.
type task struct {
	id      int64
	orderID *int64
	email   string
	url     string
	dir     string // <staging_dir>/task-<id>
	folder  string // {folder}, once known
	start   time.Time
	// enrolled is the row's is_enrolled as Handle read it: set, there is no
	// need to poll for it (the web app only ever sets it).
	enrolled bool
	ran      time.Duration // how long its subprocesses ran (process.Result.Duration)
	log      *zap.Logger
	tl       *tasklog.Log
	pub      TaskProgress
}

// run takes the task from processing to completed or failed.
func (p *Pipeline) run(ctx context.Context, t *task) queue.Result {
	var tl *tasklog.Log
	var openErr error
	err := p.alongside(ctx, t, store.StatusProcessing, func(context.Context) {
		if tl, openErr = tasklog.Open(p.TaskLog, t.id); openErr == nil {
			tl.Printf("task %d: job received, order %s, course %s", t.id, orderText(t.orderID), t.url)
		}
	})
	if openErr != nil {
		return p.later(ctx, t.log, openErr)
	}
	t.tl = tl
	defer func() {
		if err := tl.Close(); err != nil {
			t.log.Warn("task log", zap.Error(err))
		}
	}()
	if err != nil {
		return p.later(ctx, t.log, err)
	}
	t.pub = p.Progress.Task(t.id)
	defer t.pub.Close()

	// Enrollment.
	t.pub.Stage(progress.StageWaitingEnrollment)
	tl.Printf("waiting for enrollment")
	began := p.now()
	if !t.enrolled {
		err = p.Enroller.Wait(ctx, t.id)
	}
	p.metrics().ObserveStage(metrics.StageEnrollment, p.now().Sub(began))
	switch {
	case errors.Is(err, enroll.ErrTimeout):
		p.event(lifecycle.EnrollTimeout, t.id, orderField(t.orderID))
		return p.fail(ctx, t, enroll.ErrTimeout.Error())
	case err != nil:
		return p.later(ctx, t.log, err)
	}
	p.event(lifecycle.EnrollConfirmed, t.id, orderField(t.orderID))
	tl.Printf("enrollment confirmed")

	// Sandbox and download.
	if err := os.MkdirAll(t.dir, 0o750); err != nil {
		return p.fail(ctx, t, fmt.Sprintf("cannot make the task folder: %v", err))
	}
	p.event(lifecycle.DownloadStart, t.id, orderField(t.orderID), lifecycle.F("Url", t.url))
	tl.Printf("download started in %s", t.dir)
	began = p.now()
	res, stop := p.download(ctx, t)
	p.metrics().ObserveStage(metrics.StageDownload, res.Duration)
	t.ran += res.Duration
	if stop != nil {
		return *stop
	}
	tl.Printf("download finished in %s", res.Duration.Round(time.Millisecond))
	p.event(lifecycle.DownloadSuccess, t.id, orderField(t.orderID), lifecycle.F("Duration", p.now().Sub(began)))

	// Upload.
	folder, source, err := download.Folder(t.dir, t.id)
	if err != nil {
		return p.fail(ctx, t, fmt.Sprintf("cannot read the task folder: %v", err))
	}
	t.folder = folder
	size, err := upload.Size(source)
	if err != nil || size.Files == 0 {
		return p.fail(ctx, t, "download failed: the downloader exited 0 but left no files")
	}
	p.metrics().AddBytes(metrics.Downloaded, size.Bytes)
	tl.Printf("upload of %q started", folder)
	began = p.now()
	var up upload.Result
	werr := p.alongside(ctx, t, store.StatusUploading, func(ctx context.Context) {
		up, err = p.Uploader.Upload(ctx, upload.Request{TaskID: t.id, Source: source, Folder: folder, Email: t.email},
			p.lines(t, tasklog.SourceRclone, tasklog.SourceRcloneStderr, func(line []byte) {
				if u, ok := progress.ParseRclone(line); ok {
					t.pub.Update(progress.StageUploading, u)
				}
			}))
	})
	t.ran += up.Ran
	if werr != nil {
		return p.later(ctx, t.log, werr)
	}
	if err != nil {
		if isStop(ctx, err) {
			return p.later(ctx, t.log, err)
		}
		p.event(lifecycle.UploadFailed, t.id, orderField(t.orderID), lifecycle.F("Error", err.Error()))
		// Only rclone's temporary failures are worth another attempt; a fatal
		// exit or a source the upload refuses stays as it is.
		var ue *upload.Error
		if !errors.As(err, &ue) || !ue.Temporary() {
			return p.fail(ctx, t, "upload failed: "+err.Error())
		}
		return p.retryOrFail(ctx, t, "upload failed: "+err.Error())
	}
	p.metrics().ObserveStage(metrics.StageUpload, p.now().Sub(began))
	p.metrics().AddBytes(metrics.Uploaded, size.Bytes)
	p.event(lifecycle.UploadSuccess, t.id, orderField(t.orderID), lifecycle.F("Dest", up.Dest),
		lifecycle.F("Duration", p.now().Sub(began)))
	tl.Printf("uploaded to %s; link %s", up.Dest, up.URL)
	return p.complete(ctx, t, up.URL)
}

// download runs the downloader; a non-nil Result means the task stops there.
func (p *Pipeline) download(ctx context.Context, t *task) (process.Result, *queue.Result) {
	// A downloader may print thousands of lines a second: they come in batches
	// (the lines of one read), and the feed parses progress at the publisher's
	// pace, not every line.
	feed := progress.NewFeed(t.pub, progress.StageDownloading, progress.DefaultMinInterval)
	var res process.Result
	var err error
	werr := p.alongside(ctx, t, store.StatusDownloading, func(ctx context.Context) {
		res, err = p.Downloader.Run(ctx, download.Job{TaskID: t.id, URL: t.url, Dir: t.dir},
			func(s process.Stream, lines [][]byte) {
				src := tasklog.SourceDownload
				if s == process.Stderr {
					src = tasklog.SourceDownloadStderr
				}
				t.tl.Lines(src, lines)
				feed.Lines(lines)
			})
	})
	feed.Close()
	if werr != nil {
		r := p.later(ctx, t.log, werr)
		return res, &r
	}
	if err == nil {
		return res, nil
	}
	if isStop(ctx, err) {
		r := p.later(ctx, t.log, err)
		return res, &r
	}
	reason := "download failed: " + describe(err)
	p.event(lifecycle.DownloadFailed, t.id, orderField(t.orderID), lifecycle.F("Error", reason))
	r := p.retryOrFail(ctx, t, reason)
	return res, &r
}

// lines returns the output handler of a subprocess: every line to the task log,
// stdout's and stderr's to parse.
func (p *Pipeline) lines(t *task, out, errSource string, parse func([]byte)) func(process.Stream, []byte) {
	return func(s process.Stream, line []byte) {
		src := out
		if s == process.Stderr {
			src = errSource
		}
		t.tl.Line(src, line)
		parse(line)
	}
}

// complete records success: the row first, then the webhook, then cleanup.
func (p *Pipeline) complete(ctx context.Context, t *task, driveURL string) queue.Result {
	ev := p.webhook(t, notify.TypeCompleted)
	ev.DriveURL = driveURL
	// One id per task's completion: however often the task's job comes back, the
	// web app sees one event it can de-duplicate.
	id := fmt.Sprintf("msg_task%d_completed", t.id)
	if err := p.settle(ctx, t, id, ev, func(ctx context.Context) error { return p.Store.Complete(ctx, t.id, driveURL) }); err != nil {
		return p.later(ctx, t.log, err)
	}
	p.event(lifecycle.TaskCompleted, t.id, orderField(t.orderID), lifecycle.F("DriveUrl", driveURL),
		lifecycle.F("Duration", p.now().Sub(t.start)))
	t.tl.Printf("task completed in %s", p.now().Sub(t.start).Round(time.Millisecond))
	if err := t.pub.Finish(ctx, progress.StageCompleted); err != nil {
		t.log.Warn("final progress event not published", zap.Error(err))
	}
	if err := os.RemoveAll(t.dir); err != nil {
		t.log.Warn("staging folder not removed", zap.String("dir", t.dir), zap.Error(err))
	}
	p.metrics().TaskEnded(metrics.ResultCompleted)
	t.log.Info("task completed", zap.String("drive_url", driveURL), zap.Duration("duration", p.now().Sub(t.start)),
		zap.Duration("subprocess_duration", t.ran))
	return queue.Result{Outcome: queue.Ack}
}

// fail records a failure for good: the row, the webhook; the staging folder stays
// for an operator to look at.
func (p *Pipeline) fail(ctx context.Context, t *task, reason string) queue.Result {
	ev := p.webhook(t, notify.TypeFailed)
	ev.Error = reason
	if err := p.settle(ctx, t, notify.NewID(), ev, func(ctx context.Context) error { return p.Store.Fail(ctx, t.id, reason) }); err != nil {
		return p.later(ctx, t.log, err)
	}
	p.event(lifecycle.TaskFailed, t.id, orderField(t.orderID), lifecycle.F("Reason", reason),
		lifecycle.F("Duration", p.now().Sub(t.start)))
	t.tl.Printf("task failed: %s", reason)
	if err := t.pub.Finish(ctx, progress.StageFailed); err != nil {
		t.log.Warn("final progress event not published", zap.Error(err))
	}
	p.metrics().TaskEnded(metrics.ResultFailed)
	t.log.Warn("task failed", zap.String("reason", reason), zap.String("staging", t.dir),
		zap.Duration("duration", p.now().Sub(t.start)), zap.Duration("subprocess_duration", t.ran))
	return queue.Result{Outcome: queue.Ack}
}

// retryOrFail counts a failed attempt of a transient kind: the job waits in the
// delayed set for the next one, or, after the last, the task fails for good and
// its job goes to dl:dead. The staging folder stays between attempts, so a
// downloader that resumes (yt-dlp does) goes on where it stopped.
func (p *Pipeline) retryOrFail(ctx context.Context, t *task, reason string) queue.Result {
	n, err := p.Attempts.NextAttempt(ctx, t.id)
	if err != nil {
		return p.later(ctx, t.log, err)
	}
	if n < p.MaxAttempts {
		delay := backoff(p.BaseDelay, n)
		next := p.now().Add(delay)
		p.event(lifecycle.TaskRetry, t.id, orderField(t.orderID), lifecycle.F("Attempt", n),
			lifecycle.F("Next", next.UTC().Format(time.RFC3339)), lifecycle.F("Reason", reason))
		t.tl.Printf("attempt %d of %d failed: %s; next attempt at %s", n, p.MaxAttempts, reason, next.UTC().Format(time.RFC3339))
		t.log.Warn("attempt failed; task will be retried", zap.Int("attempt", n), zap.String("reason", reason), zap.Duration("delay", delay))
		if err := p.write(ctx, func(ctx context.Context) error { return p.Store.SetStatus(ctx, t.id, store.StatusProcessing) }); err != nil {
			return p.later(ctx, t.log, err)
		}
		p.metrics().TaskEnded(metrics.ResultRequeued)
		return queue.Result{Outcome: queue.Retry, Delay: delay}
	}
	if n > 1 {
		reason = fmt.Sprintf("%s (after %d attempts)", reason, n)
	}
	res := p.fail(ctx, t, reason)
	if res.Outcome == queue.Ack {
		res = queue.Result{Outcome: queue.DeadLetter, Reason: reason}
	}
	return res
}

// settle ends a task: the event is staged, the row written, the event released,
// the attempts forgotten. A crash anywhere in between loses nothing: a staged
// event is released when the job comes back and finds its row completed.
func (p *Pipeline) settle(ctx context.Context, t *task, id string, ev notify.Event, writeRow func(context.Context) error) error {
	t.pub.Stage(progress.StageNotifying)
	if err := p.Outbox.Stage(ctx, id, ev); err != nil {
		return err
	}
	if err := p.write(ctx, writeRow); err != nil {
		return err
	}
	if err := p.Outbox.Release(ctx, id, t.id, p.now()); err != nil {
		return err
	}
	t.tl.Printf("webhook %s queued as %s", ev.Type, id)
	if err := p.Attempts.ForgetAttempts(ctx, t.id); err != nil {
		t.log.Warn("attempt count not cleared", zap.Error(err))
	}
	return nil
}

// alongside runs step while the row's status becomes status. A status write is
// a commit, about half a millisecond, that need not hold up what goes beside it:
// the task's set-up, the start of the downloader or of rclone. The write has
// ended when alongside returns, so statuses are still written in order. Should
// it fail (MySQL away for all of write's tries), step's context is canceled and
// the write's error returned: the job waits and runs again, whatever step did.
func (p *Pipeline) alongside(ctx context.Context, t *task, status string, step func(context.Context)) error {
	stepCtx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	written := make(chan error, 1)
	go func() {
		err := p.write(ctx, func(ctx context.Context) error { return p.Store.SetStatus(ctx, t.id, status) })
		if err != nil {
			stop(err)
		}
		written <- err
	}()
	step(stepCtx)
	return <-written
}

// write runs a row update, trying again for a few seconds when MySQL fails.
func (p *Pipeline) write(ctx context.Context, update func(context.Context) error) error {
	var err error
	for attempt, wait := 0, 250*time.Millisecond; attempt < 4; attempt, wait = attempt+1, wait*2 {
		if err = update(ctx); err == nil || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
	return err
}

// backoff is base doubled for each attempt after the first, give or take 20%.
func backoff(base time.Duration, attempt int) time.Duration {
	d := base << min(attempt-1, 20)
	return d - d/5 + time.Duration(rand.Int64N(int64(d/5)*2+1))
}

func (p *Pipeline) webhook(t *task, typ string) notify.Event {
	end := p.now()
	return notify.Event{
		Type:            typ,
		TaskID:          t.id,
		OrderID:         t.orderID,
		Email:           t.email,
		Folder:          t.folder,
		DurationSeconds: int64(end.Sub(t.start).Round(time.Second) / time.Second),
		Timestamp:       notify.FormatTime(end),
	}
}

// describe renders a downloader error with its last stderr lines, for
// error_message.
func describe(err error) string {
	var pe *process.ExitError
	if !errors.As(err, &pe) {
		return err.Error()
	}
	msg := pe.Error()
	tail := pe.StderrTail
	if len(tail) > 5 {
		tail = tail[len(tail)-5:]
	}
	if len(tail) > 0 && !strings.HasSuffix(msg, tail[len(tail)-1]) || len(tail) > 1 {
		msg += "\n" + strings.Join(tail, "\n")
	}
	return msg
}

func orderText(id *int64) string {
	if id == nil {
		return "none"
	}
	return fmt.Sprint(*id)
}
