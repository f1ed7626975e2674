package queue

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/coursedl/worker/internal/rdb"
	"github.com/coursedl/worker/internal/trouble"
)

// ErrLocked says another runner holds the task's lock.
var ErrLocked = errors.New("task is being run by another worker")

// ErrLockLost says a held lock was found taken by another runner.
var ErrLockLost = errors.New("task lock taken by another runner")

// ErrFenced says a held lock could not be renewed in time: the task must stop
// before another worker may take the lock (see Lock).
var ErrFenced = errors.New("lock not renewed; task stopped (fenced)")

// DefaultLockTTL is how long a task lock lives without renewal.
const DefaultLockTTL = 60 * time.Second

// Liveness says until when this worker cannot be taken for dead by the
// others; *Heartbeat is one.
type Liveness interface {
	// Until is a time on this process's monotonic clock; zero says nothing.
	Until() time.Time
}

// LocksParams configure Locks.
type LocksParams struct {
	// Redis's Worker is written into each lock's value, so that the locks of a
	// dead worker can be freed with its jobs.
	Redis *rdb.Client
	TTL   time.Duration // default DefaultLockTTL; renewed every TTL/3
	Log   *zap.Logger
	// Alive, when set, fences locks by this worker's heartbeat too: a
	// recoverer that takes this worker for dead frees its locks with its jobs,
	// so a task must stop before that can happen.
	Alive Liveness
}

// Locks hands out per-task locks, so that a duplicate job, or a recovered one
// racing a slow worker, never runs a task twice at once.
//
// A lock that names this worker but that no task of this process holds is a
// leftover: its release failed while Redis was away, or an earlier process of
// this worker id held it. Acquire takes such a lock over instead of making the
// task wait for it to expire. Worker ids are unique among live processes
// (Heartbeat.Claim), so no other runner can be behind it.
type Locks struct {
	LocksParams
	mu     sync.Mutex
	held   map[int64]bool   // tasks whose lock this process holds
	tokens map[int64]string // their tokens, once taken (Restore)
}

// NewLocks returns Locks with the defaults applied.
func NewLocks(p LocksParams) *Locks {
	if p.TTL <= 0 {
		p.TTL = DefaultLockTTL
	}
	if p.Log == nil {
		p.Log = zap.NewNop()
	}
	return &Locks{LocksParams: p, held: map[int64]bool{}, tokens: map[int64]string{}}
}

// Lock is a held task lock, renewed every TTL/3 on its own goroutine. Lost is
// closed when the holder must stop the task, and Err says why:
//
//   - ErrLockLost: a renewal found another runner's token in the lock;
//   - ErrFenced: the lock was not renewed for TTL less a margin of TTL/6, or
//     the worker's heartbeat (Locks.Alive) is about to lapse. Both are
//     measured on this process's monotonic clock from when the last renewal
//     (or beat) that Redis took was sent, which is no later than Redis's own
//     clock started the TTL (or lease): Lost closes before any other worker
//     may take the lock, and the margin leaves the task's process tree time
//     to be stopped.
type Lock struct {
	taskID  int64
	token   string
	ttl     time.Duration
	redis   *rdb.Client
	alive   Liveness
	base    time.Time    // when the lock was asked for, on the monotonic clock
	renewed atomic.Int64 // ns after base at which the last renewal Redis took was sent
	lost    chan struct{}
	mu      sync.Mutex
	cause   error // why lost was closed
	stop    chan struct{}
	done    chan struct{}
	forget  func() // tells the Locks this process no longer holds it
}

// Acquire takes the lock of taskID, or returns ErrLocked. The lock is renewed on
// its own goroutine until Release.
func (l *Locks) Acquire(ctx context.Context, taskID int64) (*Lock, error) {
	if !l.hold(taskID) {
		return nil, ErrLocked
	}
	lk := &Lock{
		taskID: taskID,
		token:  l.Redis.LockToken(rdb.LockSuffix(rand.Text(), time.Now())),
		ttl:    l.TTL,
		redis:  l.Redis,
		alive:  l.Alive,
		base:   time.Now(),
		lost:   make(chan struct{}),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
		forget: func() { l.release(taskID) },
	}
	ok, err := l.Redis.AcquireLock(ctx, taskID, lk.token, l.TTL)
	if err != nil || !ok {
		lk.forget()
		if err == nil {
			err = ErrLocked
		}
		return nil, err
	}
	l.taken(taskID, lk.token)
	go lk.renew(l.Log.With(zap.Int64("task_id", taskID))) //nolint:gosec,contextcheck // G118, not under ctx: the renewal keeps the lock after Acquire returned, until Release
	return lk, nil
}

// hold notes that this process holds the lock of taskID; false when it does
// already.
func (l *Locks) hold(taskID int64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.held[taskID] {
		return false
	}
	l.held[taskID] = true
	return true
}

