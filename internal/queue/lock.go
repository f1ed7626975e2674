package queue

import (
	"context"
	"crypto/rand"
	"errors"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/coursedl/worker/internal/rdb"
	"github.com/coursedl/worker/internal/trouble"
)

// ErrLocked says another runner holds the task's lock.
var ErrLocked = errors.New("task is being run by another worker")

// DefaultLockTTL is how long a task lock lives without renewal.
const DefaultLockTTL = 60 * time.Second

// LocksParams configure Locks.
type LocksParams struct {
	// Redis's Worker is written into each lock's value, so that the locks of a
	// dead worker can be freed with its jobs.
	Redis *rdb.Client
	TTL   time.Duration // default DefaultLockTTL; renewed every TTL/3
	Log   *zap.Logger
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

// Lock is a held task lock. Lost is closed if the lock is found taken by
// someone else; the holder must then stop the task.
type Lock struct {
	taskID int64
	token  string
	redis  *rdb.Client
	lost   chan struct{}
	stop   chan struct{}
	done   chan struct{}
	forget func() // tells the Locks this process no longer holds it
}

// Acquire takes the lock of taskID, or returns ErrLocked. The lock is renewed on
// its own goroutine until Release.
func (l *Locks) Acquire(ctx context.Context, taskID int64) (*Lock, error) {
	if !l.hold(taskID) {
		return nil, ErrLocked
	}
	lk := &Lock{
		taskID: taskID,
		token:  l.Redis.LockToken(rand.Text()),
		redis:  l.Redis,
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
	go lk.renew(l.TTL, l.Log.With(zap.Int64("task_id", taskID))) //nolint:gosec,contextcheck // G118, not under ctx: the renewal keeps the lock after Acquire returned, until Release
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

// Lost is closed when the lock was taken over by another runner.
func (lk *Lock) Lost() <-chan struct{} { return lk.lost }

func (lk *Lock) renew(ttl time.Duration, log *zap.Logger) {
	defer close(lk.done)
	t := time.NewTicker(ttl / 3)
	defer t.Stop()
	tr := trouble.New(log, "task lock not renewed; retrying", "task lock renewed again")
	for {
		select {
		case <-lk.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), ttl/3)
		held, err := lk.redis.RenewLock(ctx, lk.taskID, lk.token, ttl)
		cancel()
		if err == nil && !held {
			log.Error("task lock taken by another runner; stopping this run")
			close(lk.lost)
			return
		}
		// Redis away: nobody else can take the lock meanwhile either.
		tr.Report(err)
	}
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
