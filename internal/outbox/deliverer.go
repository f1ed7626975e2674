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

	wake   chan struct{}
	handed chan handoff // events released by Release, for a first attempt
}

// Stage stages event ev as id (Store.Stage): the Deliverer is the outbox of the
// pipeline, which stages, writes the row, then releases.
func (d *Deliverer) Stage(ctx context.Context, id string, ev notify.Event) error {
	return d.Store.Stage(ctx, id, ev)
}

// ReleaseStaged releases the event staged for taskID, if one is, and looks at
// the outbox at once; it reports whether there was one.
func (d *Deliverer) ReleaseStaged(ctx context.Context, taskID int64, now time.Time) (bool, error) {
	ok, err := d.Store.ReleaseStaged(ctx, taskID, now)
	if ok {
		d.Wake()
	}
	return ok, err
}

// Release releases the staged event id of taskID and has it sent at once,
// without the claim and read-back of a pass: one round trip from the row written
// to the request under way. The event is claimed first, so no other deliverer
// sends it meanwhile; should this worker stop before trying it, it goes out when
// the claim's lease ends.
func (d *Deliverer) Release(ctx context.Context, id string, taskID int64, now time.Time) error {
	e, ok, err := d.Store.ReleaseClaimed(ctx, id, taskID, now, d.lease())
	if err != nil {
		return err
	}
	if ok {
		select {
		case d.handed <- handoff{e, now.Add(d.lease())}:
			return nil
		default:
		}
		// Many events at once: this one waits its turn in the outbox.
		if err := d.Store.Due(ctx, id, now); err != nil {
			d.Log.Warn("webhook event waits for its lease", zap.String("webhook_id", id), zap.Error(err))
		}
	}
	d.Wake()
	return nil
}

// handoff is an event Release claimed until until, for the Run loop to try.
type handoff struct {
	e     Entry
	until time.Time
}

// lease is how long a claimed event is kept from other deliverers: longer than
// an attempt.
func (d *Deliverer) lease() time.Duration { return d.Timeout + 30*time.Second }

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
	d.handed = make(chan handoff, 64)
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
	look := true
	for {
		if look {
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
		}
		look = true
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-d.wake:
		case h := <-d.handed:
			if d.Now().Add(d.Timeout).After(h.until) {
				// Waited so long (a slow web app) that its claim could end
				// during the attempt: the outbox has it due, for one look to send.
				continue
			}
			// Sent: nothing new is due, the timer stands. Not sent: its retry
			// is in the outbox, and the next look finds when.
			sent, err := d.attempt(ctx, h.e)
			tr.Report(err)
			look = !sent || err != nil
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
		entries, next, err := d.Store.Claim(ctx, d.Now(), d.lease(), 16)
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
			if _, err := d.attempt(ctx, e); err != nil {
				return time.Time{}, err
			}
		}
	}
}

// attempt sends one event and records the outcome; sent is true when the web
// app took it, err is an error recording the outcome.
func (d *Deliverer) attempt(ctx context.Context, e Entry) (sent bool, _ error) {
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
		return true, d.Store.Delivered(rctx, e.ID)
	}
	reason := err.Error()
	if notify.IsPermanent(err) || n > len(d.Schedule) {
		d.event(lifecycle.WebhookFailed, e.TaskID, lifecycle.F("Type", e.Type), lifecycle.F("Attempt", n),
			lifecycle.F("Error", reason), lifecycle.F("Final", true))
		log.Error("webhook not delivered; kept in "+DeadKey+" for an operator", zap.Error(err))
		d.Metrics.WebhookDelivery(metrics.WebhookDead)
		return false, d.Store.Bury(rctx, e.ID, n, reason)
	}
	next := d.Now().Add(jitter(d.Schedule[n-1]))
	d.event(lifecycle.WebhookFailed, e.TaskID, lifecycle.F("Type", e.Type), lifecycle.F("Attempt", n),
		lifecycle.F("Error", reason), lifecycle.F("Next", next.UTC().Format(time.RFC3339)))
	log.Warn("webhook attempt failed", zap.Error(err), zap.Time("next", next))
	d.Metrics.WebhookDelivery(metrics.WebhookRetry)
	return false, d.Store.Retry(rctx, e.ID, n, reason, next)
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
