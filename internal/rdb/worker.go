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
	Started     string // RFC 3339, the first beat of this registration
}

// Beat records a heartbeat of this worker at now, with its info; the info
// expires after ttl unless beaten again.
func (r *Client) Beat(ctx context.Context, info WorkerInfo, now time.Time, ttl time.Duration) error {
	_, err := r.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.ZAdd(ctx, WorkersKey, redis.Z{Score: float64(now.UnixMilli()), Member: r.worker})
		key := WorkerInfoPrefix + r.worker
		p.HSet(ctx, key, "host", info.Host, "pid", info.PID, "concurrency", info.Concurrency,
			"beat", now.UTC().Format(time.RFC3339))
		p.HSetNX(ctx, key, "started", now.UTC().Format(time.RFC3339))
		p.PExpire(ctx, key, ttl)
		return nil
	})
	return wrap("heartbeat", err)
}

// LastBeat returns when worker id last beat and its info; ok is false when it
// has no heartbeat.
func (r *Client) LastBeat(ctx context.Context, id string) (at time.Time, info WorkerInfo, ok bool, err error) {
	p := r.c.Pipeline()
	score := p.ZScore(ctx, WorkersKey, id)
	h := p.HGetAll(ctx, WorkerInfoPrefix+id)
	if _, err := p.Exec(ctx); err != nil && !IsNil(err) {
		return time.Time{}, WorkerInfo{}, false, wrap("heartbeat", err)
	}
	if IsNil(score.Err()) {
		return time.Time{}, WorkerInfo{}, false, nil
	}
	return time.UnixMilli(int64(score.Val())), workerInfo(h.Val()), true, nil
}

func workerInfo(h map[string]string) WorkerInfo {
	pid, _ := strconv.Atoi(h["pid"])
	conc, _ := strconv.Atoi(h["concurrency"])
	return WorkerInfo{Host: h["host"], PID: pid, Concurrency: conc, Started: h["started"]}
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
// older than the cutoff (or that has none), in one step: the jobs go to the head
// of the queue, oldest taken next, and the worker is forgotten. Checking the
// heartbeat inside the script means a worker that beats again in the meantime
// keeps its jobs.
//
// KEYS[1] workers zset, KEYS[2] the processing list, KEYS[3] the queue,
// KEYS[4] the worker's info hash; ARGV[1] worker id, ARGV[2] cutoff (ms).
var recoverScript = redis.NewScript(`
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if score and tonumber(score) > tonumber(ARGV[2]) then
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

// Suspects returns the ids of workers that may be dead: a heartbeat older than
// cutoff, or a processing list and no heartbeat at all. This worker is never
// among them.
func (r *Client) Suspects(ctx context.Context, cutoff time.Time) ([]string, error) {
	seen := map[string]bool{}
	dead, err := r.c.ZRangeByScore(ctx, WorkersKey, &redis.ZRangeBy{Min: "-inf", Max: itoa(cutoff.UnixMilli())}).Result()
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
// heartbeat is older than cutoff (or it has none), forgets the worker and frees
// its task locks; it returns the jobs given back. A worker that beat after
// cutoff keeps its jobs.
func (r *Client) RecoverWorker(ctx context.Context, id string, cutoff time.Time) ([]string, error) {
	moved, err := recoverScript.Run(ctx, r.c,
		[]string{WorkersKey, ProcessingKey(id), r.queue, WorkerInfoPrefix + id},
		id, cutoff.UnixMilli()).StringSlice()
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
