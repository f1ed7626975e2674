package pipeline

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/coursedl/worker/internal/download"
	"github.com/coursedl/worker/internal/enroll"
	"github.com/coursedl/worker/internal/intake"
	"github.com/coursedl/worker/internal/lifecycle"
	"github.com/coursedl/worker/internal/metrics"
	"github.com/coursedl/worker/internal/process"
	"github.com/coursedl/worker/internal/progress"
	"github.com/coursedl/worker/internal/queue"
	"github.com/coursedl/worker/internal/staging"
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
	// enrolled is the row's is_enrolled as admit read it: set, there is no
	// need to poll for it (the web app only ever sets it).
	enrolled bool
	lock     Lock
	rec      *recorder
	ran      time.Duration // how long its subprocesses ran (process.Result.Duration)
	driveURL string        // the upload's link, once uploaded
	// fresh is set when this run downloaded (not an earlier one): only then
	// must the folder hold files.
	fresh bool
	// ship moves the files the downloader announces while it runs; nil
	// when it announces none, or did its work in an earlier run.
	ship *shipper
}

// run takes an admitted task from processing to completed or failed, one step
// after another, from where its earlier runs got (resume). A step that ends the
// task returns what becomes of the job and false.
func (p *Pipeline) run(ctx context.Context, t *task) queue.Result {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() {
		select {
		case <-t.lock.Lost():
			cancel(lockCause(t.lock))
		case <-ctx.Done():
		}
	}()
	st := p.loadResume(t)
	var downloaded bool
	st.view(func(r *resume) { downloaded = r.Downloaded })
	if !downloaded {
		if err := p.room(); err != nil {
			return p.deferTask(ctx, t, reasonDiskLow, err)
		}
	}
	if err := p.open(ctx, t); err != nil {
		return p.later(ctx, t.rec, err)
	}
	defer t.rec.close()
	defer func() { t.ship.finish(nil) }() // no move outlives the run
	if res, next := p.enroll(ctx, t); !next {
		return res
	}
	if err := p.checkShipped(ctx, t, st); err != nil {
		return p.retryOrFail(ctx, t, "upload failed: "+err.Error())
	}
	if res, next := p.download(ctx, t, st); !next {
		return res
	}
	if res, next := p.upload(ctx, t, st); !next {
		return res
	}
	return p.complete(ctx, t)
}

// open makes the row processing, and meanwhile opens the task's log; then its
// progress events begin. When it fails, nothing of the task is left open.
func (p *Pipeline) open(ctx context.Context, t *task) error {
	var tl *tasklog.Log
	var openErr error
	err := p.alongside(ctx, t, store.StatusProcessing, func(context.Context) {
		if tl, openErr = tasklog.Open(p.TaskLog, t.id); openErr == nil {
			tl.Printf("task %d: job received, order %s, course %s", t.id, orderText(t.orderID), t.url)
		}
	})
	if openErr != nil {
		return openErr
	}
	t.rec.open(tl, nil)
	if err != nil {
		t.rec.close()
		return err
	}
	t.rec.open(tl, &steady{TaskProgress: p.Progress.Task(t.id)})
	return nil
}

// enroll waits for the row's enrollment flag, unless admit saw it set.
func (p *Pipeline) enroll(ctx context.Context, t *task) (queue.Result, bool) {
	t.rec.record(ctx, note{stage: progress.StageWaitingEnrollment, line: "waiting for enrollment"})
	began := p.now()
	var err error
	if !t.enrolled {
		err = p.Enroller.Wait(ctx, t.id)
	}
	t.rec.record(ctx, note{timed: metrics.StageEnrollment, took: p.now().Sub(began)})
	switch {
	case errors.Is(err, enroll.ErrTimeout):
		t.rec.record(ctx, note{event: lifecycle.EnrollTimeout})
		return p.fail(ctx, t, enroll.ErrTimeout.Error()), false
	case err != nil:
		return p.later(ctx, t.rec, err), false
	}
	t.rec.record(ctx, note{event: lifecycle.EnrollConfirmed, line: "enrollment confirmed"})
	return queue.Result{}, true
}

