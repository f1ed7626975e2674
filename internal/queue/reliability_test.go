package queue

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap/zaptest"

	"github.com/coursedl/worker/internal/rdb"
	"github.com/coursedl/worker/internal/testutil"
)

func TestRecovererGivesBackDeadWorkersJobs(t *testing.T) {
	ctx := context.Background()
	rc := testutil.Redis(t)
	now := time.Now()
	dead := rdb.New(rc, rdb.Options{Queue: "q", Worker: "dead-1"})
	live := rdb.New(rc, rdb.Options{Queue: "q", Worker: "live-1"})
	me := rdb.New(rc, rdb.Options{Queue: "q", Worker: "me"})
	rc.LPush(ctx, "q", "a", "b", "c", "d")
	for _, f := range []struct {
		by   *rdb.Client
		want string
	}{{dead, "a"}, {dead, "b"}, {live, "c"}} {
		if p, err := f.by.Fetch(ctx, time.Second); p != f.want || err != nil {
			t.Fatalf("Fetch = %q, %v; want %q", p, err, f.want)
		}
	}
	rc.ZAdd(ctx, rdb.WorkersKey, redisZ(now.Add(-time.Minute), "dead-1"), redisZ(now, "live-1"))
	// An orphaned list without any heartbeat.
	rc.LPush(ctx, rdb.ProcessingKey("ghost"), "g")

	var mu sync.Mutex
	got := map[string]string{}
	r := NewRecoverer(RecovererParams{Redis: me, Lease: 30 * time.Second, Log: zaptest.NewLogger(t),
		OnRecovered: func(p, w string) { mu.Lock(); got[p] = w; mu.Unlock() }})
	n, err := r.Pass(ctx)
	if err != nil || n != 3 {
		t.Fatalf("recovered %d, %v; want 3", n, err)
	}
	if !reflect.DeepEqual(got, map[string]string{"a": "dead-1", "b": "dead-1", "g": "ghost"}) {
		t.Fatalf("recovered %v", got)
	}
	if l := rc.LLen(ctx, rdb.ProcessingKey("live-1")).Val(); l != 1 {
		t.Fatalf("a live worker lost its job: %d left", l)
	}
	if rc.ZScore(ctx, rdb.WorkersKey, "dead-1").Err() == nil {
		t.Fatal("dead worker still listed")
	}
	// a and b come back first, in their order; then d.
	var order []string
	for {
		p, _ := me.Fetch(ctx, 10*time.Millisecond)
		if p == "" {
			break
		}
		order = append(order, p)
	}
	pos := map[string]int{}
	for i, p := range order {
		pos[p] = i
	}
	if len(order) != 4 || pos["a"] > pos["b"] || pos["d"] != 3 {
		t.Fatalf("queue after recovery %v", order)
	}
}

func redisZ(t time.Time, member string) redis.Z {
	return redis.Z{Score: float64(t.UnixMilli()), Member: member}
}

func TestHeartbeatKeepsAliveAndClaimRefusesALiveOwner(t *testing.T) {
	ctx := context.Background()
	rc := testutil.Redis(t)
	h := NewHeartbeat(HeartbeatParams{Redis: rdb.New(rc, rdb.Options{Queue: "q", Worker: "w1"}),
		Concurrency: 2, Beat: 20 * time.Millisecond, Lease: time.Second, Log: zaptest.NewLogger(t)})
	if err := h.Claim(ctx); err != nil {
		t.Fatal(err)
	}
	// This process again (a restart in place) may claim its own id.
	if err := h.Claim(ctx); err != nil {
		t.Fatalf("reclaim by the same process: %v", err)
	}
	// Another process on another host beating under the same id: refused.
	rc.HSet(ctx, rdb.WorkerInfoPrefix+"w1", "host", "other-host", "token", "another-process")
	if err := h.Claim(ctx); !errors.Is(err, ErrIDInUse) {
		t.Fatalf("claim of an id in use: %v", err)
	}
	rc.HSet(ctx, rdb.WorkerInfoPrefix+"w1", "host", hostname(t), "pid", os.Getpid(), "token", h.Token())

	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- h.Run(rctx) }()
	first := rc.ZScore(ctx, rdb.WorkersKey, "w1").Val()
	testutil.Eventually(t, 2*time.Second, func() bool { return rc.ZScore(ctx, rdb.WorkersKey, "w1").Val() > first }, "heartbeat moves")
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("heartbeat Run: %v", err)
	}
	if err := h.Leave(ctx); err != nil {
		t.Fatal(err)
	}
	if rc.ZScore(ctx, rdb.WorkersKey, "w1").Err() == nil {
		t.Fatal("worker still listed after Leave")
	}
}

