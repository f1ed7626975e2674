package rdb

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"
)

// The reconciler's operations (package reconcile): what jobs Redis holds, the
// epoch that tells a loss of data, the one-at-a-time lock of a reconcile pass,
// the push of a rebuilt job, and the restoring of what a loss took from a live
// worker (its task locks) and from the web app (its events).

// scanChunk is how many entries one LRANGE, ZRANGE or SCAN reads.
const scanChunk = 1000

// JobsInRedis returns the tasks that have a job anywhere in Redis: the queue,
// every processing list, the delayed set and the dead letters (their payload).
// taskOf names the task of a payload (0: none). Lists are read a chunk at a
// time, not atomically: a job moving from one list to another during the read
// may be missed, so a caller acting on an absence looks twice.
func (r *Client) JobsInRedis(ctx context.Context, taskOf func(payload string) int64) (map[int64]bool, error) {
	found := map[int64]bool{}
	add := func(payload string) {
		if id := taskOf(payload); id > 0 {
			found[id] = true
		}
	}
	lists := []string{r.queue}
	iter := r.c.Scan(ctx, 0, ProcessingPrefix+"*", scanChunk).Iterator()
	for iter.Next(ctx) {
		lists = append(lists, iter.Val())
	}
	if err := iter.Err(); err != nil {
		return nil, wrap("scan processing lists", err)
	}
	for _, key := range lists {
		if err := r.readChunks(ctx, key, r.c.LRange, add); err != nil {
			return nil, err
		}
	}
	if err := r.readChunks(ctx, DelayedKey, r.c.ZRange, add); err != nil {
		return nil, err
	}
	err := r.readChunks(ctx, DeadKey, r.c.LRange, func(entry string) {
		var d Dead
		if json.Unmarshal([]byte(entry), &d) == nil {
			add(d.Payload)
		}
	})
	return found, err
}

// readChunks reads the list or sorted set key with read (LRANGE or ZRANGE)
// scanChunk entries at a time, and gives each to each.
func (r *Client) readChunks(ctx context.Context, key string,
	read func(ctx context.Context, key string, start, stop int64) *redis.StringSliceCmd, each func(string),
) error {
	for start := int64(0); ; start += scanChunk {
		chunk, err := read(ctx, key, start, start+scanChunk-1).Result()
		if err != nil {
			return wrap("read "+key, err)
		}
		for _, v := range chunk {
			each(v)
		}
		if len(chunk) < scanChunk {
			return nil
		}
	}
}

// Epoch returns the epoch, "" when the key is missing.
func (r *Client) Epoch(ctx context.Context) (string, error) {
	v, err := r.c.Get(ctx, EpochKey).Result()
	if IsNil(err) {
		return "", nil
	}
	return v, wrap("read "+EpochKey, err)
}

// InitEpoch writes fresh as the epoch unless one is there already, and returns
// the epoch Redis holds then, and whether it was fresh.
func (r *Client) InitEpoch(ctx context.Context, fresh string) (string, bool, error) {
	set, err := r.c.SetNX(ctx, EpochKey, fresh, 0).Result()
	if err != nil {
		return "", false, wrap("write "+EpochKey, err)
	}
	if set {
		return fresh, true, nil
	}
	v, err := r.Epoch(ctx)
	return v, false, err
}

// swapScript sets KEYS[1] to ARGV[2] when it holds ARGV[1] ("" : when it is
// missing); it returns 1 when it did.
var swapScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if (v or '') ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
return 1`)

// SwapEpoch sets the epoch to next when it is old ("" : missing); it reports
// whether it did.
func (r *Client) SwapEpoch(ctx context.Context, old, next string) (bool, error) {
	n, err := swapScript.Run(ctx, r.c, []string{EpochKey}, old, next).Int()
	return n == 1, wrap("swap "+EpochKey, err)
}

// holdScript sets KEYS[1] to ARGV[1] for ARGV[2] ms when it is free or holds
// ARGV[1] already; it returns 1 when the caller holds it.
var holdScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v and v ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1`)

