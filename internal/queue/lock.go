package queue

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// ErrLocked says another runner holds the task's lock.
var ErrLocked = errors.New("task is being run by another worker")

// DefaultLockTTL is how long a task lock lives without renewal.
const DefaultLockTTL = 60 * time.Second

// Locks hands out per-task locks, so that a duplicate job, or a recovered one
// racing a slow worker, never runs a task twice at once.
type Locks struct {
	RDB redis.UniversalClient
	// Owner is the worker id written into each lock's value ("<owner>/<random>"),
	// so that the locks of a dead worker can be freed with its jobs.
	Owner string
	TTL   time.Duration // default DefaultLockTTL; renewed every TTL/3
	Log   *zap.Logger
}

// Lock is a held task lock. Lost is closed if the lock is found taken by
// someone else; the holder must then stop the task.
type Lock struct {
	key   string
	token string
	rdb   redis.UniversalClient
	lost  chan struct{}
	stop  chan struct{}
	done  chan struct{}
}

var (
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
	lk := &Lock{
		key:   LockPrefix + strconv.FormatInt(taskID, 10),
		token: l.Owner + "/" + rand.Text(),
		rdb:   l.RDB,
		lost:  make(chan struct{}),
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	ok, err := l.RDB.SetNX(ctx, lk.key, lk.token, ttl).Result()
	if err != nil {
		return nil, fmt.Errorf("lock task %d: %w", taskID, err)
	}
	if !ok {
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
	failing := false
	for {
		select {
		case <-lk.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), ttl/3)
		n, err := renewScript.Run(ctx, lk.rdb, []string{lk.key}, lk.token, ttl.Milliseconds()).Int64()
		cancel()
		switch {
		case err != nil:
			// Redis away: nobody else can take the lock meanwhile either.
			if !failing {
				log.Warn("task lock not renewed; retrying", zap.Error(err))
				failing = true
			}
		case n == -1:
			log.Error("task lock taken by another runner; stopping this run")
			close(lk.lost)
			return
		default:
			failing = false
		}
	}
}

// Release stops the renewal and frees the lock if it is still ours.
func (lk *Lock) Release(ctx context.Context) error {
	close(lk.stop)
	<-lk.done
	if err := releaseScript.Run(ctx, lk.rdb, []string{lk.key}, lk.token).Err(); err != nil {
		return fmt.Errorf("release %s: %w", lk.key, err)
	}
	return nil
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
