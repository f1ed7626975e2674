package rdb

import (
	"cmp"
	"context"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

var (
	// acquireScript sets KEYS[1] to ARGV[2] for ARGV[3] ms when the key is
	// free, or when ARGV[1] is not empty and the value starts with it (a
	// leftover lock of this worker); it returns 1 when it set the key.
	acquireScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v and (ARGV[1] == '' or string.sub(v, 1, string.len(ARGV[1])) ~= ARGV[1]) then
  return 0
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1`)
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
	// freeScript deletes the locks among KEYS whose owner (the value's part
	// before "/") is ARGV[1].
	freeScript = redis.NewScript(`
local n = 0
for _, key in ipairs(KEYS) do
  local v = redis.call('GET', key)
  if v and string.sub(v, 1, string.len(ARGV[1]) + 1) == ARGV[1] .. '/' then
    redis.call('DEL', key)
    n = n + 1
  end
end
return n`)
)

// LockToken is the value a lock of this worker holds: "<worker id>/<suffix>",
// so that the locks of a dead worker can be freed with its jobs. The suffix is
// LockSuffix's, so that the console can say since when a task runs.
func (r *Client) LockToken(suffix string) string { return r.worker + "/" + suffix }

// AcquireLock sets the lock of taskID to token for ttl when it is free, or when
// it is a leftover of this worker (its value begins with this worker's id: its
// release failed while Redis was away, or an earlier process of this worker id
// held it). It reports whether it took the lock.
func (r *Client) AcquireLock(ctx context.Context, taskID int64, token string, ttl time.Duration) (bool, error) {
	leftover := "" // the prefix of this worker's leftover locks; none without an id
	if r.worker != "" {
		leftover = r.worker + "/"
	}
	ok, err := acquireScript.Run(ctx, r.c, []string{LockKey(taskID)}, leftover, token, ttl.Milliseconds()).Bool()
	return ok, wrap("lock task "+itoa(taskID), err)
}

// RenewLock sets the lock of taskID to live ttl more when it still holds token;
// held is false when someone else's token is there (or none).
func (r *Client) RenewLock(ctx context.Context, taskID int64, token string, ttl time.Duration) (held bool, err error) {
	n, err := renewScript.Run(ctx, r.c, []string{LockKey(taskID)}, token, ttl.Milliseconds()).Int64()
	if err != nil {
		return false, wrap("renew lock of task "+itoa(taskID), err)
	}
	return n != -1, nil
}

// ReleaseLock deletes the lock of taskID if it still holds token.
func (r *Client) ReleaseLock(ctx context.Context, taskID int64, token string) error {
	return wrap("release "+LockKey(taskID), releaseScript.Run(ctx, r.c, []string{LockKey(taskID)}, token).Err())
}

// LockTTL is how long the lock of taskID lives unless renewed; 0 when nobody
// holds it.
func (r *Client) LockTTL(ctx context.Context, taskID int64) (time.Duration, error) {
	ttl, err := r.c.PTTL(ctx, LockKey(taskID)).Result()
	if err != nil {
		return 0, wrap("read "+LockKey(taskID), err)
	}
	return max(ttl, 0), nil
}

// FreeLocks deletes the task locks held by worker owner, which is dead: its jobs
// are being given back and must not wait for the locks to expire.
func (r *Client) FreeLocks(ctx context.Context, owner string) (int, error) {
	total := 0
	iter := r.c.Scan(ctx, 0, LockPrefix+"*", 200).Iterator()
	var keys []string
	flush := func() error {
		if len(keys) == 0 {
			return nil
		}
		n, err := freeScript.Run(ctx, r.c, keys, owner).Int()
		total += n
		keys = keys[:0]
		return err
	}
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
		if len(keys) == 100 {
			if err := flush(); err != nil {
				return total, wrap("free locks of "+owner, err)
			}
		}
	}
	if err := iter.Err(); err != nil {
		return total, wrap("free locks of "+owner, err)
	}
	return total, wrap("free locks of "+owner, flush())
}

// TaskLock is a task lock as the console shows it: the task runs on Worker
// since Since.
type TaskLock struct {
	TaskID int64
	Worker string    // the owner's worker id
	Since  time.Time // when the lock was taken, by the owner's clock; zero when the token does not say
	TTL    time.Duration
}

// lockSince separates the time a lock was taken from its token's suffix:
// LockSuffix writes "<random>@<Unix ms>".
const lockSince = "@"

// LockSuffix is the suffix of a lock token taken at t: random, then the time
// (the owner's clock, for people: no decision reads it).
func LockSuffix(random string, t time.Time) string {
	return random + lockSince + strconv.FormatInt(t.UnixMilli(), 10)
}

// Locks lists the task locks held now: the tasks running, by task id.
func (r *Client) Locks(ctx context.Context) ([]TaskLock, error) {
	var keys []string
	iter := r.c.Scan(ctx, 0, LockPrefix+"*", 200).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		return nil, wrap("scan task locks", err)
	}
	if len(keys) == 0 {
		return nil, nil
	}
	p := r.c.Pipeline()
	vals := make([]*redis.StringCmd, len(keys))
	ttls := make([]*redis.DurationCmd, len(keys))
	for i, k := range keys {
		vals[i] = p.Get(ctx, k)
		ttls[i] = p.PTTL(ctx, k)
	}
	if _, err := p.Exec(ctx); err != nil && !IsNil(err) {
		return nil, wrap("read task locks", err)
	}
	out := make([]TaskLock, 0, len(keys))
	for i, k := range keys {
		id, err := strconv.ParseInt(strings.TrimPrefix(k, LockPrefix), 10, 64)
		if err != nil || vals[i].Err() != nil { // not a task's, or released meanwhile
			continue
		}
		l := TaskLock{TaskID: id, TTL: max(ttls[i].Val(), 0)}
		l.Worker, l.Since = parseToken(vals[i].Val())
		out = append(out, l)
	}
	slices.SortFunc(out, func(a, b TaskLock) int { return cmp.Compare(a.TaskID, b.TaskID) })
	return out, nil
}

// parseToken reads the owner and the time taken of a lock token,
// "<worker id>/<random>@<Unix ms>".
func parseToken(token string) (worker string, since time.Time) {
	i := strings.LastIndex(token, "/")
	if i < 0 {
		return "", time.Time{}
	}
	worker, suffix := token[:i], token[i+1:]
	if j := strings.LastIndex(suffix, lockSince); j >= 0 {
		if ms, err := strconv.ParseInt(suffix[j+1:], 10, 64); err == nil {
			since = time.UnixMilli(ms).UTC()
		}
	}
	return worker, since
}
