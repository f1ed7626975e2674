package progress

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"go.uber.org/zap"
)

// DefaultMinInterval is a TaskPublisher's least time between two events: at most 4
// events a second.
const DefaultMinInterval = 250 * time.Millisecond

// TaskPublisher publishes the events of one task, throttled, from a goroutine of its
// own, so that Update and Stage never wait for Redis.
//
// An update that comes within MinInterval of the last event sent is kept as pending
// and sent when the interval has passed; a newer one replaces it, so the latest
// update is always sent and never overtaken by an older one. An event whose stage
// differs from the previous one's, and every Stage event, is sent at once and never
// replaced (a pending update of the stage before goes just ahead of it). A failing
// publish is logged when the error changes, not for every event.
//
// Finish or Close must be called when the task ends: they flush what is pending and
// stop the goroutine. Only one TaskPublisher should exist for a task at a time.
type TaskPublisher struct {
	// MinInterval is the least time between two throttled events (DefaultMinInterval).
	// Set it before the first Update.
	MinInterval time.Duration

	p   *Publisher
	id  int64
	log *zap.Logger

	wake     chan struct{} // one buffered token: there is something to send
	stop     chan struct{} // closed by Close
	stopOnce sync.Once
	done     chan struct{} // closed when run returns

	mu         sync.Mutex
	queue      []Event // sent in order, without throttling
	pending    Event   // the latest throttled update, when hasPending
	hasPending bool
	stage      string // stage of the latest event accepted
	closed     bool

	// used only by run's goroutine
	lastSent time.Time
	lastErr  string // errClass of the last failure, "" after a success
}

// Task returns a throttled publisher for one task and starts its goroutine; call
// Finish or Close when the task ends.
func (p *Publisher) Task(taskID int64) *TaskPublisher {
	t := &TaskPublisher{
		MinInterval: DefaultMinInterval,
		p:           p,
		id:          taskID,
		log:         p.log.With(zap.Int64("task_id", taskID)),
		wake:        make(chan struct{}, 1),
		stop:        make(chan struct{}),
		done:        make(chan struct{}),
	}
	go t.run()
	return t
}

// Update publishes what a parser read, for a task in stage: the percent when known,
// the speed and the ETA when not empty. It does not wait for Redis.
func (t *TaskPublisher) Update(stage string, u Update) {
	ev := Event{TaskID: t.id, Stage: stage, Speed: u.Speed, ETA: u.ETA, At: t.p.Now()}
	if u.HasPercent {
		pct := clampPercent(u.Percent)
		ev.Percent = &pct
	}
	t.offer(ev, false)
}

// Stage publishes an event with just the stage (e.g. waiting_enrollment, notifying),
// at once and in order with the task's other stage changes. It does not wait for
// Redis.
func (t *TaskPublisher) Stage(stage string) {
	t.offer(Event{TaskID: t.id, Stage: stage, At: t.p.Now()}, true)
}

// Finish ends the task's events: it flushes what is pending, stops the goroutine and
// then publishes the final event (stage completed, with percent 100, or failed)
// synchronously, which sets the hash to expire FinalTTL later. Nothing is published
// for the task after it; Update and Stage are ignored from then on. Finish may be
// called again to retry a final publish that failed. It waits at most the
// publisher's Timeout for Redis, less if ctx ends sooner.
func (t *TaskPublisher) Finish(ctx context.Context, stage string) error {
	if !IsFinal(stage) {
		return fmt.Errorf("finish progress of task %d: stage %q is not %q or %q", t.id, stage, StageCompleted, StageFailed)
	}
	t.Close()
	ev := Event{TaskID: t.id, Stage: stage, At: t.p.Now()}
	if stage == StageCompleted {
		done := 100.0
		ev.Percent = &done
	}
	ctx, cancel := context.WithTimeout(ctx, t.p.Timeout)
	defer cancel()
	return t.p.Publish(ctx, ev)
}

// Close flushes the pending events and stops the goroutine; later Update and Stage
// calls are ignored. It waits for the publish in progress, then at most the
// publisher's Timeout for all the rest. It is safe to call more than once, and after
// Finish.
func (t *TaskPublisher) Close() {
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
	t.stopOnce.Do(func() { close(t.stop) })
	<-t.done
}

// offer accepts an event: queued when force or when its stage differs from the
// previous event's, else kept as the pending update.
func (t *TaskPublisher) offer(ev Event, force bool) {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return
	}
	// A pending update that is replaced has its wake-up due already (run's timer,
	// or the drain under way takes the newer one): waking run for each line of a
	// chatty downloader would cost a goroutine switch a line.
	wake := force || ev.Stage != t.stage || !t.hasPending
	if force || ev.Stage != t.stage {
		if t.hasPending {
			t.queue = append(t.queue, t.pending)
			t.hasPending = false
		}
		t.queue = append(t.queue, ev)
	} else {
		t.pending, t.hasPending = ev, true
	}
	t.stage = ev.Stage
	t.mu.Unlock()
	if !wake {
		return
	}
	select {
	case t.wake <- struct{}{}:
	default: // a wake-up is already due
	}
}

// run sends the task's events until Close, then flushes what is left.
func (t *TaskPublisher) run() {
	defer close(t.done)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-t.stop:
			ctx, cancel := context.WithTimeout(context.Background(), t.p.Timeout)
			defer cancel()
			t.drain(ctx, true)
			return
		case <-t.wake:
		case <-timer.C:
		}
		if wait := t.drain(context.Background(), false); wait > 0 {
			timer.Reset(wait)
		}
	}
}

// drain sends the queued events, then the pending one if its time has come (or
// flush is set). It returns how long the pending event must still wait, or 0. Each
// publish gets the publisher's Timeout, and all of them end with ctx.
func (t *TaskPublisher) drain(ctx context.Context, flush bool) time.Duration {
	for {
		if !flush {
			select {
			case <-t.stop: // Close: run flushes the rest under one deadline
				return 0
			default:
			}
		}
		t.mu.Lock()
		var ev Event
		switch {
		case len(t.queue) > 0:
			ev = t.queue[0]
			t.queue[0] = Event{}
			t.queue = t.queue[1:]
		case t.hasPending:
			if !flush {
				if wait := time.Until(t.lastSent.Add(t.MinInterval)); wait > 0 {
					t.mu.Unlock()
					return wait
				}
			}
			ev, t.hasPending = t.pending, false
		default:
			t.mu.Unlock()
			return 0
		}
		t.mu.Unlock()
		t.lastSent = time.Now()
		t.send(ctx, ev)
	}
}

// send publishes one event and logs a failure when it differs from the last one.
func (t *TaskPublisher) send(ctx context.Context, ev Event) {
	ctx, cancel := context.WithTimeout(ctx, t.p.Timeout)
	defer cancel()
	err := t.p.Publish(ctx, ev)
	switch {
	case err == nil && t.lastErr != "":
		t.log.Info("progress publishing works again")
		t.lastErr = ""
	case err != nil && errClass(err) != t.lastErr:
		t.lastErr = errClass(err)
		t.log.Warn("cannot publish progress; later events may be lost", zap.String("stage", ev.Stage), zap.Error(err))
	}
}

// errClass names the kind of a publishing error, so that a failure is logged when it
// changes: not again for each new connection whose address the message holds.
func errClass(err error) string {
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() {
		return "timeout"
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return oe.Op + " " + oe.Net + ": " + oe.Err.Error()
	}
	return err.Error()
}
