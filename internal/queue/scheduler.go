package queue

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/coursedl/worker/internal/trouble"
)

// Delay moves a job from the processing list into the delayed set, due at due,
// atomically. The Scheduler gives it back to the queue then.
func (c *Client) Delay(ctx context.Context, payload string, due time.Time) error {
	_, err := c.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.ZAdd(ctx, DelayedKey, redis.Z{Score: float64(due.UnixMilli()), Member: payload})
		p.LRem(ctx, c.processing, 1, payload)
		return nil
	})
	if err != nil {
		return fmt.Errorf("delay: %w", err)
	}
	return nil
}

// NextAttempt counts one more failed attempt of taskID and returns the count.
func (c *Client) NextAttempt(ctx context.Context, taskID int64) (int, error) {
	n, err := c.rdb.HIncrBy(ctx, AttemptsKey, strconv.FormatInt(taskID, 10), 1).Result()
	if err != nil {
		return 0, fmt.Errorf("count attempt of task %d: %w", taskID, err)
	}
	return int(n), nil
}

// Attempts returns the failed attempts counted for taskID.
func (c *Client) Attempts(ctx context.Context, taskID int64) (int, error) {
	n, err := c.rdb.HGet(ctx, AttemptsKey, strconv.FormatInt(taskID, 10)).Int()
	if err == redis.Nil {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read attempts of task %d: %w", taskID, err)
	}
	return n, nil
}

// ForgetAttempts clears the count of taskID once its task has ended.
func (c *Client) ForgetAttempts(ctx context.Context, taskID int64) error {
	if err := c.rdb.HDel(ctx, AttemptsKey, strconv.FormatInt(taskID, 10)).Err(); err != nil {
		return fmt.Errorf("forget attempts of task %d: %w", taskID, err)
	}
	return nil
}

// promoteScript moves up to ARGV[2] delayed jobs due by ARGV[1] to the head of
// the queue (RPUSH: BLMOVE takes from the right) and returns how many, and the
// due time of the next delayed job (Unix ms), false when there is none.
var promoteScript = redis.NewScript(`
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, job in ipairs(due) do
  redis.call('ZREM', KEYS[1], job)
  redis.call('RPUSH', KEYS[2], job)
end
local nxt = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {#due, nxt[2] or false}`)

// DefaultSchedulerWait is the longest a Scheduler waits between looks.
const DefaultSchedulerWait = 5 * time.Second

// Scheduler gives delayed jobs back to the queue when they are due. Every worker
// runs one; the script makes that safe.
//
// It sleeps until the next delayed job is due, or Every at most (a job delayed
// by another worker, whose own scheduler normally moves it), and is woken by
// Wake when this worker delays one: an idle worker looks every few seconds, not
// every second, and a job still comes back when it is due.
type Scheduler struct {
	RDB   redis.UniversalClient
	Queue string
	Every time.Duration // the longest wait; default DefaultSchedulerWait
	Log   *zap.Logger
	Now   func() time.Time

	once sync.Once
	wake chan struct{}
}

// Wake has the scheduler look again now: a job was just delayed.
func (s *Scheduler) Wake() {
	s.init()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *Scheduler) init() { s.once.Do(func() { s.wake = make(chan struct{}, 1) }) }

// Run promotes due jobs at once and then whenever the next is due, until ctx
// ends.
func (s *Scheduler) Run(ctx context.Context) error {
	s.init()
	if s.Every <= 0 {
		s.Every = DefaultSchedulerWait
	}
	t := time.NewTimer(s.Every)
	defer t.Stop()
	tr := trouble.New(s.Log, "cannot move delayed jobs; retrying", "delayed jobs move again")
	for {
		_, next, err := s.promote(ctx)
		if ctx.Err() != nil {
			return nil
		}
		tr.Report(err)
		wait := s.Every
		if !next.IsZero() {
			wait = min(wait, max(next.Sub(s.now()), minSchedulerWait))
		}
		t.Reset(wait)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-s.wake:
		}
	}
}

// minSchedulerWait keeps a job due in the past (a clock behind Redis's
// scores) from spinning the loop.
const minSchedulerWait = 10 * time.Millisecond

// promote moves every job due now; it returns how many, and when the next
// delayed job is due (zero if none is).
func (s *Scheduler) promote(ctx context.Context) (int, time.Time, error) {
	total := 0
	for {
		res, err := promoteScript.Run(ctx, s.RDB, []string{DelayedKey, s.Queue}, s.now().UnixMilli(), 100).Slice()
		if err != nil {
			return total, time.Time{}, err
		}
		n, next := promoted(res)
		total += n
		if n < 100 {
			return total, next, nil
		}
	}
}

// promoted reads promoteScript's answer: the count, then the next due time in
// Unix ms (a string, as Redis gives scores) or nil.
func promoted(res []any) (int, time.Time) {
	if len(res) < 1 {
		return 0, time.Time{}
	}
	n, _ := res[0].(int64)
	var next time.Time
	if len(res) > 1 {
		if score, ok := res[1].(string); ok {
			if ms, err := strconv.ParseFloat(score, 64); err == nil {
				next = time.UnixMilli(int64(ms))
			}
		}
	}
	return int(n), next
}

func (s *Scheduler) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}