func hostname(t *testing.T) string {
	h, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestLock(t *testing.T) {
	ctx := context.Background()
	rc := testutil.Redis(t)
	locks := NewLocks(LocksParams{Redis: rdb.New(rc, rdb.Options{}), TTL: 300 * time.Millisecond, Log: zaptest.NewLogger(t)})
	lk, err := locks.Acquire(ctx, 7)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := locks.Acquire(ctx, 7); !errors.Is(err, ErrLocked) {
		t.Fatalf("second acquire: %v", err)
	}
	// Renewed while held: its TTL only falls between renewals, so a reading
	// above the one before is a renewal. Three of them take the lock past its
	// first TTL; without renewal it would be gone.
	last, renewals := rc.PTTL(ctx, rdb.LockKey(7)).Val(), 0
	testutil.Eventually(t, 5*time.Second, func() bool {
		ttl := rc.PTTL(ctx, rdb.LockKey(7)).Val()
		if ttl <= 0 {
			t.Fatalf("lock expired while held (PTTL %s)", ttl)
		}
		if ttl > last {
			renewals++
		}
		last = ttl
		return renewals >= 3
	}, "three renewals of the lock")
	if _, err := locks.Acquire(ctx, 7); !errors.Is(err, ErrLocked) {
		t.Fatalf("lock expired while held: %v", err)
	}
	// Taken over: the holder is told.
	rc.Set(ctx, rdb.LockKey(7), "someone-else", time.Minute)
	select {
	case <-lk.Lost():
	case <-time.After(3 * time.Second):
		t.Fatal("lost lock not noticed")
	}
	if err := lk.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if v := rc.Get(ctx, rdb.LockKey(7)).Val(); v != "someone-else" {
		t.Fatalf("release freed another owner's lock: %q", v)
	}
}

type handlerFunc func(ctx context.Context, payload string) Result

func (f handlerFunc) Handle(ctx context.Context, payload string) Result { return f(ctx, payload) }

func TestConsumerConcurrencyAndStop(t *testing.T) {
	ctx := context.Background()
	rc := testutil.Redis(t)
	r := rdb.New(rc, rdb.Options{Queue: "q", Worker: "w1"})
	for _, j := range []string{"1", "2", "3", "4", "5"} {
		rc.LPush(ctx, "q", j)
	}
	var running, most atomic.Int32
	release := make(chan struct{})
	c := NewConsumer(ConsumerParams{Redis: r, Concurrency: 2, ShutdownGrace: 100 * time.Millisecond, Log: zaptest.NewLogger(t),
		Handler: handlerFunc(func(ctx context.Context, p string) Result {
			n := running.Add(1)
			defer running.Add(-1)
			for {
				if m := most.Load(); n <= m || most.CompareAndSwap(m, n) {
					break
				}
			}
			select {
			case <-release:
				return Result{Outcome: Ack}
			case <-ctx.Done():
				return Result{Outcome: Requeue}
			}
		})})
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- c.Run(rctx) }()
	testutil.Eventually(t, 3*time.Second, func() bool { return running.Load() == 2 }, "two tasks running")
	if n := rc.LLen(ctx, "q").Val(); n != 3 {
		t.Fatalf("queue holds %d: the consumer took jobs it cannot run", n)
	}
	cancel() // stop: the running two outlive the grace and are requeued
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("consumer Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("consumer did not stop")
	}
	if most.Load() != 2 {
		t.Fatalf("%d ran at once, want 2", most.Load())
	}
	if n := rc.LLen(ctx, "q").Val(); n != 5 {
		t.Fatalf("queue holds %d after stop, want all 5 back", n)
	}
	if n := rc.LLen(ctx, rdb.ProcessingKey("w1")).Val(); n != 0 {
		t.Fatalf("processing holds %d after stop", n)
	}
}