// download runs the downloader in the task's folder, its output to the task
// log and its progress to the task's events, unless an earlier run did. A
// failure of the downloader is transient, the task tried again up to the last
// attempt, except: a disk that filled up, or the course site refusing us,
// defers the task without using up an attempt; a destination the egress guard
// refused fails it.
func (p *Pipeline) download(ctx context.Context, t *task, st *state) (queue.Result, bool) {
	var downloaded bool
	st.view(func(r *resume) { downloaded = r.Downloaded })
	if downloaded {
		t.rec.record(ctx, note{line: "download done by an earlier run; going on with the upload"})
		return queue.Result{}, true
	}
	if err := os.MkdirAll(t.dir, 0o750); err != nil {
		if staging.IsNoSpace(err) { // out of inodes, or filled since the check
			return p.deferTask(ctx, t, reasonDiskLow, err), false
		}
		return p.fail(ctx, t, fmt.Sprintf("cannot make the task folder: %v", err)), false
	}
	dl, err := p.prepare(ctx, t)
	var ce *cookiesError
	switch {
	case errors.As(err, &ce):
		return p.deferTask(ctx, t, reasonCookies, err), false
	case err != nil:
		return p.later(ctx, t.rec, err), false
	}
	defer dl.close(t.rec.log)
	t.rec.record(ctx, note{event: lifecycle.DownloadStart, fields: []lifecycle.Field{lifecycle.F("Url", t.url)},
		line: "download started in " + t.dir})
	began := p.now()
	t.ship = p.ship(ctx, t, st)
	res, err, werr := p.runDownloader(ctx, t, dl.job)
	dl.close(t.rec.log) // the cookies copy goes before the upload at the end
	switch {
	case werr != nil:
		return p.later(ctx, t.rec, werr), false
	case err != nil && isStop(ctx, err):
		return p.later(ctx, t.rec, err), false
	case err != nil:
		return p.downloadFailed(ctx, t, err, dl.refused()), false
	}
	p.host().DownloadSucceeded()
	t.rec.record(ctx, note{
		line:  fmt.Sprintf("download finished in %s", res.Duration.Round(time.Millisecond)),
		event: lifecycle.DownloadSuccess, fields: []lifecycle.Field{lifecycle.F("Duration", p.now().Sub(began))},
	})
	return p.downloaded(ctx, t, st)
}

// runDownloader runs the downloader while the row becomes downloading; err is
// the downloader's failure, werr the row's.
func (p *Pipeline) runDownloader(ctx context.Context, t *task, j download.Job) (res process.Result, err, werr error) {
	// A downloader may print thousands of lines a second: they come in batches
	// (the lines of one read), and the feed parses progress at the publisher's
	// pace, not every line.
	feed := progress.NewFeed(t.rec.pub, progress.StageDownloading, progress.DefaultMinInterval)
	werr = p.alongside(ctx, t, store.StatusDownloading, func(ctx context.Context) {
		res, err = p.Downloader.Run(ctx, j, func(s process.Stream, lines [][]byte) {
			t.rec.output(s, tasklog.SourceDownload, tasklog.SourceDownloadStderr, lines)
			feed.Lines(lines)
			if s == process.Stdout && t.ship != nil {
				t.ship.lines(lines)
			}
		})
	})
	feed.Close()
	t.ran += res.Duration
	t.rec.record(ctx, note{timed: metrics.StageDownload, took: res.Duration})
	return res, err, werr
}

// downloadFailed decides on a downloader that failed with err.
func (p *Pipeline) downloadFailed(ctx context.Context, t *task, err error, refused []string) queue.Result {
	reason := "download failed: " + describe(err)
	t.rec.record(ctx, note{event: lifecycle.DownloadFailed, fields: []lifecycle.Field{lifecycle.F("Error", reason)}})
	if len(refused) > 0 {
		p.host().DownloadFailed(ctx, "")
		return p.fail(ctx, t, fmt.Sprintf("download failed: the egress guard refused %s", strings.Join(refused, ", ")))
	}
	var pe *process.ExitError
	var tail []string
	if errors.As(err, &pe) {
		tail = pe.StderrTail
	}
	if staging.IsNoSpace(err) || slices.ContainsFunc(tail, func(l string) bool { return staging.IsNoSpace(errors.New(l)) }) {
		return p.deferTask(ctx, t, reasonDiskLow, err)
	}
	kind := intake.Kind(err.Error(), tail)
	if tripped := p.host().DownloadFailed(ctx, kind); kind != "" {
		if tripped {
			t.rec.record(ctx, note{line: "intake paused: too many tasks in a row failed this way", level: zap.WarnLevel})
		}
		return p.deferTask(ctx, t, kind, err)
	}
	return p.retryOrFail(ctx, t, reason)
}

