package queue

import (
	"context"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/coursedl/worker/internal/metrics"
	"github.com/coursedl/worker/internal/trouble"
)

// Outcome says what becomes of a job once its handler has returned.
type Outcome int

// Outcomes of a handled job.
const (
	// Ack removes the job: its task has ended (completed, failed, or skipped).
	Ack Outcome = iota
	// Requeue puts the job back at the head of the queue at once: the worker is
	// stopping, or the task was interrupted.
	Requeue
	// Retry puts the job in the delayed set for Result.Delay: a transient
	// failure, or a task locked by another runner.
	Retry
	// DeadLetter moves the job to dl:dead with Result.Reason.
	DeadLetter
)

func (o Outcome) String() string {
	switch o {
	case Ack:
		return "ack"
	case Requeue:
		return "requeue"
	case Retry:
		return "retry"
	case DeadLetter:
		return "dead-letter"
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// Result is a handler's verdict on a job.
type Result struct {
	Outcome Outcome
	Reason  string        // for DeadLetter
	Delay   time.Duration // for Retry: how long the job waits in the delayed set
}

// Handler runs the task of one job. ctx is canceled when the worker stops waiting
// for running tasks; a handler then returns Requeue promptly.
type Handler interface {
	Handle(ctx context.Context, payload string) Result
}

// Consumer takes jobs with Fetch and runs up to Concurrency of them at once. It
// fetches only when a slot is free, so it never holds a job it cannot start.
//
// A busy queue costs one round trip a job: a task that ends with Ack keeps its
// slot and acknowledges its job and takes the next in one call (AckFetch), and
// only a slot whose AckFetch found the queue empty goes back to the fetch loop,
// the one caller of the blocking Fetch.
type Consumer struct {
	Queue         *Client
	Handler       Handler
	Concurrency   int
	Block         time.Duration    // BLMOVE block; default 1 s, which bounds a stop unless Queue has BlockOn
	ShutdownGrace time.Duration    // how long running tasks may finish after Run's ctx ends
	Metrics       *metrics.Metrics // tasks in flight, retries; nil records nothing
	Log           *zap.Logger
	// OrphanCheck is how often the processing list is searched for jobs the
	// consumer was never handed (see reclaim); default DefaultOrphanCheck.
	OrphanCheck time.Duration
	// OnReclaimed, if set, is called for each such job given back to the queue.
	OnReclaimed func(payload string)
	// OnDelayed, if set, is called after a job went to the delayed set
	// (Scheduler.Wake, so that it knows when the job is due).
	OnDelayed func()

	held held // jobs taken and not yet settled
}

// Run fetches and runs jobs until ctx ends. Then it stops fetching at once, lets
// running tasks finish for ShutdownGrace, cancels the rest (their handlers requeue
// them) and returns when every task has been acknowledged, requeued or
// dead-lettered.
func (c *Consumer) Run(ctx context.Context) error {
	if c.Block <= 0 {
		c.Block = time.Second
	}
	// Tasks run under their own context: the end of ctx stops fetching, not them.
	taskCtx, cancelTasks := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelTasks()
	reclaimCtx, stopReclaim := context.WithCancel(taskCtx)
	var reclaiming sync.WaitGroup
	reclaiming.Go(func() { c.reclaim(reclaimCtx) })
	defer reclaiming.Wait()
	defer stopReclaim()
	slots := make(chan struct{}, c.Concurrency)
	var running sync.WaitGroup
	tr := trouble.New(c.Log, "cannot fetch jobs; retrying with backoff", "fetching jobs again")
	backoff := fetchBackoffMin
	for ctx.Err() == nil {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			continue
		}
		payload, err := c.Queue.Fetch(ctx, c.Block)
		if err != nil || payload == "" {
			<-slots
			if err != nil && ctx.Err() == nil {
				tr.Report(err)
				sleep(ctx, backoff)
				backoff = min(2*backoff, fetchBackoffMax)
			}
			continue
		}
		c.held.add(payload)
		backoff = fetchBackoffMin
		tr.Report(nil)
		if ctx.Err() != nil {
			// Taken as the stop began: give it back untouched.
			c.settle(taskCtx, payload, Result{Outcome: Requeue})
			<-slots
			break
		}
		running.Add(1)
		go func() {
			defer running.Done()
			defer func() { <-slots }()
			for payload != "" {
				payload = c.next(ctx, taskCtx, payload, c.handle(taskCtx, payload))
			}
		}()
	}
	done := make(chan struct{})
	go func() { running.Wait(); close(done) }()
	if len(slots) > 0 {
		c.Log.Info("stopping: waiting for running tasks", zap.Int("running", len(slots)), zap.Duration("grace", c.ShutdownGrace))
	}
	select {
	case <-done:
	case <-time.After(c.ShutdownGrace):
		c.Log.Warn("shutdown grace over: stopping running tasks, their jobs go back to the queue")
		cancelTasks()
		<-done
	}
	return nil
}

// handle runs one job. A panic in the handler is turned into a dead letter:
// running the job again would panic again.
func (c *Consumer) handle(ctx context.Context, payload string) (res Result) {
	c.Metrics.InFlight(1)
	defer c.Metrics.InFlight(-1)
	defer func() {
		if r := recover(); r != nil {
			c.Log.Error("task panicked", zap.Any("panic", r), zap.Stack("stack"))
			res = Result{Outcome: DeadLetter, Reason: fmt.Sprintf("internal error: %v", r)}
		}
	}()
	return c.Handler.Handle(ctx, payload)
}

// next settles a handled job and returns the job its slot runs next, or "" when
// the slot goes back to the fetch loop. An acknowledged job is removed and the
// next one taken in one call while fetching goes on (ctx, the fetch loop's); any
// other outcome, a stop, an empty queue or a Redis error ends the chain.
func (c *Consumer) next(ctx, taskCtx context.Context, payload string, res Result) string {
	if res.Outcome != Ack || ctx.Err() != nil {
		c.settle(taskCtx, payload, res)
		return ""
	}
	// Not cut short by a stop: a reply lost after the script ran would leave the
	// job taken in the processing list until the next start.
	next, err := c.Queue.AckFetch(context.WithoutCancel(taskCtx), payload)
	if err != nil {
		c.settle(taskCtx, payload, res) // the ack alone, with settle's retries
		return ""
	}
	c.held.remove(payload)
	if next != "" {
		c.held.add(next)
	}
	if next != "" && ctx.Err() != nil {
		// Taken as the stop began: give it back untouched.
		c.settle(taskCtx, next, Result{Outcome: Requeue})
		return ""
	}
	return next
}

// settle records the outcome of a job in Redis.
func (c *Consumer) settle(ctx context.Context, payload string, res Result) {
	// Settled, or left for the next start: either way no longer held.
	defer c.held.remove(payload)
	// Settle even when the tasks' context was canceled: this is how a stopped
	// task's job gets back to the queue. Redis may be away for a while: keep trying,
	// but once the worker is stopping give up after settleGrace; the job then stays
	// in the processing list and is recovered at the next start.
	if res.Outcome == Retry {
		c.Metrics.Retry()
	}
	settle := context.WithoutCancel(ctx)
	var stopping <-chan time.Time
	for attempt := 0; ; attempt++ {
		var err error
		switch res.Outcome {
		case Ack:
			err = c.Queue.Ack(settle, payload)
		case Requeue:
			err = c.Queue.Requeue(settle, payload)
		case Retry:
			err = c.Queue.Delay(settle, payload, time.Now().Add(res.Delay))
		case DeadLetter:
			err = c.Queue.DeadLetter(settle, payload, res.Reason, time.Now())
		}
		if err == nil {
			if res.Outcome == Retry && c.OnDelayed != nil {
				c.OnDelayed()
			}
			return
		}
		if attempt == 0 {
			c.Log.Warn("cannot settle job; retrying", zap.Stringer("outcome", res.Outcome), zap.Error(err))
		}
		done := ctx.Done()
		if stopping == nil && ctx.Err() != nil {
			stopping = time.After(settleGrace)
		}
		if stopping != nil {
			done = nil // seen already; wait for the back-off below
		}
		select {
		case <-stopping:
			c.Log.Error("job left in the processing list; it is recovered at the next start",
				zap.Stringer("outcome", res.Outcome), zap.Error(err))
			return
		case <-done:
			stopping = time.After(settleGrace)
		case <-time.After(min(time.Duration(attempt+1)*500*time.Millisecond, 5*time.Second)):
		}
	}
}

// Back-off of the fetch loop while Redis does not answer.
const (
	fetchBackoffMin = 250 * time.Millisecond
	fetchBackoffMax = 10 * time.Second
)

// settleGrace bounds the settling of jobs once the worker is stopping.
const settleGrace = 10 * time.Second

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
