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
	"github.com/coursedl/worker/internal/trouble"
)

// Sender makes one delivery attempt; notify.Sender satisfies it.
type Sender interface {
	Send(ctx context.Context, id string, body []byte) error
}

// Deliverer sends due events: at once when this process adds one (Wake), when
// the earliest event in the outbox is due (a retry, or the end of the lease of
// a worker that died while sending), and at least every Poll (an event another
// worker released and could not send).
type Deliverer struct {
	Store     *Store
	Sender    Sender
	Schedule  []time.Duration  // delays between attempts
	Timeout   time.Duration    // of one attempt; the lease is longer
	Poll      time.Duration    // the longest wait; default DefaultPoll
	Lifecycle *lifecycle.Log   // may be nil
	Metrics   *metrics.Metrics // may be nil
	Log       *zap.Logger
	Now       func() time.Time

	wake chan struct{}
}

// Wake asks the Deliverer to look at the outbox now (after an Add).
func (d *Deliverer) Wake() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Init prepares the Deliverer; call it once before Run and Wake.
func (d *Deliverer) Init() *Deliverer {
	d.wake = make(chan struct{}, 1)
	if d.Poll <= 0 {
		d.Poll = DefaultPoll
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Log == nil {
		d.Log = zap.NewNop()
	}
	return d
}

// Run delivers until ctx ends. An attempt under way when ctx ends is finished
// (within Timeout) and its outcome recorded; events claimed and not yet tried
// are delivered later, by this or another worker, once their lease is over.
func (d *Deliverer) Run(ctx context.Context) error {
	t := time.NewTimer(d.Poll)
	defer t.Stop()
	tr := trouble.New(d.Log, "webhook outbox unreachable; retrying", "webhook outbox reachable again")
	for {
		next, err := d.pass(ctx)
		if ctx.Err() != nil {
			return nil
		}
		tr.Report(err)
		wait := d.Poll
		if !next.IsZero() {
			wait = min(wait, max(next.Sub(d.Now()), minWait))
		}
		t.Reset(wait)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-d.wake:
		}
	}
}

// DefaultPoll is the longest a Deliverer waits between looks at the outbox.
const DefaultPoll = 5 * time.Second

// minWait keeps an event due in the past (a clock behind Redis's scores) from
// spinning the loop.
const minWait = 10 * time.Millisecond

// pass sends every event due now; it returns when the earliest event left is
// due (zero if none is).
func (d *Deliverer) pass(ctx context.Context) (time.Time, error) {
	for {
		lease := d.Timeout + 30*time.Second
		entries, next, err := d.Store.Claim(ctx, d.Now(), lease, 16)
		if err != nil {
			return time.Time{}, err
		}
		if len(entries) == 0 {
			return next, nil
		}
		for _, e := range entries {
			if ctx.Err() != nil {
				return time.Time{}, nil // stopping: the events claimed and not tried wait out their lease
			}
			if err := d.attempt(ctx, e); err != nil {
				return time.Time{}, err
			}
		}
	}
}

// attempt sends one event and records the outcome.
func (d *Deliverer) attempt(ctx context.Context, e Entry) error {
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
		return d.Store.Delivered(rctx, e.ID)
	}
	reason := err.Error()
	if notify.IsPermanent(err) || n > len(d.Schedule) {
		d.event(lifecycle.WebhookFailed, e.TaskID, lifecycle.F("Type", e.Type), lifecycle.F("Attempt", n),
			lifecycle.F("Error", reason), lifecycle.F("Final", true))
		log.Error("webhook not delivered; kept in "+DeadKey+" for an operator", zap.Error(err))
		d.Metrics.WebhookDelivery(metrics.WebhookDead)
		return d.Store.Bury(rctx, e.ID, n, reason)
	}
	next := d.Now().Add(jitter(d.Schedule[n-1]))
	d.event(lifecycle.WebhookFailed, e.TaskID, lifecycle.F("Type", e.Type), lifecycle.F("Attempt", n),
		lifecycle.F("Error", reason), lifecycle.F("Next", next.UTC().Format(time.RFC3339)))
	log.Warn("webhook attempt failed", zap.Error(err), zap.Time("next", next))
	d.Metrics.WebhookDelivery(metrics.WebhookRetry)
	return d.Store.Retry(rctx, e.ID, n, reason, next)
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
	return d - d/10 + time.Duration(rand.Int64N(int64(d/5)+1))
}
