// Package outbox delivers webhook events on the Standard Webhooks retry
// schedule. A task stages its event in the outbox (Redis, through package rdb),
// writes its row, releases the event and ends; the Deliverer of any worker sends
// it, so an event outlives a web app that is down and a worker that restarts,
// and keeps its webhook-id. An event refused for good or past the schedule is
// kept for an operator, never dropped.
package outbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/coursedl/worker/internal/lifecycle"
	"github.com/coursedl/worker/internal/loop"
	"github.com/coursedl/worker/internal/metrics"
	"github.com/coursedl/worker/internal/notify"
	"github.com/coursedl/worker/internal/rdb"
)

// Sender makes one delivery attempt; notify.Sender satisfies it.
type Sender interface {
	Send(ctx context.Context, id string, body []byte) error
}

// Params configure a Deliverer.
type Params struct {
	Redis     *rdb.Client
	Sender    Sender
	Schedule  []time.Duration  // delays between attempts
	Timeout   time.Duration    // of one attempt; the lease is longer
	Poll      time.Duration    // the longest wait; default DefaultPoll
	Lifecycle *lifecycle.Log   // may be nil
	Metrics   *metrics.Metrics // may be nil
	Log       *zap.Logger
	Now       func() time.Time
}

// DefaultPoll is the longest a Deliverer waits between looks at the outbox.
const DefaultPoll = 5 * time.Second

// Deliverer sends due events: at once when this process releases one, when
// the earliest event in the outbox is due (a retry, or the end of the lease of
// a worker that died while sending), and at least every Poll (an event another
// worker released and could not send).
type Deliverer struct {
	Params
	wake     chan struct{}
	handed   chan handoff // events released by Release, for a first attempt
	lookWant atomic.Bool  // Wake asked for a look at the outbox
	nextLook time.Time    // when the outbox is due a look; Run's goroutine only
}

// NewDeliverer returns a Deliverer with the defaults applied.
func NewDeliverer(p Params) *Deliverer {
	if p.Poll <= 0 {
		p.Poll = DefaultPoll
	}
	if p.Now == nil {
		p.Now = time.Now
	}
	if p.Log == nil {
		p.Log = zap.NewNop()
	}
	return &Deliverer{Params: p, wake: make(chan struct{}, 1), handed: make(chan handoff, 64)}
}

// handoff is an event Release claimed until until (on the Now clock; the claim
// ends no earlier by Redis's), for the Run loop to try.
type handoff struct {
	e     rdb.OutboxEvent
	until time.Time
}

// Stage writes event ev as id without making it due (see rdb.StageEvent): the
// pipeline stages, writes the row, then releases.
func (d *Deliverer) Stage(ctx context.Context, id string, ev notify.Event) error {
	body, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	return d.Redis.StageEvent(ctx, id, ev.TaskID, ev.Type, body)
}

// ReleaseStaged releases the event staged for taskID, if one is, and looks at
// the outbox at once; it reports whether there was one.
func (d *Deliverer) ReleaseStaged(ctx context.Context, taskID int64) (bool, error) {
	ok, err := d.Redis.ReleaseStaged(ctx, taskID)
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
func (d *Deliverer) Release(ctx context.Context, id string, taskID int64) error {
	sent := d.Now()
	e, ok, err := d.Redis.ReleaseClaimed(ctx, id, taskID, d.lease())
	if err != nil {
		return err
	}
	if ok {
		select {
		case d.handed <- handoff{e, sent.Add(d.lease())}:
			d.signal()
			return nil
		default:
		}
		// Many events at once: this one waits its turn in the outbox.
		if err := d.Redis.EventDue(ctx, id); err != nil {
			d.Log.Warn("webhook event waits for its lease", zap.String("webhook_id", id), zap.Error(err))
		}
	}
	d.Wake()
	return nil
}

// lease is how long a claimed event is kept from other deliverers: longer than
// an attempt.
func (d *Deliverer) lease() time.Duration { return d.Timeout + 30*time.Second }

// Wake asks the Deliverer to look at the outbox now.
func (d *Deliverer) Wake() {
	d.lookWant.Store(true)
	d.signal()
}

func (d *Deliverer) signal() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Run delivers until ctx ends. An attempt under way when ctx ends is finished
// (within Timeout) and its outcome recorded; events claimed and not yet tried
// are delivered later, by this or another worker, once their lease is over.
func (d *Deliverer) Run(ctx context.Context) error {
	return loop.Run(ctx, loop.Params{
		Every:   d.Poll,
		Wake:    d.wake,
		Log:     d.Log,
		Failing: "webhook outbox unreachable; retrying",
		Back:    "webhook outbox reachable again",
		Now:     d.Now,
	}, d.pass)
}

// pass tries the events handed over by Release, then looks at the outbox
// unless those were all it was woken for and all went out: a sent event leaves
// nothing new due. It returns when the outbox is due a look again.
func (d *Deliverer) pass(ctx context.Context) (time.Time, error) {
	look, herr := d.tryHanded(ctx)
	if ctx.Err() != nil {
		return time.Time{}, herr
	}
	if !look && !d.lookWant.Load() && d.Now().Before(d.nextLook) {
		return d.nextLook, nil
	}
	d.lookWant.Store(false)
	next, err := d.look(ctx)
	d.nextLook = d.Now().Add(d.Poll)
	if !next.IsZero() && next.Before(d.nextLook) {
		d.nextLook = next
	}
	return next, errors.Join(herr, err)
}

// tryHanded makes the first attempt of each event handed over; look is true
// when one was not sent (its retry is in the outbox), its outcome could not be
// recorded, or it waited so long that its claim could end during the attempt
// (the outbox has it due).
func (d *Deliverer) tryHanded(ctx context.Context) (look bool, err error) {
	for ctx.Err() == nil {
		select {
		case h := <-d.handed:
			if d.Now().Add(d.Timeout).After(h.until) {
				look = true
				continue
			}
			sent, err := d.attempt(ctx, h.e)
			if err != nil {
				return true, err
			}
			look = look || !sent
		default:
			return look, nil
		}
	}
	return look, nil
}

// look sends every event due now by Redis's clock; it returns when the
// earliest event left is due on the Now clock (zero if none is).
func (d *Deliverer) look(ctx context.Context) (time.Time, error) {
	for {
		asked := d.Now()
		events, in, err := d.Redis.ClaimEvents(ctx, d.lease(), 16)
		if err != nil {
			return time.Time{}, err
		}
		if len(events) == 0 {
			if in <= 0 {
				return time.Time{}, nil
			}
			return asked.Add(in), nil
		}
		for _, e := range events {
			if ctx.Err() != nil {
				return time.Time{}, nil // stopping: the events claimed and not tried wait out their lease
			}
			if _, err := d.attempt(ctx, e); err != nil {
				return time.Time{}, err
			}
		}
	}
}
