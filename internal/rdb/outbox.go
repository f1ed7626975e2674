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

// releaseEventScript makes event ARGV[1] due at Redis's now unless it is in the
// due set already, and removes the staged mark of task ARGV[2].
var releaseEventScript = redis.NewScript(luaNow + `
redis.call('ZADD', KEYS[1], 'NX', now, ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[2])
return 1`)

// ReleaseEvent makes the staged event id of taskID due now, by Redis's clock.
func (r *Client) ReleaseEvent(ctx context.Context, id string, taskID int64) error {
	err := r.runScript(ctx, releaseEventScript, []string{OutboxKey, OutboxStagedKey}, id, taskID).Err()
	return wrap("outbox release "+id, err)
}

// releaseClaimedScript is ReleaseEvent with the event claimed by the caller
// for ARGV[3] ms from Redis's now and returned whole, in one round trip: id ARGV[1] of
// task ARGV[2] is added to the due set unless it is there already (then false
// is returned and the set is left as it was), its staged mark removed, and its
// fields (event hash ARGV[4]) returned as ClaimEvents returns them.
var releaseClaimedScript = redis.NewScript(luaNow + `
redis.call('HDEL', KEYS[2], ARGV[2])
if redis.call('ZADD', KEYS[1], 'NX', now + tonumber(ARGV[3]), ARGV[1]) == 0 then return false end
local f = redis.call('HMGET', ARGV[4], 'body', 'taskId', 'type', 'attempts', 'lastError')
if not f[1] then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return false
end
for i = 1, 5 do f[i] = f[i] or '' end
return f
`)

