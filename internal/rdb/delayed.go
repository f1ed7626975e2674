package rdb

import (
	"context"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

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

// promoteBatch is the most delayed jobs one script call moves.
const promoteBatch = 100

// PromoteDue moves every delayed job due by now to the head of the queue; it
// returns how many, and when the next delayed job is due (zero if none is).
func (r *Client) PromoteDue(ctx context.Context, now time.Time) (int, time.Time, error) {
	total := 0
	for {
		res, err := promoteScript.Run(ctx, r.c, []string{DelayedKey, r.queue}, now.UnixMilli(), promoteBatch).Slice()
		if err != nil {
			return total, time.Time{}, wrap("move delayed jobs", err)
		}
		n, next := promoted(res)
		total += n
		if n < promoteBatch {
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
			next = unixMilli(score)
		}
	}
	return int(n), next
}

// unixMilli reads a score of Unix milliseconds; zero when it is not a number.
func unixMilli(score string) time.Time {
	ms, err := strconv.ParseFloat(score, 64)
	if err != nil {
		return time.Time{}
	}
	return time.UnixMilli(int64(ms))
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