// Holds reports whether a task of this process holds the lock of taskID: the
// task is running here.
func (l *Locks) Holds(taskID int64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.held[taskID]
}

func (l *Locks) release(taskID int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.held, taskID)
	delete(l.tokens, taskID)
}

// Lost is closed when the holder must stop the task; Err says why.
func (lk *Lock) Lost() <-chan struct{} { return lk.lost }

// Err is nil while the lock is held, then ErrLockLost or ErrFenced once Lost
// is closed.
func (lk *Lock) Err() error {
	lk.mu.Lock()
	defer lk.mu.Unlock()
	return lk.cause
}

// lose closes Lost with cause, once.
func (lk *Lock) lose(cause error) {
	lk.mu.Lock()
	defer lk.mu.Unlock()
	if lk.cause == nil {
		lk.cause = cause
		close(lk.lost)
	}
}

// Confirm renews the lock in one round trip, so that a step that cannot be
// undone (an upload, the row's final write) starts only while the lock is
// known to be held. It returns nil when Redis took the renewal and the lock
// is not fenced; otherwise ErrLockLost, ErrFenced or Redis's error, and the
// step must not start.
func (lk *Lock) Confirm(ctx context.Context) error {
	if err := lk.Err(); err != nil {
		return err
	}
	if err := lk.renewOnce(ctx); err != nil {
		return fmt.Errorf("confirm lock of task %d: %w", lk.taskID, err)
	}
	if !time.Now().Before(lk.deadline()) {
		return fmt.Errorf("confirm lock of task %d: %w", lk.taskID, ErrFenced)
	}
	return nil
}

// renewOnce renews the lock; it closes Lost and returns ErrLockLost when
// another runner's token is there.
func (lk *Lock) renewOnce(ctx context.Context) error {
	sent := time.Since(lk.base)
	held, err := lk.redis.RenewLock(ctx, lk.taskID, lk.token, lk.ttl)
	switch {
	case err != nil:
		return err
	case !held:
		lk.lose(ErrLockLost)
		return ErrLockLost
	}
	for { // the latest send wins, should Confirm and the renewal cross
		old := lk.renewed.Load()
		if int64(sent) <= old || lk.renewed.CompareAndSwap(old, int64(sent)) {
			return nil
		}
	}
}

// deadline is when the task must have stopped: TTL less its margin after the
// last renewal Redis took was sent, or earlier when the worker's heartbeat is
// about to lapse.
func (lk *Lock) deadline() time.Time {
	d := lk.base.Add(time.Duration(lk.renewed.Load()) + lk.ttl - lk.ttl/6)
	if lk.alive != nil {
		if u := lk.alive.Until(); !u.IsZero() && u.Before(d) {
			d = u
		}
	}
	return d
}

// renew renews the lock every TTL/3 until Release, and fences it (closes Lost
// with ErrFenced) at its deadline. A renewal that Redis does not answer is
// cut short at the deadline.
func (lk *Lock) renew(log *zap.Logger) {
	defer close(lk.done)
	every := lk.ttl / 3
	tr := trouble.New(log, "task lock not renewed; retrying", "task lock renewed again")
	next := time.Now().Add(every)
	t := time.NewTimer(time.Until(earliest(next, lk.deadline())))
	defer t.Stop()
	for {
		select {
		case <-lk.stop:
			return
		case <-t.C:
		}
		if lk.Err() != nil {
			return // taken, as a Confirm found
		}
		if fence := lk.deadline(); !time.Now().Before(fence) {
			log.Error("task lock not renewed in time: stopping the task before another worker may take its lock (fenced)",
				zap.Duration("since_renewal", time.Since(lk.base.Add(time.Duration(lk.renewed.Load())))), zap.Duration("ttl", lk.ttl))
			lk.lose(ErrFenced)
			return
		}
		if !time.Now().Before(next) {
			next = time.Now().Add(every)
			ctx, cancel := context.WithDeadline(context.Background(), earliest(next, lk.deadline()))
			err := lk.renewOnce(ctx)
			cancel()
			if errors.Is(err, ErrLockLost) {
				log.Error("task lock taken by another runner; stopping this run")
				return
			}
			tr.Report(err)
		}
		t.Reset(time.Until(earliest(next, lk.deadline())))
	}
}

func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// Release stops the renewal and frees the lock if it is still ours. While
// Redis does not answer it tries again, until ctx ends: a lock left behind
// would make the task's next job wait for it to expire.
func (lk *Lock) Release(ctx context.Context) error {
	close(lk.stop)
	<-lk.done
	defer lk.forget()
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, time.Second) {
		err := lk.redis.ReleaseLock(ctx, lk.taskID, lk.token)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
	}
}