// ReleaseClaimed releases the staged event id of taskID claimed by the caller
// for lease (by Redis's clock), and returns it for a first attempt: no other deliverer takes
// it meanwhile, and should the caller never try it, it is sent when the lease
// ends. ok is false when id was released already (it stays as it was) or has
// no event.
func (r *Client) ReleaseClaimed(ctx context.Context, id string, taskID int64, lease time.Duration) (e OutboxEvent, ok bool, err error) {
	f, err := r.runScript(ctx, releaseClaimedScript, []string{OutboxKey, OutboxStagedKey},
		id, taskID, millis(lease), OutboxEventKey(id)).StringSlice()
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

// dueScript makes event ARGV[1], if in the due set, due at Redis's now.
var dueScript = redis.NewScript(luaNow + `
return redis.call('ZADD', KEYS[1], 'XX', now, ARGV[1])`)

// EventDue makes event id due at once (one released claimed that its
// deliverer could not take).
func (r *Client) EventDue(ctx context.Context, id string) error {
	return wrap("outbox due "+id, dueScript.Run(ctx, r.c, []string{OutboxKey}, id).Err())
}

// ReleaseStaged releases the event staged for taskID, if one is; it reports
// whether there was one.
func (r *Client) ReleaseStaged(ctx context.Context, taskID int64) (bool, error) {
	id, err := r.c.HGet(ctx, OutboxStagedKey, itoa(taskID)).Result()
	if IsNil(err) {
		return false, nil
	}
	if err != nil {
		return false, wrap("outbox staged of task "+itoa(taskID), err)
	}
	return true, r.ReleaseEvent(ctx, id, taskID)
}

// claimScript takes up to ARGV[2] events due by Redis's now, moves their next
// attempt ARGV[1] ms later so that no other deliverer takes them meanwhile, and
// returns each with its fields (one round trip: a task's webhook goes out right
// after it is released). An id whose event hash (ARGV[3] + id) is gone is
// dropped. The result is flat: first in how many ms the earliest event left is
// due (empty if none), then id, body, taskId, type, attempts, lastError, id, ...
var claimScript = redis.NewScript(luaNow + `
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
local out = {''}
for _, id in ipairs(ids) do
  local f = redis.call('HMGET', ARGV[3] .. id, 'body', 'taskId', 'type', 'attempts', 'lastError')
  if f[1] then
    redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[1]), id)
    table.insert(out, id)
    for i = 1, 5 do table.insert(out, f[i] or '') end
  else
    redis.call('ZREM', KEYS[1], id)
  end
end
local nxt = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if nxt[2] then out[1] = tostring(math.max(tonumber(nxt[2]) - now, 1)) end
return out
`)

// ClaimEvents leases up to n events due by Redis's clock for lease and returns
// them, and how long until the earliest event left in the outbox is due (zero
// if there is none; the events just claimed count, due at the end of their
// lease), to be waited out on the caller's monotonic clock.
func (r *Client) ClaimEvents(ctx context.Context, lease time.Duration, n int) ([]OutboxEvent, time.Duration, error) {
	flat, err := claimScript.Run(ctx, r.c, []string{OutboxKey}, millis(lease), n, OutboxEventPrefix).StringSlice()
	if err != nil {
		return nil, 0, wrap("outbox claim", err)
	}
	var next time.Duration
	if len(flat) > 0 && flat[0] != "" {
		next, _ = msDuration(flat[0])
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

// retryScript records attempt ARGV[2] of event ARGV[1] (hash KEYS[2]), failed
// for ARGV[3], and sets the next one ARGV[4] ms after Redis's now.
var retryScript = redis.NewScript(luaNow + `
redis.call('HSET', KEYS[2], 'attempts', ARGV[2], 'lastError', ARGV[3])
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[4]), ARGV[1])
return 1`)

// RetryEvent records a failed attempt and sets the next one in after now, by
// Redis's clock.
func (r *Client) RetryEvent(ctx context.Context, id string, attempts int, reason string, in time.Duration) error {
	err := retryScript.Run(ctx, r.c, []string{OutboxKey, OutboxEventKey(id)}, id, attempts, reason, millis(in)).Err()
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

// requeueEventScript makes event ARGV[1] (hash KEYS[3]) due at Redis's now
// with its attempts reset, off the dead list KEYS[2]; 0 when it has no hash.
var requeueEventScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[3]) == 0 then return 0 end
` + luaNow + `
redis.call('HSET', KEYS[3], 'attempts', 0)
redis.call('LREM', KEYS[2], 0, ARGV[1])
redis.call('ZADD', KEYS[1], now, ARGV[1])
return 1`)

// RequeueEvent schedules a buried event again, due at once, with its attempts
// reset.
func (r *Client) RequeueEvent(ctx context.Context, id string) error {
	n, err := requeueEventScript.Run(ctx, r.c, []string{OutboxKey, OutboxDeadKey, OutboxEventKey(id)}, id).Int()
	if err != nil {
		return wrap("outbox requeue "+id, err)
	}
	if n == 0 {
		return fmt.Errorf("outbox requeue %s: no such event", id)
	}
	return nil
}

// GivenUp returns the events of the outbox's dead list (refused or past the
// schedule), the one given up last first. An id whose hash is gone is left out.
func (r *Client) GivenUp(ctx context.Context) ([]OutboxEvent, error) {
	ids, err := r.c.LRange(ctx, OutboxDeadKey, 0, -1).Result()
	if err != nil {
		return nil, wrap("read "+OutboxDeadKey, err)
	}
	p := r.c.Pipeline()
	cmds := make([]*redis.MapStringStringCmd, len(ids))
	for i, id := range ids {
		cmds[i] = p.HGetAll(ctx, OutboxEventKey(id))
	}
	if len(ids) > 0 {
		if _, err := p.Exec(ctx); err != nil {
			return nil, wrap("read "+OutboxDeadKey, err)
		}
	}
	out := make([]OutboxEvent, 0, len(ids))
	for i, id := range ids {
		if h := cmds[i].Val(); len(h) > 0 {
			out = append(out, outboxEvent(id, h["body"], h["taskId"], h["type"], h["attempts"], h["lastError"]))
		}
	}
	return out, nil
}

// Where a webhook event is in the outbox (EventState.State).
const (
	EventWaiting = "waiting"  // in the schedule: due, or retrying later
	EventGivenUp = "given up" // on the dead list, for an operator to redeliver
	EventStaged  = "staged"   // written before its task's row, not released yet
)

// EventState is a webhook event and where it is. A delivered event is gone
// from Redis: only the lifecycle lines (WEBHOOK_SENT) remember it.
type EventState struct {
	OutboxEvent
	State string
	Due   time.Time // next attempt, by Redis's clock; zero unless waiting
}

// TaskEvents returns the webhook events of taskID that the outbox holds:
// waiting, given up, or staged.
func (r *Client) TaskEvents(ctx context.Context, taskID int64) ([]EventState, error) {
	p := r.c.Pipeline()
	waiting := p.ZRangeWithScores(ctx, OutboxKey, 0, -1)
	dead := p.LRange(ctx, OutboxDeadKey, 0, -1)
	staged := p.HGet(ctx, OutboxStagedKey, itoa(taskID))
	if _, err := p.Exec(ctx); err != nil && !IsNil(err) {
		return nil, wrap("read the outbox", err)
	}
	var states []EventState
	for _, z := range waiting.Val() {
		id, _ := z.Member.(string)
		states = append(states, EventState{OutboxEvent: OutboxEvent{ID: id}, State: EventWaiting, Due: time.UnixMilli(int64(z.Score)).UTC()})
	}
	for _, id := range dead.Val() {
		states = append(states, EventState{OutboxEvent: OutboxEvent{ID: id}, State: EventGivenUp})
	}
	if id := staged.Val(); id != "" {
		states = append(states, EventState{OutboxEvent: OutboxEvent{ID: id}, State: EventStaged})
	}
	if len(states) == 0 {
		return nil, nil
	}
	p = r.c.Pipeline()
	hashes := make([]*redis.MapStringStringCmd, len(states))
	for i, s := range states {
		hashes[i] = p.HGetAll(ctx, OutboxEventKey(s.ID))
	}
	if _, err := p.Exec(ctx); err != nil {
		return nil, wrap("read the outbox", err)
	}
	var out []EventState
	for i, s := range states {
		h := hashes[i].Val()
		if h["taskId"] != itoa(taskID) {
			continue
		}
		s.OutboxEvent = outboxEvent(s.ID, h["body"], h["taskId"], h["type"], h["attempts"], h["lastError"])
		out = append(out, s)
	}
	return out, nil
}
