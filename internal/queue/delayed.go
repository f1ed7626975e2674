package queue

import (
	"context"
	"fmt"
	"strconv"
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
// the queue. KEYS[1] delayed set, KEYS[2] queue.
var promoteScript = redis.NewScript(`
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, job in ipairs(due) do
  redis.call('ZREM', KEYS[1], job)
  redis.call('RPUSH', KEYS[2], job)
end
return #due`)

// Scheduler gives delayed jobs back to the queue when they are due. Every worker
// runs one; the script makes that safe.
type Scheduler struct {
	RDB   redis.UniversalClient
	Queue string
	Every time.Duration // default 1 s
	Log   *zap.Logger
	Now   func() time.Time
}

// Run promotes due jobs at once and then every Every until ctx ends.
func (s *Scheduler) Run(ctx context.Context) error {
	if s.Every <= 0 {
		s.Every = time.Second
	}
	t := time.NewTicker(s.Every)
	defer t.Stop()
	tr := trouble.New(s.Log, "cannot move delayed jobs; retrying", "delayed jobs move again")
	for {
		_, err := s.Promote(ctx)
		if ctx.Err() != nil {
			return nil
		}
		tr.Report(err)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Promote moves every job due now and returns how many.
func (s *Scheduler) Promote(ctx context.Context) (int, error) {
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	total := 0
	for {
		n, err := promoteScript.Run(ctx, s.RDB, []string{DelayedKey, s.Queue}, now().UnixMilli(), 100).Int()
		total += n
		if err != nil || n < 100 {
			return total, err
		}
	}
}
