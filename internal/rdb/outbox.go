package rdb

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// The webhook outbox: OutboxKey orders event ids by their next attempt, a hash
// per event (OutboxEventKey) holds it, OutboxDeadKey lists the ids an operator
// must look at, OutboxStagedKey notes the event staged for a task.

// OutboxEvent is one webhook event waiting in the outbox.
type OutboxEvent struct {
	ID        string
	Body      []byte
	TaskID    int64
	Type      string
	Attempts  int    // attempts made so far
	LastError string // of the last attempt
}

// stageScript writes event ARGV[2] (hash ARGV[1] .. id: body ARGV[5], task
// ARGV[3], type ARGV[4]) and notes it as the staged event of its task in
// KEYS[1]. An event staged before for the task under another id, and never
// released (not in the due set KEYS[2]), is deleted: a run that crashed between
// staging and releasing left it, and it will never be sent.
var stageScript = redis.NewScript(`
local old = redis.call('HGET', KEYS[1], ARGV[3])
if old and old ~= ARGV[2] and not redis.call('ZSCORE', KEYS[2], old) then
  redis.call('DEL', ARGV[1] .. old)
end
local key = ARGV[1] .. ARGV[2]
redis.call('HSET', key, 'body', ARGV[5], 'taskId', ARGV[3], 'type', ARGV[4])
redis.call('HSETNX', key, 'attempts', 0)
redis.call('HSET', KEYS[1], ARGV[3], ARGV[2])
return 1`)

// StageEvent writes an event under id without making it due, and notes it as
// the staged event of its task. The pipeline stages the event, then writes the
// row, then releases it: a crash between the row and the release leaves the
// event staged, and ReleaseStaged sends it when the task's job comes back.
// Staging again replaces the body; staging another id for the task deletes
// the one staged before if it was never released.
func (r *Client) StageEvent(ctx context.Context, id string, taskID int64, typ string, body []byte) error {
	err := r.runScript(ctx, stageScript, []string{OutboxStagedKey, OutboxKey}, OutboxEventPrefix, id, taskID, typ, body).Err()
	return wrap("outbox stage "+id, err)
}

// ReleaseEvent makes the staged event id of taskID due now.
func (r *Client) ReleaseEvent(ctx context.Context, id string, taskID int64, now time.Time) error {
	if r.waitsForReplica(ctx) {
		// The same commands as below (keep them in step), then WAIT.
		_, err := r.multiWaited(ctx,
			[]any{"zadd", OutboxKey, "NX", now.UnixMilli(), id},
			[]any{"hdel", OutboxStagedKey, itoa(taskID)})
		return wrap("outbox release "+id, err)
	}
	_, err := r.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.ZAddNX(ctx, OutboxKey, redis.Z{Score: float64(now.UnixMilli()), Member: id})
		p.HDel(ctx, OutboxStagedKey, itoa(taskID))
		return nil
	})
	return wrap("outbox release "+id, err)
}

// releaseClaimedScript is ReleaseEvent with the event claimed by the caller
// until ARGV[3] (Unix ms) and returned whole, in one round trip: id ARGV[1] of
// task ARGV[2] is added to the due set unless it is there already (then false
// is returned and the set is left as it was), its staged mark removed, and its
// fields (event hash ARGV[4]) returned as ClaimEvents returns them.
var releaseClaimedScript = redis.NewScript(`
redis.call('HDEL', KEYS[2], ARGV[2])
if redis.call('ZADD', KEYS[1], 'NX', ARGV[3], ARGV[1]) == 0 then return false end
local f = redis.call('HMGET', ARGV[4], 'body', 'taskId', 'type', 'attempts', 'lastError')
if not f[1] then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return false
end
for i = 1, 5 do f[i] = f[i] or '' end
return f
`)

// ReleaseClaimed releases the staged event id of taskID claimed by the caller
// until now+lease, and returns it for a first attempt: no other deliverer takes
// it meanwhile, and should the caller never try it, it is sent when the lease
// ends. ok is false when id was released already (it stays as it was) or has
// no event.
func (r *Client) ReleaseClaimed(ctx context.Context, id string, taskID int64, now time.Time, lease time.Duration) (e OutboxEvent, ok bool, err error) {
	f, err := r.runScript(ctx, releaseClaimedScript, []string{OutboxKey, OutboxStagedKey},
		id, taskID, now.Add(lease).UnixMilli(), OutboxEventKey(id)).StringSlice()
	switch {
	case errors.Is(err, redis.Nil):
		return OutboxEvent{}, false, nil
	case err != nil:
		return OutboxEvent{}, false, wrap("outbox release "+id, err)
	case len(f) != 5:
		return OutboxEvent{}, false, fmt.Errorf("outbox release %s: %d fields", id, len(f))
	}
	return outboxEvent(id, f[0], f[1], f[2], f[3], f[4]), true, nil
}

// EventDue makes event id due at once (one released claimed that its
// deliverer could not take).
func (r *Client) EventDue(ctx context.Context, id string, now time.Time) error {
	return wrap("outbox due "+id, r.c.ZAddXX(ctx, OutboxKey, redis.Z{Score: float64(now.UnixMilli()), Member: id}).Err())
}

