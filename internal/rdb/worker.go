package rdb

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// WorkerInfo describes a live worker, as its heartbeat writes it.
type WorkerInfo struct {
	Host        string
	PID         int
	Concurrency int
	// BootID is the kernel's boot id of the worker's machine: cloned virtual
	// machines share a host name, not a boot id. Empty from an older worker.
	BootID string
	// Token is a random value of the process, beside its worker id: a beat
	// that finds another token in the info was not the last to beat.
	Token   string
	Started string // RFC 3339, when the process started (its own clock, for people)
}

// beatScript writes a heartbeat on Redis's clock: the worker's score in the
// workers set is TIME in ms, and its info hash is rewritten and expires after
// ARGV[2] ms. It returns the token the info held before ("" if none).
//
// KEYS[1] workers zset, KEYS[2] the worker's info hash; ARGV[1] worker id,
// ARGV[2] ttl (ms), ARGV[3] token, ARGV[4] host, ARGV[5] pid, ARGV[6] boot id,
// ARGV[7] concurrency, ARGV[8] started.
var beatScript = redis.NewScript(luaNow + `
local old = redis.call('HGET', KEYS[2], 'token')
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('HSET', KEYS[2], 'host', ARGV[4], 'pid', ARGV[5], 'boot', ARGV[6], 'token', ARGV[3],
  'concurrency', ARGV[7], 'beat', now)
if old ~= ARGV[3] then redis.call('HSET', KEYS[2], 'started', ARGV[8]) end
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return old or ''`)

// Beat records a heartbeat of this worker, at Redis's time, with its info; the
// info expires after ttl unless beaten again. prev is the token the info held
// before the beat: another one than info.Token means another process beat
// under this worker id since this one last did (or the info had expired).
func (r *Client) Beat(ctx context.Context, info WorkerInfo, ttl time.Duration) (prev string, err error) {
	prev, err = beatScript.Run(ctx, r.c, []string{WorkersKey, WorkerInfoPrefix + r.worker},
		r.worker, millis(ttl), info.Token, info.Host, info.PID, info.BootID, info.Concurrency, info.Started).Text()
	return prev, wrap("heartbeat", err)
}

// lastBeatScript answers the age of worker ARGV[1]'s heartbeat by Redis's
// clock (ms; -1 without one), then its info hash, flat.
var lastBeatScript = redis.NewScript(luaNow + `
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
local age = -1
if score then age = math.max(now - tonumber(score), 0) end
local out = redis.call('HGETALL', KEYS[2])
table.insert(out, 1, age)
return out`)

// LastBeat returns how long ago, by Redis's clock, worker id last beat, and
// its info; ok is false when it has no heartbeat.
func (r *Client) LastBeat(ctx context.Context, id string) (age time.Duration, info WorkerInfo, ok bool, err error) {
	res, err := lastBeatScript.Run(ctx, r.c, []string{WorkersKey, WorkerInfoPrefix + id}, id).Slice()
	if err != nil {
		return 0, WorkerInfo{}, false, wrap("heartbeat", err)
	}
	if age, ok = msDuration(first(res)); !ok || age < 0 {
		return 0, WorkerInfo{}, false, nil
	}
	h := map[string]string{}
	for i := 1; i+1 < len(res); i += 2 {
		k, _ := res[i].(string)
		v, _ := res[i+1].(string)
		h[k] = v
	}
	return age, workerInfo(h), true, nil
}

func workerInfo(h map[string]string) WorkerInfo {
	pid, _ := strconv.Atoi(h["pid"])
	conc, _ := strconv.Atoi(h["concurrency"])
	return WorkerInfo{Host: h["host"], PID: pid, Concurrency: conc, Started: h["started"], BootID: h["boot"], Token: h["token"]}
}

// Leave removes this worker from the live ones after a clean stop, when its
// processing list is empty; a non-empty list stays for recovery, and Leave
// says so in its error.
func (r *Client) Leave(ctx context.Context) error {
	n, err := r.InHandCount(ctx)
	if err != nil {
		return wrap("heartbeat leave", err)
	}
	if n > 0 {
		return wrap("heartbeat leave", &inHandError{n: n, key: r.processing})
	}
	_, err = r.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.ZRem(ctx, WorkersKey, r.worker)
		p.Del(ctx, WorkerInfoPrefix+r.worker)
		return nil
	})
	return wrap("heartbeat leave", err)
}

