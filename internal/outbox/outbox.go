// Package outbox keeps webhook events in Redis until the web app has accepted them,
// and delivers them on the Standard Webhooks retry schedule. A task puts its event
// in the outbox and ends; the Deliverer of any worker sends it, so an event outlives
// a web app that is down and a worker that restarts, and keeps its webhook-id.
//
// Redis keys: the sorted set "dl:outbox" (event id by the Unix milliseconds of its
// next attempt), a hash "dl:outbox:event:<id>" per event, and the list
// "dl:outbox:dead" of the ids an operator must look at (refused by the web app, or
// past the schedule); their hashes are kept.
package outbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/coursedl/worker/internal/notify"
)

// Redis keys of the outbox.
const (
	DueKey  = "dl:outbox"
	DeadKey = "dl:outbox:dead"
	// StagedKey is a hash: task id -> the id of an event written before the
	// task's row and not yet due (see Stage).
	StagedKey = "dl:outbox:staged"
)

// EventKey is the hash holding event id.
func EventKey(id string) string { return "dl:outbox:event:" + id }

// Entry is one event waiting in the outbox.
type Entry struct {
	ID        string
	Body      []byte
	TaskID    int64
	Type      string
	Attempts  int    // attempts made so far
	LastError string // of the last attempt
}

// Store is the outbox's Redis side.
type Store struct {
	rdb redis.UniversalClient
}

// NewStore returns the outbox on rdb.
func NewStore(rdb redis.UniversalClient) *Store { return &Store{rdb: rdb} }

// Add stores ev under the webhook-id id, due at once. Adding an id that is already
// waiting changes nothing, so a task that is run again cannot reset its event.
func (s *Store) Add(ctx context.Context, id string, ev notify.Event, now time.Time) error {
	body, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		key := EventKey(id)
		p.HSetNX(ctx, key, "body", body)
		p.HSetNX(ctx, key, "taskId", ev.TaskID)
		p.HSetNX(ctx, key, "type", ev.Type)
		p.HSetNX(ctx, key, "attempts", 0)
		p.ZAddNX(ctx, DueKey, redis.Z{Score: float64(now.UnixMilli()), Member: id})
		return nil
	})
	if err != nil {
		return fmt.Errorf("outbox add %s: %w", id, err)
	}
	return nil
}

// Stage writes ev under id without making it due, and notes it as the staged
// event of its task. The pipeline stages the event, then writes the row, then
// calls Release: a crash between the row and the release leaves the event staged,
// and ReleaseStaged sends it when the task's job comes back. Staging again
// replaces the body.
func (s *Store) Stage(ctx context.Context, id string, ev notify.Event) error {
	body, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		key := EventKey(id)
		p.HSet(ctx, key, "body", body, "taskId", ev.TaskID, "type", ev.Type)
		p.HSetNX(ctx, key, "attempts", 0)
		p.HSet(ctx, StagedKey, strconv.FormatInt(ev.TaskID, 10), id)
		return nil
	})
	if err != nil {
		return fmt.Errorf("outbox stage %s: %w", id, err)
	}
	return nil
}

// Release makes the staged event id of taskID due now.
func (s *Store) Release(ctx context.Context, id string, taskID int64, now time.Time) error {
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.ZAddNX(ctx, DueKey, redis.Z{Score: float64(now.UnixMilli()), Member: id})
		p.HDel(ctx, StagedKey, strconv.FormatInt(taskID, 10))
		return nil
	})
	if err != nil {
		return fmt.Errorf("outbox release %s: %w", id, err)
	}
	return nil
}

// releaseClaimedScript is Release with the event claimed by the caller until
// ARGV[3] (Unix ms) and returned whole, in one round trip: id ARGV[1] of task
// ARGV[2] is added to the due set unless it is there already (then false is
// returned and the set is left as it was), its staged mark removed, and its
// fields (event hash ARGV[4]) returned as Claim returns them.
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
func (s *Store) ReleaseClaimed(ctx context.Context, id string, taskID int64, now time.Time, lease time.Duration) (e Entry, ok bool, err error) {
	f, err := releaseClaimedScript.Run(ctx, s.rdb, []string{DueKey, StagedKey},
		id, taskID, now.Add(lease).UnixMilli(), EventKey(id)).StringSlice()
	switch {
	case errors.Is(err, redis.Nil):
		return Entry{}, false, nil
	case err != nil:
		return Entry{}, false, fmt.Errorf("outbox release %s: %w", id, err)
	case len(f) != 5:
		return Entry{}, false, fmt.Errorf("outbox release %s: %d fields", id, len(f))
	}
	return entry(id, f[0], f[1], f[2], f[3], f[4]), true, nil
}

// Due makes event id due at once (one released claimed that its deliverer
// could not take).
func (s *Store) Due(ctx context.Context, id string, now time.Time) error {
	if err := s.rdb.ZAddXX(ctx, DueKey, redis.Z{Score: float64(now.UnixMilli()), Member: id}).Err(); err != nil {
		return fmt.Errorf("outbox due %s: %w", id, err)
	}
	return nil
}

