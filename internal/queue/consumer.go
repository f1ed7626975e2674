package queue

import (
	"context"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/coursedl/worker/internal/loop"
	"github.com/coursedl/worker/internal/metrics"
	"github.com/coursedl/worker/internal/rdb"
	"github.com/coursedl/worker/internal/trouble"
)

// ConsumerParams configure a Consumer.
type ConsumerParams struct {
	Redis         *rdb.Client
	Handler       Handler
	Concurrency   int
	Block         time.Duration    // BLMOVE block; default 1 s, which bounds a stop unless Redis has BlockOn
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
	// Intake, if set, says when this worker may take jobs: no job is fetched
	// while it is closed (paused, staging disk low); running tasks go on.
	Intake Intake
}

// Intake is the gate of a Consumer's fetches; *intake.Intake is one.
type Intake interface {
	// Wait returns when intake is open, or ctx's error when ctx ends first.
	Wait(ctx context.Context) error
	// Closed says why intake is closed, nil while it is open.
	Closed() error
}

// Consumer takes jobs with Fetch and runs up to Concurrency of them at once. It
// fetches only when a slot is free, so it never holds a job it cannot start.
//
// A busy queue costs at most one round trip a job: a task that ends with Ack
// keeps its slot and acknowledges its job and takes the next in one call
// (AckFetch, whose calls from slots ending together share a transaction), and
// only a slot whose AckFetch found the queue empty goes back to the fetch loop,
// the one caller of the blocking Fetch.
type Consumer struct {
	ConsumerParams
	held held // jobs taken and not yet settled
}

// NewConsumer returns a Consumer with the defaults applied.
func NewConsumer(p ConsumerParams) *Consumer {
	if p.Block <= 0 {
		p.Block = time.Second
	}
	if p.Concurrency <= 0 {
		p.Concurrency = 1
	}
	if p.OrphanCheck <= 0 {
		p.OrphanCheck = DefaultOrphanCheck
	}
	if p.Log == nil {
		p.Log = zap.NewNop()
	}
	return &Consumer{ConsumerParams: p}
}

// Run fetches and runs jobs until ctx ends. Then it stops fetching at once, lets
// running tasks finish for ShutdownGrace, cancels the rest (their handlers requeue
// them) and returns when every task has been acknowledged, requeued or
// dead-lettered.
func (c *Consumer) Run(ctx context.Context) error {
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
	c.fetchLoop(ctx, taskCtx, slots, &running)
	c.drain(slots, &running, cancelTasks)
	return nil
}

// fetchLoop takes a job whenever a slot is free and runs it on a goroutine of
// its own, until ctx ends.
func (c *Consumer) fetchLoop(ctx, taskCtx context.Context, slots chan struct{}, running *sync.WaitGroup) {
	tr := trouble.New(c.Log, "cannot fetch jobs; retrying with backoff", "fetching jobs again")
	backoff := fetchBackoffMin
	for ctx.Err() == nil {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			continue
		}
		if c.Intake != nil && c.Intake.Wait(ctx) != nil {
			<-slots
			continue
		}
		payload, err := c.Redis.Fetch(ctx, c.Block)
		if err != nil || payload == "" {
			<-slots
			if err != nil && ctx.Err() == nil {
				tr.Report(err)
				loop.Sleep(ctx, backoff)
				backoff = nextFetchBackoff(backoff, err)
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
			return
		}
		if c.closed() {
			// Taken by a fetch that was waiting when intake closed: give it
			// back for a worker that takes jobs.
			c.settle(taskCtx, payload, Result{Outcome: Requeue})
			<-slots
			continue
		}
		running.Go(func() {
			defer func() { <-slots }()
			for payload != "" {
				payload = c.next(ctx, taskCtx, payload, c.handle(taskCtx, payload))
			}
		})
	}
}

// drain waits for the running tasks, for ShutdownGrace at most; then it stops
// them (their jobs go back to the queue) and waits for them to end.
func (c *Consumer) drain(slots chan struct{}, running *sync.WaitGroup, cancelTasks context.CancelFunc) {
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
	if res.Outcome != Ack || ctx.Err() != nil || c.closed() {
		c.settle(taskCtx, payload, res)
		return ""
	}
	// Not cut short by a stop: a reply lost after the script ran would leave the
	// job taken in the processing list until the next start.
	next, err := c.Redis.AckFetch(context.WithoutCancel(taskCtx), payload)
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

// closed reports whether intake is closed: the slot takes no next job.
func (c *Consumer) closed() bool { return c.Intake != nil && c.Intake.Closed() != nil }

// settle records the outcome of a job in Redis.
//
// It settles even when the tasks' context was canceled: this is how a stopped
// task's job gets back to the queue. Redis may be away for a while: it keeps
// trying, but once the worker is stopping it gives up after settleGrace; the job
// then stays in the processing list and is recovered at the next start.
func (c *Consumer) settle(ctx context.Context, payload string, res Result) {
	// Settled, or left for the next start: either way no longer held.
	defer c.held.remove(payload)
	if res.Outcome == Retry {
		c.Metrics.Retry()
	}
	settle := context.WithoutCancel(ctx)
	var stopping <-chan time.Time
	for attempt := 0; ; attempt++ {
		err := c.record(settle, payload, res)
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

// record writes one outcome to Redis.
func (c *Consumer) record(ctx context.Context, payload string, res Result) error {
	switch res.Outcome {
	case Ack:
		return c.Redis.Ack(ctx, payload)
	case Requeue:
		return c.Redis.Requeue(ctx, payload)
	case Retry:
		return c.Redis.Delay(ctx, payload, res.Delay)
	case DeadLetter:
		return c.Redis.DeadLetter(ctx, payload, res.Reason, time.Now())
	}
	// A handler's bug: the job stays in the processing list, and the orphan
	// check gives it back to the queue.
	c.Log.Error("job not settled: unknown outcome", zap.Stringer("outcome", res.Outcome))
	return nil
}

// Back-off of the fetch loop while Redis does not answer.
const (
	fetchBackoffMin = 250 * time.Millisecond
	fetchBackoffMax = 10 * time.Second
)

// settleGrace bounds the settling of jobs once the worker is stopping.
const settleGrace = 10 * time.Second
