package rdb

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"
)

// promoteScript moves up to ARGV[1] delayed jobs due by Redis's now to the
// head of the queue (RPUSH: BLMOVE takes from the right) and returns how many,
// and in how many ms the next delayed job is due, false when there is none.
var promoteScript = redis.NewScript(luaNow + `
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
for _, job in ipairs(due) do
  redis.call('ZREM', KEYS[1], job)
  redis.call('RPUSH', KEYS[2], job)
end
local nxt = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if nxt[2] then return {#due, math.max(tonumber(nxt[2]) - now, 1)} end
return {#due, false}`)

// promoteBatch is the most delayed jobs one script call moves.
const promoteBatch = 100

// PromoteDue moves every delayed job due by Redis's clock to the head of the
// queue; it returns how many, and how long until the next delayed job is due
// (zero if none is), to be waited out on the caller's monotonic clock.
func (r *Client) PromoteDue(ctx context.Context) (int, time.Duration, error) {
	total := 0
	for {
		res, err := promoteScript.Run(ctx, r.c, []string{DelayedKey, r.queue}, promoteBatch).Slice()
		if err != nil {
			return total, 0, wrap("move delayed jobs", err)
		}
		n, next := promoted(res)
		total += n
		if n < promoteBatch {
			return total, next, nil
		}
	}
}

// promoted reads promoteScript's answer: the count, then in how many ms the
// next job is due, or nil.
func promoted(res []any) (int, time.Duration) {
	n, _ := first(res).(int64)
	var next time.Duration
	if len(res) > 1 {
		next, _ = msDuration(res[1])
	}
	return int(n), next
}

// DelayedJob is a job waiting in the delayed set.
type DelayedJob struct {
	Payload string
	Due     time.Time
}

// Delayed returns every job of the delayed set, the one due first first.
func (r *Client) Delayed(ctx context.Context) ([]DelayedJob, error) {
	zs, err := r.c.ZRangeWithScores(ctx, DelayedKey, 0, -1).Result()
	if err != nil {
		return nil, wrap("read "+DelayedKey, err)
	}
	out := make([]DelayedJob, 0, len(zs))
	for _, z := range zs {
		p, _ := z.Member.(string)
		out = append(out, DelayedJob{Payload: p, Due: time.UnixMilli(int64(z.Score))})
	}
	return out, nil
}

// runNowScript moves delayed job ARGV[1] to the head of the queue (RPUSH:
// BLMOVE takes from the right) if it is still in the delayed set.
var runNowScript = redis.NewScript(`
if redis.call('ZREM', KEYS[1], ARGV[1]) == 1 then
  redis.call('RPUSH', KEYS[2], ARGV[1])
  return 1
end
return 0`)

// RunNow moves a delayed job to the head of the queue at once, in one step:
// an operator's "run it now" instead of waiting out its backoff. It reports
// false when the job was no longer delayed (promoted, or moved by someone
// else), and moves nothing then.
func (r *Client) RunNow(ctx context.Context, payload string) (bool, error) {
	n, err := runNowScript.Run(ctx, r.c, []string{DelayedKey, r.queue}, payload).Int()
	return n == 1, wrap("run delayed job now", err)
}