func TestConsumerPanicDeadLetters(t *testing.T) {
	ctx := context.Background()
	rc := testutil.Redis(t)
	r := rdb.New(rc, rdb.Options{Queue: "q", Worker: "w1"})
	rc.LPush(ctx, "q", "boom")
	c := NewConsumer(ConsumerParams{Redis: r, Concurrency: 1, Log: zaptest.NewLogger(t),
		Handler: handlerFunc(func(context.Context, string) Result { panic("bad") })})
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- c.Run(rctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("consumer Run: %v", err)
		}
	}()
	testutil.Eventually(t, 3*time.Second, func() bool { return rc.LLen(ctx, rdb.DeadKey).Val() == 1 }, "panicking job dead-lettered")
	raw, err := r.DeadList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var d rdb.Dead
	if err := json.Unmarshal([]byte(raw[0]), &d); err != nil {
		t.Fatal(err)
	}
	if d.Payload != "boom" || d.Reason != "internal error: bad" {
		t.Fatalf("dead = %+v", d)
	}
}

// commandCounter counts the commands a client sends that succeed, by name,
// alone or in a pipeline or transaction (an LMOVE that found its list empty does
// not count), and calls after (when set) with the name of each command sent
// alone, or of the last one of a pipeline ("exec" for a transaction), once it
// has been answered.
type commandCounter struct {
	mu    sync.Mutex
	n     map[string]int
	after func(name string)
}

func (c *commandCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (c *commandCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		c.seen(cmds...)
		return err
	}
}

func (c *commandCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		c.seen(cmd)
		return err
	}
}

func (c *commandCounter) seen(cmds ...redis.Cmder) {
	c.mu.Lock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	for _, cmd := range cmds {
		if cmd.Err() == nil {
			c.n[cmd.Name()]++
		}
	}
	after := c.after
	c.mu.Unlock()
	if after != nil && len(cmds) > 0 {
		after(cmds[len(cmds)-1].Name())
	}
}

func (c *commandCounter) count(name string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[name]
}

// A busy queue costs one round trip a job: a task that ends with Ack takes the
// next job as it acknowledges its own, and the blocking fetch is used once.
func TestConsumerChainsAckedJobs(t *testing.T) {
	ctx := context.Background()
	rc := testutil.Redis(t)
	counter := &commandCounter{}
	rc.AddHook(counter)
	r := rdb.New(rc, rdb.Options{Queue: "q", Worker: "w1"})
	for _, j := range []string{"1", "2", "3", "4", "5"} {
		rc.LPush(ctx, "q", j)
	}
	var mu sync.Mutex
	var order []string
	var blmoves, lmoves int
	allDone := make(chan struct{})
	c := NewConsumer(ConsumerParams{Redis: r, Concurrency: 1, Log: zaptest.NewLogger(t),
		Handler: handlerFunc(func(_ context.Context, p string) Result {
			if n := rc.LLen(ctx, rdb.ProcessingKey("w1")).Val(); n != 1 {
				t.Errorf("job %s: %d jobs in hand, want 1", p, n)
			}
			mu.Lock()
			defer mu.Unlock()
			order = append(order, p)
			if p == "5" {
				blmoves, lmoves = counter.count("blmove"), counter.count("lmove")
				close(allDone)
			}
			return Result{Outcome: Ack}
		})})
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- c.Run(rctx) }()
	select {
	case <-allDone:
	case <-time.After(10 * time.Second):
		t.Fatal("the five jobs were not handled")
	}
	testutil.Eventually(t, 3*time.Second, func() bool { return rc.LLen(ctx, rdb.ProcessingKey("w1")).Val() == 0 }, "last job acknowledged")
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("consumer Run: %v", err)
	}
	if !reflect.DeepEqual(order, []string{"1", "2", "3", "4", "5"}) {
		t.Fatalf("order %v, want FIFO", order)
	}
	if blmoves != 1 || lmoves != 4 {
		t.Fatalf("before the fifth job: %d BLMOVE and %d ack-and-fetch calls, want 1 and 4", blmoves, lmoves)
	}
}