// ReleaseStaged releases the event staged for taskID, if one is; it reports
// whether there was one.
func (r *Client) ReleaseStaged(ctx context.Context, taskID int64, now time.Time) (bool, error) {
	id, err := r.c.HGet(ctx, OutboxStagedKey, itoa(taskID)).Result()
	if IsNil(err) {
		return false, nil
	}
	if err != nil {
		return false, wrap("outbox staged of task "+itoa(taskID), err)
	}
	return true, r.ReleaseEvent(ctx, id, taskID, now)
}

// claimScript takes up to ARGV[3] events due by ARGV[1], moves their next
// attempt to ARGV[2] so that no other deliverer takes them meanwhile, and returns
// each with its fields (one round trip: a task's webhook goes out right after it
// is released). An id whose event hash (ARGV[4] + id) is gone is dropped.
// The result is flat: first when the earliest event left is due (empty if none),
// then id, body, taskId, type, attempts, lastError, id, ...
var claimScript = redis.NewScript(`
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
local out = {''}
for _, id in ipairs(ids) do
  local f = redis.call('HMGET', ARGV[4] .. id, 'body', 'taskId', 'type', 'attempts', 'lastError')
  if f[1] then
    redis.call('ZADD', KEYS[1], 'XX', ARGV[2], id)
    table.insert(out, id)
    for i = 1, 5 do table.insert(out, f[i] or '') end
  else
    redis.call('ZREM', KEYS[1], id)
  end
end
local nxt = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if nxt[2] then out[1] = nxt[2] end
return out
`)

// ClaimEvents leases up to n due events until now+lease and returns them, and
// when the earliest event left in the outbox is due (zero if there is none; the
// events just claimed count, due at the end of their lease).
func (r *Client) ClaimEvents(ctx context.Context, now time.Time, lease time.Duration, n int) ([]OutboxEvent, time.Time, error) {
	flat, err := claimScript.Run(ctx, r.c, []string{OutboxKey},
		now.UnixMilli(), now.Add(lease).UnixMilli(), n, OutboxEventPrefix).StringSlice()
	if err != nil {
		return nil, time.Time{}, wrap("outbox claim", err)
	}
	var next time.Time
	if len(flat) > 0 && flat[0] != "" {
		next = unixMilli(flat[0])
	}
	out := make([]OutboxEvent, 0, len(flat)/6)
	for i := 1; i+5 < len(flat); i += 6 {
		out = append(out, outboxEvent(flat[i], flat[i+1], flat[i+2], flat[i+3], flat[i+4], flat[i+5]))
	}
	return out, next, nil
}

func outboxEvent(id, body, taskID, typ, attempts, lastError string) OutboxEvent {
	tid, _ := strconv.ParseInt(taskID, 10, 64)
	n, _ := strconv.Atoi(attempts)
	return OutboxEvent{ID: id, Body: []byte(body), TaskID: tid, Type: typ, Attempts: n, LastError: lastError}
}

// Event reads event id; an error that IsNil when there is none.
func (r *Client) Event(ctx context.Context, id string) (OutboxEvent, error) {
	h, err := r.c.HGetAll(ctx, OutboxEventKey(id)).Result()
	if err != nil {
		return OutboxEvent{}, wrap("outbox read "+id, err)
	}
	if len(h) == 0 {
		return OutboxEvent{}, redis.Nil
	}
	return outboxEvent(id, h["body"], h["taskId"], h["type"], h["attempts"], h["lastError"]), nil
}

// EventDelivered removes an event the web app accepted.
func (r *Client) EventDelivered(ctx context.Context, id string) error {
	_, err := r.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.ZRem(ctx, OutboxKey, id)
		p.Del(ctx, OutboxEventKey(id))
		return nil
	})
	return wrap("outbox delivered "+id, err)
}

// RetryEvent records a failed attempt and sets the next one at next.
func (r *Client) RetryEvent(ctx context.Context, id string, attempts int, reason string, next time.Time) error {
	_, err := r.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, OutboxEventKey(id), "attempts", attempts, "lastError", reason)
		p.ZAdd(ctx, OutboxKey, redis.Z{Score: float64(next.UnixMilli()), Member: id})
		return nil
	})
	return wrap("outbox retry "+id, err)
}

// BuryEvent takes an event out of the schedule and lists it for an operator;
// its hash stays, so it can be delivered again with RequeueEvent.
func (r *Client) BuryEvent(ctx context.Context, id string, attempts int, reason string) error {
	_, err := r.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, OutboxEventKey(id), "attempts", attempts, "lastError", reason)
		p.ZRem(ctx, OutboxKey, id)
		p.LRem(ctx, OutboxDeadKey, 0, id)
		p.LPush(ctx, OutboxDeadKey, id)
		return nil
	})
	return wrap("outbox bury "+id, err)
}

// RequeueEvent schedules a buried event again, due at once, with its attempts
// reset.
func (r *Client) RequeueEvent(ctx context.Context, id string, now time.Time) error {
	n, err := r.c.Exists(ctx, OutboxEventKey(id)).Result()
	if err != nil {
		return wrap("outbox requeue "+id, err)
	}
	if n == 0 {
		return fmt.Errorf("outbox requeue %s: no such event", id)
	}
	_, err = r.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, OutboxEventKey(id), "attempts", 0)
		p.LRem(ctx, OutboxDeadKey, 0, id)
		p.ZAdd(ctx, OutboxKey, redis.Z{Score: float64(now.UnixMilli()), Member: id})
		return nil
	})
	return wrap("outbox requeue "+id, err)
}