// ReleaseStaged releases the event staged for taskID, if one is; it reports
// whether there was one.
func (s *Store) ReleaseStaged(ctx context.Context, taskID int64, now time.Time) (bool, error) {
	id, err := s.rdb.HGet(ctx, StagedKey, strconv.FormatInt(taskID, 10)).Result()
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("outbox staged of task %d: %w", taskID, err)
	}
	return true, s.Release(ctx, id, taskID, now)
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

// Claim leases up to n due events until now+lease and returns them, and when
// the earliest event left in the outbox is due (zero if there is none; the
// events just claimed count, due at the end of their lease).
func (s *Store) Claim(ctx context.Context, now time.Time, lease time.Duration, n int) ([]Entry, time.Time, error) {
	flat, err := claimScript.Run(ctx, s.rdb, []string{DueKey},
		now.UnixMilli(), now.Add(lease).UnixMilli(), n, EventKey("")).StringSlice()
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("outbox claim: %w", err)
	}
	var next time.Time
	if len(flat) > 0 && flat[0] != "" {
		if ms, err := strconv.ParseFloat(flat[0], 64); err == nil {
			next = time.UnixMilli(int64(ms))
		}
	}
	out := make([]Entry, 0, len(flat)/6)
	for i := 1; i+5 < len(flat); i += 6 {
		out = append(out, entry(flat[i], flat[i+1], flat[i+2], flat[i+3], flat[i+4], flat[i+5]))
	}
	return out, next, nil
}

func entry(id, body, taskID, typ, attempts, lastError string) Entry {
	tid, _ := strconv.ParseInt(taskID, 10, 64)
	n, _ := strconv.Atoi(attempts)
	return Entry{ID: id, Body: []byte(body), TaskID: tid, Type: typ, Attempts: n, LastError: lastError}
}

// Get reads event id; redis.Nil when there is none.
func (s *Store) Get(ctx context.Context, id string) (Entry, error) {
	h, err := s.rdb.HGetAll(ctx, EventKey(id)).Result()
	if err != nil {
		return Entry{}, fmt.Errorf("outbox read %s: %w", id, err)
	}
	if len(h) == 0 {
		return Entry{}, redis.Nil
	}
	return entry(id, h["body"], h["taskId"], h["type"], h["attempts"], h["lastError"]), nil
}

// Delivered removes an event the web app accepted.
func (s *Store) Delivered(ctx context.Context, id string) error {
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.ZRem(ctx, DueKey, id)
		p.Del(ctx, EventKey(id))
		return nil
	})
	if err != nil {
		return fmt.Errorf("outbox delivered %s: %w", id, err)
	}
	return nil
}

// Retry records a failed attempt and sets the next one at next.
func (s *Store) Retry(ctx context.Context, id string, attempts int, reason string, next time.Time) error {
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, EventKey(id), "attempts", attempts, "lastError", reason)
		p.ZAdd(ctx, DueKey, redis.Z{Score: float64(next.UnixMilli()), Member: id})
		return nil
	})
	if err != nil {
		return fmt.Errorf("outbox retry %s: %w", id, err)
	}
	return nil
}

// Bury takes an event out of the schedule and lists it for an operator; its hash
// stays, so it can be delivered again with Requeue.
func (s *Store) Bury(ctx context.Context, id string, attempts int, reason string) error {
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, EventKey(id), "attempts", attempts, "lastError", reason)
		p.ZRem(ctx, DueKey, id)
		p.LRem(ctx, DeadKey, 0, id)
		p.LPush(ctx, DeadKey, id)
		return nil
	})
	if err != nil {
		return fmt.Errorf("outbox bury %s: %w", id, err)
	}
	return nil
}

// Requeue schedules a buried event again, due at once, with its attempts reset.
func (s *Store) Requeue(ctx context.Context, id string, now time.Time) error {
	n, err := s.rdb.Exists(ctx, EventKey(id)).Result()
	if err != nil {
		return fmt.Errorf("outbox requeue %s: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("outbox requeue %s: no such event", id)
	}
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, EventKey(id), "attempts", 0)
		p.LRem(ctx, DeadKey, 0, id)
		p.ZAdd(ctx, DueKey, redis.Z{Score: float64(now.UnixMilli()), Member: id})
		return nil
	})
	if err != nil {
		return fmt.Errorf("outbox requeue %s: %w", id, err)
	}
	return nil
}

// Depth returns how many events wait for delivery and how many are buried.
func (s *Store) Depth(ctx context.Context) (waiting, dead int64, err error) {
	p := s.rdb.Pipeline()
	w := p.ZCard(ctx, DueKey)
	d := p.LLen(ctx, DeadKey)
	if _, err := p.Exec(ctx); err != nil {
		return 0, 0, fmt.Errorf("outbox depth: %w", err)
	}
	return w.Val(), d.Val(), nil
}
