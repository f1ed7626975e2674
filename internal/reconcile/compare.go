package reconcile

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/coursedl/worker/internal/job"
	"github.com/coursedl/worker/internal/lifecycle"
	"github.com/coursedl/worker/internal/store"
)

// jobTask names the task of a payload in Redis, 0 when it names none.
func jobTask(payload string) int64 { return job.TaskID([]byte(payload)) }

// reconcile pushes the job of every unfinished row unchanged for staleFor
// that has none in Redis, under epoch (the push fails with
// rdb.ErrEpochChanged if the epoch is no longer that); lost says a loss of
// data is being handled. It returns how many jobs it pushed.
//
// Redis is read first, then the rows a page at a time; the rows missing a job
// are looked for in Redis a second time, as a job moving between two lists
// during the first read may have been missed.
func (r *Reconciler) reconcile(ctx context.Context, epoch string, staleFor time.Duration, lost bool) (int, error) {
	present, err := r.Redis.JobsInRedis(ctx, jobTask)
	if err != nil {
		return 0, err
	}
	missing, err := r.missing(ctx, staleFor, present)
	if err != nil || len(missing) == 0 {
		return 0, err
	}
	if present, err = r.Redis.JobsInRedis(ctx, jobTask); err != nil {
		return 0, err
	}
	pushed := 0
	for i, t := range missing {
		if i%pageSize == pageSize-1 {
			if _, err := r.Redis.HoldReconcile(ctx, r.token, lockTTL); err != nil {
				return pushed, err
			}
		}
		if present[t.ID] {
			continue
		}
		ok, err := r.push(ctx, t, epoch, lost)
		if err != nil {
			return pushed, err
		}
		if ok {
			pushed++
		}
	}
	return pushed, nil
}

// missing pages through the unfinished rows unchanged for staleFor and
// returns those whose task is not in present. It extends the lock page by page.
func (r *Reconciler) missing(ctx context.Context, staleFor time.Duration, present map[int64]bool) ([]store.Task, error) {
	var out []store.Task
	for after := int64(0); ; {
		page, err := r.Rows.StaleTasks(ctx, staleFor, after, pageSize)
		if err != nil {
			return nil, err
		}
		for _, t := range page {
			if !present[t.ID] {
				out = append(out, t)
			}
		}
		if len(page) < pageSize {
			return out, nil
		}
		after = page[len(page)-1].ID
		if _, err := r.Redis.HoldReconcile(ctx, r.token, lockTTL); err != nil {
			return nil, err
		}
	}
}

// push pushes the job of row t as the web app builds it, unless a worker holds
// the task's lock (it is running: false), and writes TASK_RECONCILED.
func (r *Reconciler) push(ctx context.Context, t store.Task, epoch string, lost bool) (bool, error) {
	payload, err := job.Of(t.ID, job.Row{Email: t.Email, CourseURL: t.CourseURL, OrderID: t.Order()}).Payload()
	if err != nil {
		return false, err
	}
	log := r.Log.With(zap.Int64("task_id", t.ID), zap.String("status", t.Status))
	ok, err := r.Redis.PushUnlocked(ctx, t.ID, payload, epoch)
	if err != nil || !ok {
		if err == nil {
			log.Debug("no job in Redis, but its lock is held: it runs")
		}
		return false, err
	}
	reason := r.reason(t.Status, lost)
	log.Info("job pushed again from its row", zap.String("reason", reason))
	if r.Lifecycle != nil {
		if err := r.Lifecycle.Write(lifecycle.TaskReconciled, t.ID, lifecycle.F("OrderId", t.Order()), lifecycle.F("Reason", reason)); err != nil {
			log.Warn("lifecycle line not written", zap.Error(err))
		}
	}
	return true, nil
}