type inHandError struct {
	n   int64
	key string
}

func (e *inHandError) Error() string { return strconv.FormatInt(e.n, 10) + " jobs still in " + e.key }

// recoverScript gives back the processing list of a worker whose heartbeat is
// older than the lease by Redis's clock (or that has none), in one step: the jobs go to the head
// of the queue, oldest taken next, and the worker is forgotten. Checking the
// heartbeat inside the script means a worker that beats again in the meantime
// keeps its jobs.
//
// KEYS[1] workers zset, KEYS[2] the processing list, KEYS[3] the queue,
// KEYS[4] the worker's info hash; ARGV[1] worker id, ARGV[2] lease (ms).
var recoverScript = redis.NewScript(luaNow + `
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if score and tonumber(score) > now - tonumber(ARGV[2]) then
  return {}
end
local moved = {}
while true do
  local job = redis.call('LMOVE', KEYS[2], KEYS[3], 'LEFT', 'RIGHT')
  if not job then break end
  table.insert(moved, job)
end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[4])
return moved
`)

// suspectsScript lists the workers whose heartbeat is older than ARGV[1] ms by
// Redis's clock.
var suspectsScript = redis.NewScript(luaNow + `
return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[1]))`)

// Suspects returns the ids of workers that may be dead: a heartbeat older than
// lease by Redis's clock, or a processing list and no heartbeat at all. This
// worker is never among them.
func (r *Client) Suspects(ctx context.Context, lease time.Duration) ([]string, error) {
	seen := map[string]bool{}
	dead, err := suspectsScript.Run(ctx, r.c, []string{WorkersKey}, millis(lease)).StringSlice()
	if err != nil {
		return nil, wrap("read "+WorkersKey, err)
	}
	for _, id := range dead {
		seen[id] = true
	}
	lists, err := r.workersWithLists(ctx)
	if err != nil {
		return nil, err
	}
	for _, id := range lists {
		seen[id] = true
	}
	delete(seen, r.worker)
	out := make([]string, 0, len(seen))
	for id := range seen {
		out = append(out, id)
	}
	return out, nil
}

// workersWithLists returns the ids of the workers that have a processing list.
func (r *Client) workersWithLists(ctx context.Context) ([]string, error) {
	var ids []string
	iter := r.c.Scan(ctx, 0, ProcessingPrefix+"*", 200).Iterator()
	for iter.Next(ctx) {
		ids = append(ids, strings.TrimPrefix(iter.Val(), ProcessingPrefix))
	}
	return ids, wrap("scan processing lists", iter.Err())
}

// RecoverWorker gives the processing list of worker id back to the queue if its
// heartbeat is older than lease by Redis's clock (or it has none), forgets the
// worker and frees its task locks; it returns the jobs given back. The script
// checks the heartbeat again in the same step, so a worker that beat within
// the lease keeps its jobs.
func (r *Client) RecoverWorker(ctx context.Context, id string, lease time.Duration) ([]string, error) {
	moved, err := recoverScript.Run(ctx, r.c,
		[]string{WorkersKey, ProcessingKey(id), r.queue, WorkerInfoPrefix + id},
		id, millis(lease)).StringSlice()
	if err != nil {
		return nil, wrap("recover "+ProcessingKey(id), err)
	}
	if len(moved) > 0 {
		if _, err := r.FreeLocks(ctx, id); err != nil {
			return moved, err
		}
	}
	return moved, nil
}

// liveScript counts the workers whose heartbeat is younger than ARGV[1] ms by
// Redis's clock.
var liveScript = redis.NewScript(luaNow + `
return redis.call('ZCOUNT', KEYS[1], '(' .. (now - tonumber(ARGV[1])), '+inf')`)

// LiveWorkers counts the workers alive: a heartbeat younger than lease by
// Redis's clock, as the recoverers judge it (Suspects is the rest).
func (r *Client) LiveWorkers(ctx context.Context, lease time.Duration) (int64, error) {
	n, err := liveScript.Run(ctx, r.c, []string{WorkersKey}, millis(lease)).Int64()
	return n, wrap("count live workers in "+WorkersKey, err)
}
