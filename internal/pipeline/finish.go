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

	"github.com/coursedl/worker/internal/lifecycle"
	"github.com/coursedl/worker/internal/metrics"
	"github.com/coursedl/worker/internal/notify"
	"github.com/coursedl/worker/internal/process"
	"github.com/coursedl/worker/internal/progress"
	"github.com/coursedl/worker/internal/queue"
	"github.com/coursedl/worker/internal/store"
)

// complete records success: the row first, then the webhook, then cleanup.
func (p *Pipeline) complete(ctx context.Context, t *task) queue.Result {
	ev := p.webhook(t, notify.TypeCompleted)
	ev.DriveURL = t.driveURL
	if err := p.settle(ctx, t, notify.CompletedID(t.id), ev, func(ctx context.Context) error { return p.Store.Complete(ctx, t.id, t.driveURL) }); err != nil {
		return p.later(ctx, t.rec, err)
	}
	took := p.now().Sub(t.start)
	t.rec.record(ctx, note{
		event: lifecycle.TaskCompleted, fields: []lifecycle.Field{lifecycle.F("DriveUrl", t.driveURL), lifecycle.F("Duration", took)},
		line:  fmt.Sprintf("task completed in %s", took.Round(time.Millisecond)),
		stage: progress.StageCompleted,
		ended: metrics.ResultCompleted,
		msg:   "task completed",
		with:  []zap.Field{zap.String("drive_url", t.driveURL), zap.Duration("duration", took), zap.Duration("subprocess_duration", t.ran)},
	})
	if err := os.RemoveAll(t.dir); err != nil {
		t.rec.log.Warn("staging folder not removed", zap.String("dir", t.dir), zap.Error(err))
	}
	p.forget(t)
	return queue.Result{Outcome: queue.Ack}
}

// fail records a failure for good: the row, the webhook; the staging folder stays
// for an operator to look at.
func (p *Pipeline) fail(ctx context.Context, t *task, reason string) queue.Result {
	ev := p.webhook(t, notify.TypeFailed)
	ev.Error = reason
	if err := p.settle(ctx, t, notify.FailedID(t.id, reason), ev, func(ctx context.Context) error { return p.Store.Fail(ctx, t.id, reason) }); err != nil {
		return p.later(ctx, t.rec, err)
	}
	took := p.now().Sub(t.start)
	t.rec.record(ctx, note{
		event: lifecycle.TaskFailed, fields: []lifecycle.Field{lifecycle.F("Reason", reason), lifecycle.F("Duration", took)},
		line:  "task failed: " + reason,
		stage: progress.StageFailed,
		ended: metrics.ResultFailed,
		msg:   "task failed", level: zap.WarnLevel,
		with: []zap.Field{zap.String("reason", reason), zap.String("staging", t.dir), zap.Duration("duration", took),
			zap.Duration("subprocess_duration", t.ran)},
	})
	return queue.Result{Outcome: queue.Ack}
}

// retryOrFail counts a failed attempt of a transient kind: the job waits in the
// delayed set for the next one, or, after the last, the task fails for good and
// its job goes to dl:dead. The staging folder stays between attempts, so a
// downloader that resumes (yt-dlp does) goes on where it stopped.
func (p *Pipeline) retryOrFail(ctx context.Context, t *task, reason string) queue.Result {
	n, err := p.Attempts.NextAttempt(ctx, t.id)
	if err != nil {
		return p.later(ctx, t.rec, err)
	}
	if n < p.MaxAttempts {
		delay := backoff(p.BaseDelay, n)
		next := p.now().Add(delay).UTC().Format(time.RFC3339)
		t.rec.record(ctx, note{
			event:  lifecycle.TaskRetry,
			fields: []lifecycle.Field{lifecycle.F("Attempt", n), lifecycle.F("Next", next), lifecycle.F("Reason", reason)},
			line:   fmt.Sprintf("attempt %d of %d failed: %s; next attempt at %s", n, p.MaxAttempts, reason, next),
			msg:    "attempt failed; task will be retried", level: zap.WarnLevel,
			with: []zap.Field{zap.Int("attempt", n), zap.String("reason", reason), zap.Duration("delay", delay)},
		})
		if err := p.write(ctx, func(ctx context.Context) error { return p.Store.SetStatus(ctx, t.id, store.StatusProcessing) }); err != nil {
			return p.later(ctx, t.rec, err)
		}
		t.rec.record(ctx, note{ended: metrics.ResultRequeued})
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

// settle ends a task once its lock is confirmed held: the event is staged, the
// row written, the event released, the attempts forgotten. A crash anywhere in between loses nothing: a staged
// event is released when the job comes back and finds its row completed.
func (p *Pipeline) settle(ctx context.Context, t *task, id string, ev notify.Event, writeRow func(context.Context) error) error {
	if err := p.confirm(ctx, t, "final row write"); err != nil {
		return err
	}
	t.rec.record(ctx, note{stage: progress.StageNotifying})
	if err := p.Outbox.Stage(ctx, id, ev); err != nil {
		return err
	}
	if err := p.write(ctx, writeRow); err != nil {
		return err
	}
	if err := p.Outbox.Release(ctx, id, t.id); err != nil {
		return err
	}
	t.rec.record(ctx, note{line: fmt.Sprintf("webhook %s queued as %s", ev.Type, id)})
	if err := p.Attempts.ForgetAttempts(ctx, t.id); err != nil {
		t.rec.log.Warn("attempt count not cleared", zap.Error(err))
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

// maxBackoff bounds the delay between two attempts of a task.
const maxBackoff = 24 * time.Hour

// backoff is base doubled for each attempt after the first, give or take 20%.
func backoff(base time.Duration, attempt int) time.Duration {
	d := base << min(attempt-1, 20)
	if d <= 0 || d > maxBackoff || d>>min(attempt-1, 20) != base {
		d = maxBackoff // a shift that overflowed, or a delay past any use
	}
	return d - d/5 + time.Duration(rand.Int64N(int64(d/5)*2+1)) //nolint:gosec // G404: jitter of a retry delay, not a secret
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