// HoldReconcile takes the reconcile lock for token for ttl, or extends it when
// token holds it; it reports whether token holds it now.
func (r *Client) HoldReconcile(ctx context.Context, token string, ttl time.Duration) (bool, error) {
	n, err := holdScript.Run(ctx, r.c, []string{ReconcileLockKey}, token, ttl.Milliseconds()).Int()
	return n == 1, wrap("hold "+ReconcileLockKey, err)
}

// dropScript deletes KEYS[1] when it holds ARGV[1].
var dropScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`)

// DropReconcile frees the reconcile lock if token holds it.
func (r *Client) DropReconcile(ctx context.Context, token string) error {
	return wrap("free "+ReconcileLockKey, dropScript.Run(ctx, r.c, []string{ReconcileLockKey}, token).Err())
}

// ErrEpochChanged says the epoch is no longer the one the caller acted on:
// Redis lost data meanwhile.
var ErrEpochChanged = errors.New("the epoch changed: Redis lost data")

// pushScript pushes ARGV[2] onto the queue KEYS[1] (LPUSH, as the web app)
// unless the epoch KEYS[2] is not ARGV[1] (-1) or the task's lock KEYS[3] is
// held (0).
var pushScript = redis.NewScript(`
if (redis.call('GET', KEYS[2]) or '') ~= ARGV[1] then return -1 end
if redis.call('EXISTS', KEYS[3]) == 1 then return 0 end
redis.call('LPUSH', KEYS[1], ARGV[2])
return 1`)

// PushUnlocked pushes the job payload of taskID onto the queue as the web app
// does, unless a worker holds the task's lock (pushed is false then); with
// ErrEpochChanged, and nothing pushed, when the epoch is not epoch.
func (r *Client) PushUnlocked(ctx context.Context, taskID int64, payload, epoch string) (pushed bool, err error) {
	n, err := pushScript.Run(ctx, r.c, []string{r.queue, EpochKey, LockKey(taskID)}, epoch, payload).Int()
	if err != nil {
		return false, wrap("push task "+itoa(taskID), err)
	}
	if n < 0 {
		return false, ErrEpochChanged
	}
	return n == 1, nil
}

// RestoreLocks writes back the task locks a loss of data took from this
// worker: each task's lock is set to its token for ttl unless someone holds it.
// It returns how many it wrote.
func (r *Client) RestoreLocks(ctx context.Context, tokens map[int64]string, ttl time.Duration) (int, error) {
	if len(tokens) == 0 {
		return 0, nil
	}
	cmds := make([]*redis.BoolCmd, 0, len(tokens))
	_, err := r.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for id, token := range tokens {
			cmds = append(cmds, p.SetNX(ctx, LockKey(id), token, ttl))
		}
		return nil
	})
	n := 0
	for _, c := range cmds {
		if c.Val() {
			n++
		}
	}
	return n, wrap("restore task locks", err)
}

// resendScript writes event ARGV[1] (hash KEYS[2]: body ARGV[4], task ARGV[2],
// type ARGV[3]) due at Redis's now in the outbox KEYS[1], unless its hash
// exists (the event is there, staged or waiting): it returns 1 when it wrote it.
var resendScript = redis.NewScript(luaNow + `
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('HSET', KEYS[2], 'body', ARGV[4], 'taskId', ARGV[2], 'type', ARGV[3], 'attempts', 0)
redis.call('ZADD', KEYS[1], 'NX', now, ARGV[1])
return 1`)

// ResendEvent puts event id of taskID in the outbox, due now by Redis's clock,
// unless the outbox has it already; it reports whether it did. It is how events
// that a loss of data took are sent again, under their own id.
func (r *Client) ResendEvent(ctx context.Context, id string, taskID int64, typ string, body []byte) (bool, error) {
	n, err := r.runScript(ctx, resendScript, []string{OutboxKey, OutboxEventKey(id)}, id, taskID, typ, body).Int()
	return n == 1, wrap("outbox resend "+id, err)
}