// downloaded notes that the download is done, so that no later run of the task
// downloads again. When no file was announced, none has gone or is going
// early: the folder's name is known now and goes in the same write, which
// spares uploadRest a write of its own (a file replaced costs a flush to the
// disk).
func (p *Pipeline) downloaded(_ context.Context, t *task, st *state) (queue.Result, bool) {
	var announced bool
	st.view(func(r *resume) { announced = len(r.Files) > 0 })
	var folder string
	if !announced {
		folder, _, _ = download.Folder(t.dir, t.id) // an error is upload's to report
	}
	if err := st.update(func(r *resume) {
		r.Downloaded = true
		if folder != "" && r.Folder == "" && len(r.Files) == 0 {
			r.Folder = folder
		}
	}); err != nil {
		t.rec.log.Warn("task state not saved; a re-run would download again", zap.Error(err))
	}
	t.fresh = true
	return queue.Result{}, true
}

// upload moves what is left of the download to its destination with rclone
// once the files moved while the download went on have gone, and keeps its
// link, unless an earlier run did. Only rclone's temporary failures are worth
// another attempt; the destination's quota defers the task; a fatal exit or a
// source the upload refuses fails it.
func (p *Pipeline) upload(ctx context.Context, t *task, st *state) (queue.Result, bool) {
	var r resume
	st.view(func(s *resume) { r = *s })
	if r.Uploaded {
		t.folder, t.driveURL = r.Folder, r.DriveURL
		t.rec.record(ctx, note{line: fmt.Sprintf("upload done by an earlier run, to %s; link %s", r.Dest, r.DriveURL)})
		return queue.Result{}, true
	}
	found, err := finalLayout(t, nil) // the folder as it is now; an error: gone, or replaced by a symlink
	if err != nil {
		return p.fail(ctx, t, fmt.Sprintf("cannot read the task folder: %v", err)), false
	}
	left, err := upload.Size(t.dir)
	if err != nil || left.Files == 0 && len(r.Files) == 0 && t.fresh {
		return p.fail(ctx, t, "download failed: the downloader exited 0 but left no files"), false
	}
	if err := p.confirm(ctx, t, "upload"); err != nil {
		return p.later(ctx, t.rec, err), false
	}
	began := p.now()
	var out uploadRun
	werr := p.alongside(ctx, t, store.StatusUploading, func(ctx context.Context) { out = p.uploadRest(ctx, t, st, found) })
	switch {
	case werr != nil:
		return p.later(ctx, t.rec, werr), false
	case out.later != nil:
		return p.later(ctx, t.rec, out.later), false
	case out.fail != "":
		return p.fail(ctx, t, out.fail), false
	case out.err != nil && isStop(ctx, out.err):
		return p.later(ctx, t.rec, out.err), false
	case out.err != nil:
		return p.uploadFailed(ctx, t, out.err), false
	}
	up, took := out.up, p.now().Sub(began)
	t.rec.record(ctx, note{
		timed: metrics.StageUpload, took: took, moved: metrics.Uploaded, bytes: out.left,
		event: lifecycle.UploadSuccess, fields: []lifecycle.Field{lifecycle.F("Dest", up.Dest), lifecycle.F("Duration", took)},
		line: fmt.Sprintf("uploaded to %s; link %s", up.Dest, up.URL),
	})
	t.driveURL = up.URL
	if err := st.update(func(r *resume) { r.Uploaded, r.Dest, r.DriveURL = true, up.Dest, up.URL }); err != nil {
		t.rec.log.Warn("task state not saved; a re-run would upload again", zap.Error(err))
	}
	return queue.Result{}, true
}

// uploadRun is how the upload of a task went: up, or a reason to fail it, a
// reason for its job to wait, or rclone's failure.
type uploadRun struct {
	up    upload.Result
	left  int64 // bytes moved at the end
	fail  string
	later error
	err   error
}

