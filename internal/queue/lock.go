package queue

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/coursedl/worker/internal/trouble"
)

// ErrLocked says another runner holds the task's lock.
var ErrLocked = errors.New("task is being run by another worker")

// DefaultLockTTL is how long a task lock lives without renewal.
const DefaultLockTTL = 60 * time.Second

// Locks hands out per-task locks, so that a duplicate job, or a recovered one
// racing a slow worker, never runs a task twice at once.
//
// A lock that names this worker (Owner) but that no task of this process holds
// is a leftover: its release failed while Redis was away, or an earlier
// process of this worker id held it. Acquire takes such a lock over instead of
// making the task wait for it to expire. Worker ids are unique among live
// processes (Heartbeat.Claim), so no other runner can be behind it.
type Locks struct {
	RDB redis.UniversalClient
	// Owner is the worker id written into each lock's value ("<owner>/<random>"),
	// so that the locks of a dead worker can be freed with its jobs.
	Owner string
	TTL   time.Duration // default DefaultLockTTL; renewed every TTL/3
	Log   *zap.Logger

	mu   sync.Mutex
	held map[int64]bool // tasks whose lock this process holds
}

// Lock is a held task lock. Lost is closed if the lock is found taken by
// someone else; the holder must then stop the task.
type Lock struct {
	key    string
	token  string
	rdb    redis.UniversalClient
	lost   chan struct{}
	stop   chan struct{}
	done   chan struct{}
	forget func() // tells the Locks this process no longer holds it
}

var (
	// acquireScript sets KEYS[1] to ARGV[2] for ARGV[3] ms when the key is
	// free, or when ARGV[1] is not empty and the value starts with it (a
	// leftover lock of this worker); it returns 1 when it set the key.
	acquireScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v and (ARGV[1] == '' or string.sub(v, 1, string.len(ARGV[1])) ~= ARGV[1]) then
  return 0
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1`)
	renewScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return -1`)
	releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0`)
)

// Acquire takes the lock of taskID, or returns ErrLocked. The lock is renewed on
// its own goroutine until Release.
func (l *Locks) Acquire(ctx context.Context, taskID int64) (*Lock, error) {
	ttl := l.TTL
	if ttl <= 0 {
		ttl = DefaultLockTTL
	}
	l.mu.Lock()
	if l.held[taskID] {
		l.mu.Unlock()
		return nil, ErrLocked
	}
	if l.held == nil {
		l.held = map[int64]bool{}
	}
	l.held[taskID] = true
	l.mu.Unlock()
	forget := func() {
		l.mu.Lock()
		delete(l.held, taskID)
		l.mu.Unlock()
	}
	lk := &Lock{
		key:    LockPrefix + strconv.FormatInt(taskID, 10),
		token:  l.Owner + "/" + rand.Text(),
		rdb:    l.RDB,
		lost:   make(chan struct{}),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
		forget: forget,
	}
	leftover := "" // the prefix of this worker's leftover locks; none without an Owner
	if l.Owner != "" {
		leftover = l.Owner + "/"
	}
	ok, err := acquireScript.Run(ctx, l.RDB, []string{lk.key}, leftover, lk.token, ttl.Milliseconds()).Bool()
	if err != nil {
		forget()
		return nil, fmt.Errorf("lock task %d: %w", taskID, err)
	}
	if !ok {
		forget()
		return nil, ErrLocked
	}
	log := l.Log
	if log == nil {
		log = zap.NewNop()
	}
	go lk.renew(ttl, log.With(zap.Int64("task_id", taskID)))
	return lk, nil
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
		n, err := renewScript.Run(ctx, lk.rdb, []string{lk.key}, lk.token, ttl.Milliseconds()).Int64()
		cancel()
		if err == nil && n == -1 {
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
		err := releaseScript.Run(ctx, lk.rdb, []string{lk.key}, lk.token).Err()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("release %s: %w", lk.key, err)
		case <-time.After(wait):
		}
	}
}

// freeScript deletes the locks among KEYS whose owner (the value's part before
// "/") is ARGV[1].
var freeScript = redis.NewScript(`
local n = 0
for _, key in ipairs(KEYS) do
  local v = redis.call('GET', key)
  if v and string.sub(v, 1, string.len(ARGV[1]) + 1) == ARGV[1] .. '/' then
    redis.call('DEL', key)
    n = n + 1
  end
end
return n`)

// FreeLocks deletes the task locks held by worker owner, which is dead: its jobs
// are being given back and must not wait for the locks to expire.
func FreeLocks(ctx context.Context, rdb redis.UniversalClient, owner string) (int, error) {
	total := 0
	iter := rdb.Scan(ctx, 0, LockPrefix+"*", 200).Iterator()
	var keys []string
	flush := func() error {
		if len(keys) == 0 {
			return nil
		}
		n, err := freeScript.Run(ctx, rdb, keys, owner).Int()
		total += n
		keys = keys[:0]
		return err
	}
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
		if len(keys) == 100 {
			if err := flush(); err != nil {
				return total, fmt.Errorf("free locks of %s: %w", owner, err)
			}
		}
	}
	if err := iter.Err(); err != nil {
		return total, fmt.Errorf("free locks of %s: %w", owner, err)
	}
	if err := flush(); err != nil {
		return total, fmt.Errorf("free locks of %s: %w", owner, err)
	}
	return total, nil
}
