package outbox

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"go.uber.org/zap"

	"github.com/coursedl/worker/internal/lifecycle"
	"github.com/coursedl/worker/internal/metrics"
	"github.com/coursedl/worker/internal/notify"
	"github.com/coursedl/worker/internal/rdb"
)

// attempt sends one event and records the outcome; sent is true when the web
// app took it, err is an error recording the outcome.
func (d *Deliverer) attempt(ctx context.Context, e rdb.OutboxEvent) (sent bool, _ error) {
	n := e.Attempts + 1
	log := d.Log.With(zap.Int64("task_id", e.TaskID), zap.String("webhook_id", e.ID), zap.Int("attempt", n))
	began := d.Now()
	// An attempt under way when the worker stops is finished (Send has its own
	// timeout) and its outcome recorded: a request cut short may have reached
	// the web app, and one answered 2xx but not recorded would be sent again.
	sctx, stop := context.WithoutCancel(ctx), func() {}
	if d.Timeout > 0 {
		sctx, stop = context.WithTimeout(sctx, d.Timeout)
	}
	err := d.Sender.Send(sctx, e.ID, e.Body)
	stop()
	d.Metrics.ObserveStage(metrics.StageWebhook, d.Now().Sub(began))
	// Recording the outcome must not be cut short by the shutdown either.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err == nil {
		d.event(lifecycle.WebhookSent, e.TaskID, lifecycle.F("Type", e.Type), lifecycle.F("Attempt", n))
		log.Info("webhook delivered", zap.String("type", e.Type))
		d.Metrics.WebhookDelivery(metrics.WebhookDelivered)
		return true, d.Redis.EventDelivered(rctx, e.ID)
	}
	reason := err.Error()
	if notify.IsPermanent(err) || n > len(d.Schedule) {
		d.event(lifecycle.WebhookFailed, e.TaskID, lifecycle.F("Type", e.Type), lifecycle.F("Attempt", n),
			lifecycle.F("Error", reason), lifecycle.F("Final", true))
		log.Error("webhook not delivered; kept in "+rdb.OutboxDeadKey+" for an operator", zap.Error(err))
		d.Metrics.WebhookDelivery(metrics.WebhookDead)
		return false, d.Redis.BuryEvent(rctx, e.ID, n, reason)
	}
	delay := jitter(d.Schedule[n-1])
	next := d.Now().Add(delay) // for people: the outbox has it due on Redis's clock
	d.event(lifecycle.WebhookFailed, e.TaskID, lifecycle.F("Type", e.Type), lifecycle.F("Attempt", n),
		lifecycle.F("Error", reason), lifecycle.F("Next", next.UTC().Format(time.RFC3339)))
	log.Warn("webhook attempt failed", zap.Error(err), zap.Time("next", next))
	d.Metrics.WebhookDelivery(metrics.WebhookRetry)
	return false, d.Redis.RetryEvent(rctx, e.ID, n, reason, delay)
}

func (d *Deliverer) event(name string, taskID int64, fields ...lifecycle.Field) {
	if d.Lifecycle == nil {
		return
	}
	if err := d.Lifecycle.Write(name, taskID, fields...); err != nil && !errors.Is(err, lifecycle.ErrClosed) {
		d.Log.Warn("lifecycle line not written", zap.Error(err))
	}
}

// jitter spreads d by ±10% so that deliverers do not retry in step.
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return d - d/10 + time.Duration(rand.Int64N(int64(d/5)+1)) //nolint:gosec // G404: jitter of a retry delay, not a secret
}