// Once the stop has begun, an acknowledged job's slot takes no other.
func TestConsumerStopEndsChain(t *testing.T) {
	ctx := context.Background()
	rc := testutil.Redis(t)
	r := rdb.New(rc, rdb.Options{Queue: "q", Worker: "w1"})
	for _, j := range []string{"1", "2", "3", "4", "5"} {
		rc.LPush(ctx, "q", j)
	}
	rctx, cancel := context.WithCancel(ctx)
	var handled []string
	c := NewConsumer(ConsumerParams{Redis: r, Concurrency: 1, Log: zaptest.NewLogger(t),
		Handler: handlerFunc(func(_ context.Context, p string) Result {
			handled = append(handled, p)
			if p == "2" {
				cancel() // the stop begins while job 2 runs
			}
			return Result{Outcome: Ack}
		})})
	if err := c.Run(rctx); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(handled, []string{"1", "2"}) {
		t.Fatalf("handled %v, want 1 and 2", handled)
	}
	if l := rc.LRange(ctx, "q", 0, -1).Val(); !reflect.DeepEqual(l, []string{"5", "4", "3"}) {
		t.Fatalf("queue after stop = %v, want 3, 4, 5 left in order", l)
	}
	if n := rc.LLen(ctx, rdb.ProcessingKey("w1")).Val(); n != 0 {
		t.Fatalf("processing holds %d after stop", n)
	}
}

// A job taken by AckFetch just as the stop begins goes back to the head of the
// queue without being run.
func TestConsumerRequeuesJobTakenAsStopBegins(t *testing.T) {
	ctx := context.Background()
	rc := testutil.Redis(t)
	rctx, cancel := context.WithCancel(ctx)
	rc.AddHook(&commandCounter{after: func(name string) {
		if name == "exec" {
			cancel() // the stop begins while AckFetch's reply is on its way
		}
	}})
	r := rdb.New(rc, rdb.Options{Queue: "q", Worker: "w1"})
	for _, j := range []string{"1", "2", "3"} {
		rc.LPush(ctx, "q", j)
	}
	var handled []string
	c := NewConsumer(ConsumerParams{Redis: r, Concurrency: 1, Log: zaptest.NewLogger(t),
		Handler: handlerFunc(func(_ context.Context, p string) Result {
			handled = append(handled, p)
			return Result{Outcome: Ack}
		})})
	if err := c.Run(rctx); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(handled, []string{"1"}) {
		t.Fatalf("handled %v, want only 1", handled)
	}
	if l := rc.LRange(ctx, "q", 0, -1).Val(); !reflect.DeepEqual(l, []string{"3", "2"}) {
		t.Fatalf("queue after stop = %v, want 2 back at the head, then 3", l)
	}
	if n := rc.LLen(ctx, rdb.ProcessingKey("w1")).Val(); n != 0 {
		t.Fatalf("processing holds %d after stop", n)
	}
}

// The scheduler sleeps until the next delayed job is due, not a fixed tick: with
// Every an hour, a job delayed before it runs and one delayed (and announced by
// Wake) while it sleeps both come back when due.
func TestSchedulerWaitsForTheNextDueJob(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rc := testutil.Redis(t)
	r := rdb.New(rc, rdb.Options{Queue: "q", Worker: "w1"})
	rc.LPush(ctx, "q", "first", "second")
	first, _ := r.Fetch(ctx, time.Second)
	if err := r.Delay(ctx, first, 300*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	s := NewScheduler(SchedulerParams{Redis: r, Every: time.Hour, Log: zaptest.NewLogger(t)})
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Run(ctx) }()
	defer func() { cancel(); <-done }()
	testutil.Eventually(t, 5*time.Second, func() bool { return rc.LLen(ctx, "q").Val() == 2 }, "first job back when due")

	second, _ := r.Fetch(ctx, time.Second)
	if second != "first" {
		t.Fatalf("fetched %q, want the promoted job", second)
	}
	if err := r.Delay(ctx, second, 300*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	s.Wake()
	testutil.Eventually(t, 5*time.Second, func() bool { return rc.LLen(ctx, "q").Val() == 2 }, "job delayed during the sleep back when due")
	if n := rc.ZCard(ctx, rdb.DelayedKey).Val(); n != 0 {
		t.Fatalf("%d jobs left delayed", n)
	}
}
