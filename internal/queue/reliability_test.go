package queue

import (
	"context"
	"crypto/rand"
	"errors"
	"os"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap/zaptest"

	"github.com/coursedl/worker/internal/testutil"
)

func TestRecovererGivesBackDeadWorkersJobs(t *testing.T) {
	ctx := context.Background()
	rdb := testutil.Redis(t)
	now := time.Now()
	dead := New(rdb, "q", "dead-1")
	live := New(rdb, "q", "live-1")
	rdb.LPush(ctx, "q", "a", "b", "c", "d")
	dead.Fetch(ctx, time.Second) // a
	dead.Fetch(ctx, time.Second) // b
	live.Fetch(ctx, time.Second) // c
	rdb.ZAdd(ctx, WorkersKey, redisZ(now.Add(-time.Minute), "dead-1"), redisZ(now, "live-1"))
	// An orphaned list without any heartbeat.
	rdb.LPush(ctx, ProcessingKey("ghost"), "g")

	var mu sync.Mutex
	got := map[string]string{}
	r := &Recoverer{RDB: rdb, Queue: "q", Self: "me", Lease: 30 * time.Second, Log: zaptest.NewLogger(t),
		OnRecovered: func(p, w string) { mu.Lock(); got[p] = w; mu.Unlock() }}
	n, err := r.Pass(ctx)
	if err != nil || n != 3 {
		t.Fatalf("recovered %d, %v; want 3", n, err)
	}
	if !reflect.DeepEqual(got, map[string]string{"a": "dead-1", "b": "dead-1", "g": "ghost"}) {
		t.Fatalf("recovered %v", got)
	}
	if l := rdb.LLen(ctx, ProcessingKey("live-1")).Val(); l != 1 {
		t.Fatalf("a live worker lost its job: %d left", l)
	}
	if rdb.ZScore(ctx, WorkersKey, "dead-1").Err() == nil {
		t.Fatal("dead worker still listed")
	}
	// a and b come back first, in their order; then d.
	var order []string
	for {
		p, _ := New(rdb, "q", "me").Fetch(ctx, 10*time.Millisecond)
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

func TestHeartbeatKeepsAliveAndClaimRefusesALiveOwner(t *testing.T) {
	ctx := context.Background()
	rdb := testutil.Redis(t)
	h := &Heartbeat{RDB: rdb, WorkerID: "w1", Concurrency: 2, Beat: 20 * time.Millisecond, Lease: time.Second, Log: zaptest.NewLogger(t)}
	if err := h.Claim(ctx); err != nil {
		t.Fatal(err)
	}
	// This process again (a restart in place) may claim its own id.
	if err := h.Claim(ctx); err != nil {
		t.Fatalf("reclaim by the same process: %v", err)
	}
	// Another host beating under the same id: refused.
	rdb.HSet(ctx, WorkerInfoPrefix+"w1", "host", "other-host")
	if err := h.Claim(ctx); !errors.Is(err, ErrIDInUse) {
		t.Fatalf("claim of an id in use: %v", err)
	}
	rdb.HSet(ctx, WorkerInfoPrefix+"w1", "host", hostname(t), "pid", os.Getpid())

	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { h.Run(rctx); close(done) }()
	first := rdb.ZScore(ctx, WorkersKey, "w1").Val()
	testutil.Eventually(t, 2*time.Second, func() bool { return rdb.ZScore(ctx, WorkersKey, "w1").Val() > first }, "heartbeat moves")
	cancel()
	<-done
	if err := h.Leave(ctx); err != nil {
		t.Fatal(err)
	}
	if rdb.ZScore(ctx, WorkersKey, "w1").Err() == nil {
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
	rdb := testutil.Redis(t)
	locks := &Locks{RDB: rdb, TTL: 300 * time.Millisecond, Log: zaptest.NewLogger(t)}
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
	last, renewals := rdb.PTTL(ctx, LockPrefix+"7").Val(), 0
	testutil.Eventually(t, 5*time.Second, func() bool {
		ttl := rdb.PTTL(ctx, LockPrefix+"7").Val()
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
	rdb.Set(ctx, LockPrefix+"7", "someone-else", time.Minute)
	select {
	case <-lk.Lost():
	case <-time.After(3 * time.Second):
		t.Fatal("lost lock not noticed")
	}
	if err := lk.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if v := rdb.Get(ctx, LockPrefix+"7").Val(); v != "someone-else" {
		t.Fatalf("release freed another owner's lock: %q", v)
	}
}

func TestDelayAndScheduler(t *testing.T) {
	ctx := context.Background()
	rdb := testutil.Redis(t)
	q := New(rdb, "q", "w1")
	rdb.LPush(ctx, "q", "job", "next")
	p, _ := q.Fetch(ctx, time.Second)
	if err := q.Delay(ctx, p, time.Now().Add(200*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if rdb.LLen(ctx, q.Processing()).Val() != 0 || rdb.ZCard(ctx, DelayedKey).Val() != 1 {
		t.Fatal("delay did not move the job")
	}
	s := &Scheduler{RDB: rdb, Queue: "q", Log: zaptest.NewLogger(t)}
	if n, _, _ := s.promote(ctx); n != 0 {
		t.Fatal("promoted before due")
	}
	testutil.Eventually(t, 3*time.Second, func() bool { n, _, _ := s.promote(ctx); return n == 1 }, "promoted when due")
	if p, _ := q.Fetch(ctx, time.Second); p != "job" {
		t.Fatalf("next = %q, want the retried job first", p)
	}
	if n, _ := q.NextAttempt(ctx, 9); n != 1 {
		t.Fatal(n)
	}
	if n, _ := q.NextAttempt(ctx, 9); n != 2 {
		t.Fatal(n)
	}
	q.ForgetAttempts(ctx, 9)
	if n, _ := q.Attempts(ctx, 9); n != 0 {
		t.Fatal(n)
	}
}

type handlerFunc func(ctx context.Context, payload string) Result

func (f handlerFunc) Handle(ctx context.Context, payload string) Result { return f(ctx, payload) }

func TestConsumerConcurrencyAndStop(t *testing.T) {
	ctx := context.Background()
	rdb := testutil.Redis(t)
	q := New(rdb, "q", "w1")
	for _, j := range []string{"1", "2", "3", "4", "5"} {
		rdb.LPush(ctx, "q", j)
	}
	var running, most atomic.Int32
	release := make(chan struct{})
	c := &Consumer{Queue: q, Concurrency: 2, ShutdownGrace: 100 * time.Millisecond, Log: zaptest.NewLogger(t),
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
		})}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- c.Run(rctx) }()
	testutil.Eventually(t, 3*time.Second, func() bool { return running.Load() == 2 }, "two tasks running")
	if n := rdb.LLen(ctx, "q").Val(); n != 3 {
		t.Fatalf("queue holds %d: the consumer took jobs it cannot run", n)
	}
	cancel() // stop: the running two outlive the grace and are requeued
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("consumer did not stop")
	}
	if most.Load() != 2 {
		t.Fatalf("%d ran at once, want 2", most.Load())
	}
	if n := rdb.LLen(ctx, "q").Val(); n != 5 {
		t.Fatalf("queue holds %d after stop, want all 5 back", n)
	}
	if n := rdb.LLen(ctx, q.Processing()).Val(); n != 0 {
		t.Fatalf("processing holds %d after stop", n)
	}
}

func TestConsumerPanicDeadLetters(t *testing.T) {
	ctx := context.Background()
	rdb := testutil.Redis(t)
	q := New(rdb, "q", "w1")
	rdb.LPush(ctx, "q", "boom")
	c := &Consumer{Queue: q, Concurrency: 1, Log: zaptest.NewLogger(t),
		Handler: handlerFunc(func(context.Context, string) Result { panic("bad") })}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go c.Run(rctx)
	testutil.Eventually(t, 3*time.Second, func() bool { return rdb.LLen(ctx, DeadKey).Val() == 1 }, "panicking job dead-lettered")
	d, _ := DeadEntries(ctx, rdb, 1)
	if d[0].Payload != "boom" || d[0].Reason != "internal error: bad" {
		t.Fatalf("dead = %+v", d)
	}
}

func TestFreeLocksOfDeadOwner(t *testing.T) {
	ctx := context.Background()
	rdb := testutil.Redis(t)
	dead := &Locks{RDB: rdb, Owner: "w1", Log: zaptest.NewLogger(t)}
	other := &Locks{RDB: rdb, Owner: "w10", Log: zaptest.NewLogger(t)}
	if _, err := dead.Acquire(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Acquire(ctx, 2); err != nil {
		t.Fatal(err)
	}
	n, err := FreeLocks(ctx, rdb, "w1")
	if err != nil || n != 1 {
		t.Fatalf("freed %d, %v", n, err)
	}
	if _, err := other.Acquire(ctx, 1); err != nil {
		t.Fatalf("lock of the dead owner still held: %v", err)
	}
	if _, err := dead.Acquire(ctx, 2); !errors.Is(err, ErrLocked) {
		t.Fatalf("another owner's lock freed (w1 is a prefix of w10): %v", err)
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
	rdb := testutil.Redis(t)
	counter := &commandCounter{}
	rdb.AddHook(counter)
	q := New(rdb, "q", "w1")
	for _, j := range []string{"1", "2", "3", "4", "5"} {
		rdb.LPush(ctx, "q", j)
	}
	var mu sync.Mutex
	var order []string
	var blmoves, lmoves int
	allDone := make(chan struct{})
	c := &Consumer{Queue: q, Concurrency: 1, Log: zaptest.NewLogger(t),
		Handler: handlerFunc(func(_ context.Context, p string) Result {
			if n := rdb.LLen(ctx, q.Processing()).Val(); n != 1 {
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
		})}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- c.Run(rctx) }()
	select {
	case <-allDone:
	case <-time.After(10 * time.Second):
		t.Fatal("the five jobs were not handled")
	}
	testutil.Eventually(t, 3*time.Second, func() bool { return rdb.LLen(ctx, q.Processing()).Val() == 0 }, "last job acknowledged")
	cancel()
	<-done
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
	rdb := testutil.Redis(t)
	q := New(rdb, "q", "w1")
	for _, j := range []string{"1", "2", "3", "4", "5"} {
		rdb.LPush(ctx, "q", j)
	}
	rctx, cancel := context.WithCancel(ctx)
	var handled []string
	c := &Consumer{Queue: q, Concurrency: 1, Log: zaptest.NewLogger(t),
		Handler: handlerFunc(func(_ context.Context, p string) Result {
			handled = append(handled, p)
			if p == "2" {
				cancel() // the stop begins while job 2 runs
			}
			return Result{Outcome: Ack}
		})}
	if err := c.Run(rctx); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(handled, []string{"1", "2"}) {
		t.Fatalf("handled %v, want 1 and 2", handled)
	}
	if l := rdb.LRange(ctx, "q", 0, -1).Val(); !reflect.DeepEqual(l, []string{"5", "4", "3"}) {
		t.Fatalf("queue after stop = %v, want 3, 4, 5 left in order", l)
	}
	if n := rdb.LLen(ctx, q.Processing()).Val(); n != 0 {
		t.Fatalf("processing holds %d after stop", n)
	}
}

// A job taken by AckFetch just as the stop begins goes back to the head of the
// queue without being run.
func TestConsumerRequeuesJobTakenAsStopBegins(t *testing.T) {
	ctx := context.Background()
	rdb := testutil.Redis(t)
	rctx, cancel := context.WithCancel(ctx)
	rdb.AddHook(&commandCounter{after: func(name string) {
		if name == "exec" {
			cancel() // the stop begins while AckFetch's reply is on its way
		}
	}})
	q := New(rdb, "q", "w1")
	for _, j := range []string{"1", "2", "3"} {
		rdb.LPush(ctx, "q", j)
	}
	var handled []string
	c := &Consumer{Queue: q, Concurrency: 1, Log: zaptest.NewLogger(t),
		Handler: handlerFunc(func(_ context.Context, p string) Result {
			handled = append(handled, p)
			return Result{Outcome: Ack}
		})}
	if err := c.Run(rctx); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(handled, []string{"1"}) {
		t.Fatalf("handled %v, want only 1", handled)
	}
	if l := rdb.LRange(ctx, "q", 0, -1).Val(); !reflect.DeepEqual(l, []string{"3", "2"}) {
		t.Fatalf("queue after stop = %v, want 2 back at the head, then 3", l)
	}
	if n := rdb.LLen(ctx, q.Processing()).Val(); n != 0 {
		t.Fatalf("processing holds %d after stop", n)
	}
}

// The scheduler sleeps until the next delayed job is due, not a fixed tick: with
// Every an hour, a job delayed before it runs and one delayed (and announced by
// Wake) while it sleeps both come back when due.
func TestSchedulerWaitsForTheNextDueJob(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rdb := testutil.Redis(t)
	q := New(rdb, "q", "w1")
	rdb.LPush(ctx, "q", "first", "second")
	first, _ := q.Fetch(ctx, time.Second)
	if err := q.Delay(ctx, first, time.Now().Add(300*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	s := &Scheduler{RDB: rdb, Queue: "q", Every: time.Hour, Log: zaptest.NewLogger(t)}
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Run(ctx) }()
	defer func() { cancel(); <-done }()
	testutil.Eventually(t, 5*time.Second, func() bool { return rdb.LLen(ctx, "q").Val() == 2 }, "first job back when due")

	second, _ := q.Fetch(ctx, time.Second)
	if second != "first" {
		t.Fatalf("fetched %q, want the promoted job", second)
	}
	if err := q.Delay(ctx, second, time.Now().Add(300*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	s.Wake()
	testutil.Eventually(t, 5*time.Second, func() bool { return rdb.LLen(ctx, "q").Val() == 2 }, "job delayed during the sleep back when due")
	if n := rdb.ZCard(ctx, DelayedKey).Val(); n != 0 {
		t.Fatalf("%d jobs left delayed", n)
	}
}

// With BlockOn, a stop cuts a long blocking fetch short, before it began or
// while it waits, and the fetch it cut takes no job: one pushed after it stays
// in the queue. A job pushed during the wait is fetched as without BlockOn.
func TestBlockingFetchStopsAtOnce(t *testing.T) {
	rdb := testutil.Redis(t)
	q := New(rdb, "q", "w1")
	fetchRDB := q.BlockOn(rdb.Options())
	defer fetchRDB.Close()

	wait := fetchAsync(t, q, context.Background())
	waitBlocked(t, rdb, q, true)
	rdb.LPush(context.Background(), "q", "job")
	if p, err := wait(); p != "job" || err != nil {
		t.Fatalf("Fetch = %q, %v; want the job pushed during the wait", p, err)
	}

	for _, when := range []string{"during", "before"} {
		ctx, cancel := context.WithCancel(context.Background())
		if when == "before" {
			cancel()
		}
		wait := fetchAsync(t, q, ctx)
		if when == "during" {
			waitBlocked(t, rdb, q, true)
			cancel()
		}
		p, err := wait()
		cancel()
		if p != "" || err != nil {
			t.Fatalf("stop %s the wait: Fetch = %q, %v; want nothing", when, p, err)
		}
	}
	// Fetch has returned, so Redis holds no BLMOVE of it that could take a job.
	waitBlocked(t, rdb, q, false)
	rdb.LPush(context.Background(), "q", "later")
	if n := rdb.LLen(context.Background(), "q").Val(); n != 1 {
		t.Fatalf("%d jobs in the queue, want the one pushed after the stop", n)
	}
	if n := rdb.LLen(context.Background(), q.Processing()).Val(); n != 1 {
		t.Fatalf("%d jobs in processing, want only the one fetched", n)
	}
}

// fetchAsync runs a 30 s Fetch in the background; the function it returns
// gives its result, failing the test if it takes more than 15 s.
func fetchAsync(t *testing.T, q *Client, ctx context.Context) func() (string, error) {
	type result struct {
		payload string
		err     error
	}
	done := make(chan result, 1)
	go func() {
		p, err := q.Fetch(ctx, 30*time.Second)
		done <- result{p, err}
	}()
	return func() (string, error) {
		t.Helper()
		select {
		case r := <-done:
			return r.payload, r.err
		case <-time.After(15 * time.Second):
			t.Fatal("Fetch did not return within 15 s of its 30 s block")
			return "", nil
		}
	}
}

// waitBlocked waits until Redis says q's fetch connection is (or is not)
// blocked in a BLMOVE.
func waitBlocked(t *testing.T, rdb *redis.Client, q *Client, blocked bool) {
	t.Helper()
	testutil.Eventually(t, 10*time.Second, func() bool {
		id := q.blocking.id.Load()
		if id == 0 {
			return false
		}
		info, err := rdb.Do(context.Background(), "CLIENT", "LIST", "ID", id).Text()
		// flags=b: blocked now (cmd= names the last command, waiting or not).
		return err == nil && strings.Contains(info, " flags=b ") == blocked
	}, "fetch connection blocked: want %v", blocked)
}

// A Redis user without the CLIENT commands (an ACL) still fetches through
// BlockOn; only its stops wait for the block to run out.
func TestBlockingFetchWithoutClientCommands(t *testing.T) {
	ctx := context.Background()
	rdb := testutil.Redis(t)
	user := "fetch-" + strings.ToLower(rand.Text()[:8])
	if err := rdb.Do(ctx, "ACL", "SETUSER", user, "on", ">pw", "~*", "&*", "+@all", "-client").Err(); err != nil {
		t.Fatal(err)
	}
	defer rdb.Do(ctx, "ACL", "DELUSER", user)
	opts := *rdb.Options()
	opts.Username, opts.Password = user, "pw"
	q := New(rdb, "q", "w1")
	fetchRDB := q.BlockOn(&opts)
	defer fetchRDB.Close()
	if err := fetchRDB.ClientID(ctx).Err(); err == nil {
		t.Fatal("the restricted user may run CLIENT ID: the test proves nothing")
	}
	rdb.LPush(ctx, "q", "job")
	if p, err := q.Fetch(ctx, time.Second); p != "job" || err != nil {
		t.Fatalf("Fetch = %q, %v; want the job", p, err)
	}
	stopped, cancel := context.WithCancel(ctx)
	cancel()
	if p, err := q.Fetch(stopped, time.Second); p != "" || err != nil {
		t.Fatalf("stopped Fetch = %q, %v; want nothing once the block ran out", p, err)
	}
}
