package pipeline

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/coursedl/worker/internal/lifecycle"
	"github.com/coursedl/worker/internal/metrics"
	"github.com/coursedl/worker/internal/queue"
	"github.com/coursedl/worker/internal/store"
)

// Reasons of a task deferred by the host, its TASK_DEFERRED line's Reason.
const (
	reasonDiskLow     = "disk low"
	reasonUploadQuota = "upload quota"
	reasonCookies     = "cookies file unreadable"
)

// host returns the Pipeline's Host, or one that always has room and no
// breaker.
func (p *Pipeline) host() Host {
	if p.Host == nil {
		return noHost{}
	}
	return p.Host
}

// room says whether the staging disk has room for a task to start.
func (p *Pipeline) room() error { return p.host().Room() }

// noHost is a Pipeline's Host when it has none.
type noHost struct{}

func (noHost) Room() error                                 { return nil }
func (noHost) DownloadFailed(context.Context, string) bool { return false }
func (noHost) DownloadSucceeded()                          {}

// deferTask gives the job back, to run again after BaseDelay, without using
// up an attempt: what stops the task is this host's (its disk, the course
// site refusing its cookies), not the task's. Its folder stays, for the next
// run to go on from.
func (p *Pipeline) deferTask(ctx context.Context, t *task, reason string, cause error) queue.Result {
	return p.deferUntil(ctx, t, reason, cause, p.now().Add(p.BaseDelay))
}

// deferUntil gives the job back until until (BaseDelay at the least).
func (p *Pipeline) deferUntil(ctx context.Context, t *task, reason string, cause error, until time.Time) queue.Result {
	delay := max(until.Sub(p.now()), p.BaseDelay, time.Second)
	next := p.now().Add(delay).UTC().Format(time.RFC3339)
	if t.rec.tl != nil {
		// The task had begun: its row says it waits to be worked on again.
		if err := p.write(ctx, func(ctx context.Context) error { return p.Store.SetStatus(ctx, t.id, store.StatusProcessing) }); err != nil {
			return p.later(ctx, t.rec, err)
		}
	}
	t.rec.record(ctx, note{
		event:  lifecycle.TaskDeferred,
		fields: []lifecycle.Field{lifecycle.F("Reason", reason), lifecycle.F("Next", next)},
		line:   "task deferred (" + reason + "): " + cause.Error() + "; next run at " + next,
		ended:  metrics.ResultRequeued,
		msg:    "task deferred; its job waits without using up an attempt", level: zap.WarnLevel,
		with: []zap.Field{zap.String("reason", reason), zap.Error(cause), zap.Duration("delay", delay)},
	})
	return queue.Result{Outcome: queue.Retry, Delay: delay}
}