// uploadRest waits for the files moved while the download went on, finds the
// folder's name as the downloader left it, puts the files moved early where
// that name says (placeEarly), then moves the rest with rclone and finds the
// link. The uploading stage's percent is of every file of the course. found
// is the folder's layout as upload found it.
func (p *Pipeline) uploadRest(ctx context.Context, t *task, st *state, found layout) uploadRun {
	m := p.meter(t, st)
	if m.early {
		// The wait for the moves under way, and the bytes of each, show under
		// uploading at once. Without files moved early, rclone's first line
		// starts the stage, as it did before: an event of its own ahead of it
		// would leave rclone's first update pending until the next stage's,
		// one more publish per task on the way to the webhook.
		t.rec.record(ctx, note{stage: progress.StageUploading})
	}
	t.ship.finish(func(size int64) { t.rec.pub.Update(progress.StageUploading, m.add(size)) })
	final, stop := p.placeEarly(ctx, t, st, found, m.early)
	if stop != nil {
		return *stop
	}
	req := upload.Request{TaskID: t.id, Source: filepath.Join(t.dir, final.Top), Folder: final.Folder, Email: t.email}
	left, err := upload.Size(req.Source)
	if errors.Is(err, os.ErrNotExist) {
		req.Source = "" // every file went early, and their folder with them: only the link
	}
	t.rec.record(ctx, note{moved: metrics.Downloaded, bytes: left.Bytes, line: fmt.Sprintf("upload of %q started", final.Folder)})
	up, err := p.Uploader.Upload(ctx, req, func(s process.Stream, line []byte) {
		t.rec.rcloneLine(s, line)
		if u, ok := progress.ParseRclone(line); ok {
			t.rec.pub.Update(progress.StageUploading, m.with(u))
		}
	})
	t.ran += up.Ran
	return uploadRun{up: up, left: left.Bytes, err: err}
}

// placeEarly returns the folder's final layout, its name kept in the task's
// state, once the moves of announced files have ended, and puts the files
// moved early where it says (relocate). Without files moved early
// (early unset), nothing has left the folder since upload found it as found,
// which stands. A non-nil uploadRun says how the upload ends instead.
func (p *Pipeline) placeEarly(ctx context.Context, t *task, st *state, found layout, early bool) (layout, *uploadRun) {
	var gone []string
	var folder string
	st.view(func(r *resume) { gone, _ = r.moved(); folder = r.Folder })
	final := found
	if early {
		var err error
		if final, err = finalLayout(t, gone); err != nil {
			return layout{}, &uploadRun{fail: fmt.Sprintf("cannot read the task folder: %v", err)}
		}
	}
	if folder != "" {
		final.Folder = folder // an upload cut short may have moved the folder's name away
	} else if err := st.update(func(r *resume) { r.Folder = final.Folder }); err != nil {
		t.rec.log.Warn("task state not saved", zap.Error(err))
	}
	t.folder = final.Folder
	if len(gone) > 0 { // time has passed since the lock was confirmed: files were moving
		if err := p.confirm(ctx, t, "upload"); err != nil {
			return layout{}, &uploadRun{later: err}
		}
	}
	if early {
		if err := p.relocate(ctx, t, st, final); err != nil {
			return layout{}, &uploadRun{err: err}
		}
	}
	return final, nil
}

// uploadFailed decides on an upload that failed with err.
func (p *Pipeline) uploadFailed(ctx context.Context, t *task, err error) queue.Result {
	t.rec.record(ctx, note{event: lifecycle.UploadFailed, fields: []lifecycle.Field{lifecycle.F("Error", err.Error())}})
	var ue *upload.Error
	switch {
	case upload.IsQuota(err):
		errors.As(err, &ue)
		return p.deferUntil(ctx, t, reasonUploadQuota, err, ue.Until)
	case !errors.As(err, &ue) || !ue.Temporary():
		return p.fail(ctx, t, "upload failed: "+err.Error())
	}
	return p.retryOrFail(ctx, t, "upload failed: "+err.Error())
}

// lockCause is why a task whose lock's Lost closed is stopped: fenced (not
// renewed in time), or taken by another runner.
func lockCause(lock Lock) error {
	if err := lock.Err(); errors.Is(err, queue.ErrFenced) {
		return err
	}
	return errLockLost
}

// confirm renews the task's lock in a round trip before step, which cannot be
// undone (rclone move, the row's final write): it starts only while the lock
// is known to be held. An error wraps errNotConfirmed; the job then waits.
func (p *Pipeline) confirm(ctx context.Context, t *task, step string) error {
	if err := t.lock.Confirm(ctx); err != nil {
		return fmt.Errorf("%w before the %s: %w", errNotConfirmed, step, err)
	}
	return nil
}
