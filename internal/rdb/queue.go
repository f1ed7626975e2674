package rdb

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"
)

// The reliable queue: the web app LPUSHes jobs; a worker takes from the right
// end (FIFO) with an atomic move into its processing list, so that a job is
// always in exactly one Redis list until its task has ended.

// Push puts a job on the queue as the web app does (LPUSH), and returns the
// queue's length after it.
func (r *Client) Push(ctx context.Context, payload string) (int64, error) {
	n, err := r.c.LPush(ctx, r.queue, payload).Result()
	return n, wrap("push onto "+r.queue, err)
}

// Fetch moves the oldest job into this worker's processing list and returns it,
// blocking up to block. It returns "" and no error when none came in that time,
// or, with BlockOn, when ctx ended meanwhile. A block under a second (go-redis's
// least) does not wait at all.
func (r *Client) Fetch(ctx context.Context, block time.Duration) (string, error) {
	var payload string
	var err error
	switch {
	case block < time.Second:
		payload, err = r.c.LMove(ctx, r.queue, r.processing, "RIGHT", "LEFT").Result()
	case r.blocking != nil:
		payload, err = r.blockingMove(ctx, block)
	default:
		payload, err = r.c.BLMove(ctx, r.queue, r.processing, "RIGHT", "LEFT", block).Result()
	}
	if IsNil(err) {
		return "", nil
	}
	return payload, wrap("fetch from "+r.queue, err)
}

// Ack removes a job whose task has ended from the processing list; with
// Options.WaitReplica, once a replica has the removal too.
func (r *Client) Ack(ctx context.Context, payload string) error {
	lrem := waited(ctx, r, func(c redis.Cmdable) *redis.IntCmd { return c.LRem(ctx, r.processing, 1, payload) })
	return wrap("ack", lrem.Err())
}

// AckFetch removes done, whose task has ended, from the processing list and moves
// the oldest job of the queue into it, atomically (LREM and a non-blocking LMOVE
// in one MULTI/EXEC): the jobs in hand never outnumber those before. It does not
// block: it returns "" when the queue is empty, and the ack is done then too.
// After an error the caller settles done again (removing a job that is gone
// already is harmless).
//
// The calls of concurrent slots travel together: a call made while another's
// round trip is under way waits for it, and the calls gathered meanwhile go in
// the next transaction, each its own LREM and LMOVE, in order (see ackBatch).
// On a busy queue that makes one round trip, one write and one read on each
// side, serve several jobs; a lone call goes at once. The round trip runs
// without ctx's cancellation, under go-redis's time-outs: it carries other
// calls' jobs too.
//
// A transaction rather than a script: Redis runs it for less CPU than a Lua call,
// and on a busy queue Redis's CPU is what bounds the jobs a second.
func (r *Client) AckFetch(ctx context.Context, done string) (string, error) {
	if r.waitsForReplica(ctx) {
		return r.ackFetchWaited(ctx, done)
	}
	return r.acks.do(context.WithoutCancel(ctx), r, done)
}

// ackFetchWaited is AckFetch (the same commands, keep them in step) followed
// by WAIT for a replica, with Options.WaitReplica.
func (r *Client) ackFetchWaited(ctx context.Context, done string) (string, error) {
	replies, err := r.multiWaited(ctx,
		[]any{"lrem", r.processing, 1, done},
		[]any{"lmove", r.queue, r.processing, "RIGHT", "LEFT"})
	if err != nil {
		return "", wrap("ack and fetch from "+r.queue, err)
	}
	next, _ := replies[1].(string) // nil: the queue was empty; LREM ran
	return next, nil
}

// Requeue puts an unfinished job back at the head of the queue (it is taken next)
// and removes it from the processing list, atomically.
func (r *Client) Requeue(ctx context.Context, payload string) error {
	_, err := r.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.RPush(ctx, r.queue, payload)
		p.LRem(ctx, r.processing, 1, payload)
		return nil
	})
	return wrap("requeue", err)
}

// delayScript moves job ARGV[1] from the processing list KEYS[1] into the
// delayed set KEYS[2], due ARGV[2] ms from Redis's now; a job no longer in the
// list (a recoverer gave it back while its worker could not reach Redis) is
// not added, so that it is not in two places. It returns 1 when it moved it.
var delayScript = redis.NewScript(`
if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 0 then return 0 end
` + luaNow + `
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), ARGV[1])
return 1`)

// Delay moves a job from the processing list into the delayed set, due after
// delay by Redis's clock, atomically. PromoteDue gives it back to the queue
// then. A job that is no longer in the processing list (recovered by another
// worker meanwhile) is left where it is.
func (r *Client) Delay(ctx context.Context, payload string, delay time.Duration) error {
	err := delayScript.Run(ctx, r.c, []string{r.processing, DelayedKey}, payload, millis(delay)).Err()
	return wrap("delay", err)
}

// InHand returns this worker's processing list, the job taken first last.
func (r *Client) InHand(ctx context.Context) ([]string, error) {
	l, err := r.c.LRange(ctx, r.processing, 0, -1).Result()
	return l, wrap("read "+r.processing, err)
}

// InHandCount is how many jobs this worker's processing list holds.
func (r *Client) InHandCount(ctx context.Context) (int64, error) {
	n, err := r.c.LLen(ctx, r.processing).Result()
	return n, wrap("read "+r.processing, err)
}

// RecoverOwn gives every job left in this worker's processing list (by an earlier
// run of the same worker id that did not end cleanly) back to the head of the
// queue, oldest first, frees the task locks that run held, and returns the jobs.
// Call it before fetching.
func (r *Client) RecoverOwn(ctx context.Context) ([]string, error) {
	if _, err := r.FreeLocks(ctx, r.worker); err != nil {
		return nil, err
	}
	var moved []string
	for {
		// LMOVE LEFT->RIGHT takes the job fetched last first; pushing each onto the
		// queue's right end leaves the job fetched first at the very end, taken next.
		p, err := r.c.LMove(ctx, r.processing, r.queue, "LEFT", "RIGHT").Result()
		if errors.Is(err, redis.Nil) {
			return moved, nil
		}
		if err != nil {
			return moved, wrap("recover "+r.processing, err)
		}
		moved = append(moved, p)
	}
}

// NextAttempt counts one more failed attempt of taskID and returns the count.
func (r *Client) NextAttempt(ctx context.Context, taskID int64) (int, error) {
	n, err := r.c.HIncrBy(ctx, AttemptsKey, itoa(taskID), 1).Result()
	return int(n), wrap("count attempt of task "+itoa(taskID), err)
}

// Attempts returns the failed attempts counted for taskID.
func (r *Client) Attempts(ctx context.Context, taskID int64) (int, error) {
	n, err := r.c.HGet(ctx, AttemptsKey, itoa(taskID)).Int()
	if IsNil(err) {
		return 0, nil
	}
	return n, wrap("read attempts of task "+itoa(taskID), err)
}

// ForgetAttempts clears the count of taskID once its task has ended.
func (r *Client) ForgetAttempts(ctx context.Context, taskID int64) error {
	return wrap("forget attempts of task "+itoa(taskID), r.c.HDel(ctx, AttemptsKey, itoa(taskID)).Err())
}
