package pipeline

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"go.uber.org/zap"

	"github.com/coursedl/worker/internal/job"
	"github.com/coursedl/worker/internal/lifecycle"
	"github.com/coursedl/worker/internal/metrics"
	"github.com/coursedl/worker/internal/queue"
	"github.com/coursedl/worker/internal/store"
)

// admit decodes a job, reads its row and takes its task's lock. It returns the
// task, holding its lock and ready to run, or nil and what becomes of the job.
func (p *Pipeline) admit(ctx context.Context, payload string) (*task, queue.Result) {
	// On an error j still holds the task id, when the payload names one, for
	// the lines about the bad job.
	j, err := job.Decode([]byte(payload), p.AllowedHosts)
	rec := p.recorder(j.TaskID)
	rec.record(ctx, note{event: lifecycle.JobReceived})
	if err != nil {
		return nil, p.reject(ctx, rec, err.Error())
	}
	// The row and the task's lock are asked for at once, two round trips in the
	// time of one; the row is judged first, as if it had been read alone, and a
	// lock taken for a job that goes no further is given back on the way out.
	type locking struct {
		lock Lock
		err  error
	}
	locked := make(chan locking, 1)
	go func() {
		lock, err := p.Locks.Acquire(ctx, j.TaskID)
		locked <- locking{lock, err}
	}()
	row, err := p.Store.Task(ctx, j.TaskID)
	lk := <-locked
	t, res := p.judge(ctx, rec, j, row, err, lk.err)
	if t == nil {
		if lk.err == nil {
			p.release(ctx, rec, lk.lock)
		}
		return nil, res
	}
	t.lock = lk.lock
	return t, res
}

// judge decides on a job from its row, read with rowErr, and from the taking
// of its lock, which failed with lockErr or not; it returns the task when it
// is to run.
func (p *Pipeline) judge(ctx context.Context, rec *recorder, j job.Job, row store.Task, rowErr, lockErr error) (*task, queue.Result) {
	switch {
	case errors.Is(rowErr, store.ErrNotFound):
		return nil, p.reject(ctx, rec, fmt.Sprintf("no download_tasks row with id %d", j.TaskID))
	case rowErr != nil:
		return nil, p.later(ctx, rec, rowErr)
	}
	var orderID *int64
	if row.OrderID.Valid {
		orderID = &row.OrderID.Int64
	}
	if err := job.Match(j, job.Row{Email: row.Email, CourseURL: row.CourseURL, OrderID: orderID}); err != nil {
		return nil, p.reject(ctx, rec, err.Error())
	}
	if row.Status == store.StatusCompleted {
		// A run that crashed after writing the row may have left its webhook
		// staged: send it now.
		if _, err := p.Outbox.ReleaseStaged(ctx, j.TaskID); err != nil {
			return nil, p.later(ctx, rec, err)
		}
		rec.record(ctx, note{msg: "task already completed; job acknowledged and skipped", ended: metrics.ResultSkipped})
		return nil, queue.Result{Outcome: queue.Ack}
	}
	if errors.Is(lockErr, queue.ErrLocked) {
		rec.record(ctx, note{msg: "task is being run by another worker; job waits", with: []zap.Field{zap.Duration("delay", lockedDelay)},
			ended: metrics.ResultRequeued})
		return nil, queue.Result{Outcome: queue.Retry, Delay: lockedDelay}
	}
	if lockErr != nil {
		return nil, p.later(ctx, rec, lockErr)
	}
	rec.admit(orderID)
	return &task{
		id:       j.TaskID,
		orderID:  orderID,
		email:    row.Email,
		url:      row.CourseURL,
		dir:      filepath.Join(p.StagingDir, job.Name(j.TaskID)),
		folder:   job.Name(j.TaskID),
		enrolled: row.IsEnrolled,
		rec:      rec,
	}, queue.Result{}
}

// reject sends a job to the dead-letter list.
func (p *Pipeline) reject(ctx context.Context, rec *recorder, reason string) queue.Result {
	rec.record(ctx, note{
		event: lifecycle.JobRejected, fields: []lifecycle.Field{lifecycle.F("Reason", reason)},
		ended: metrics.ResultRejected,
		msg:   "job rejected", level: zap.WarnLevel, with: []zap.Field{zap.String("reason", reason)},
	})
	return queue.Result{Outcome: queue.DeadLetter, Reason: reason}
}

// release gives a task's lock back, even when ctx has ended.
func (p *Pipeline) release(ctx context.Context, rec *recorder, lock Lock) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := lock.Release(rctx); err != nil {
		rec.log.Warn("task lock not released; it expires by itself", zap.Error(err))
	}
}
