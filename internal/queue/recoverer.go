package queue

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/coursedl/worker/internal/trouble"
)

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

// Recoverer gives the jobs of dead workers back to the queue. Every worker runs
// one; the script makes concurrent passes safe.
type Recoverer struct {
	RDB   redis.UniversalClient
	Queue string // redis.queue
	Self  string // this worker's id, never recovered by itself
	Lease time.Duration
	Every time.Duration
	Log   *zap.Logger
	Now   func() time.Time
	// OnRecovered is called for each job given back, with the dead worker's id.
	OnRecovered func(payload, worker string)
}

// Run passes at once, then every Every, until ctx ends.
func (r *Recoverer) Run(ctx context.Context) error {
	r.defaults()
	t := time.NewTicker(r.Every)
	defer t.Stop()
	tr := trouble.New(r.Log, "recoverer failing", "recoverer back")
	for {
		pctx, cancel := context.WithTimeout(ctx, r.Every)
		_, err := r.Pass(pctx)
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		tr.Report(err)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (r *Recoverer) defaults() {
	if r.Lease <= 0 {
		r.Lease = DefaultLease
	}
	if r.Every <= 0 {
		r.Every = DefaultRecoverEvery
	}
	if r.Now == nil {
		r.Now = time.Now
	}
	if r.Log == nil {
		r.Log = zap.NewNop()
	}
}

// Pass recovers once: workers whose heartbeat expired, and processing lists that
// belong to no live worker. It returns how many jobs went back.
func (r *Recoverer) Pass(ctx context.Context) (int, error) {
	r.defaults()
	cutoff := r.Now().Add(-r.Lease).UnixMilli()
	candidates := map[string]bool{}
	dead, err := r.RDB.ZRangeByScore(ctx, WorkersKey, &redis.ZRangeBy{Min: "-inf", Max: itoa(cutoff)}).Result()
	if err != nil {
		return 0, err
	}
	for _, id := range dead {
		candidates[id] = true
	}
	// Lists of workers that left no heartbeat at all.
	iter := r.RDB.Scan(ctx, 0, ProcessingKey("*"), 100).Iterator()
	for iter.Next(ctx) {
		candidates[strings.TrimPrefix(iter.Val(), ProcessingKey(""))] = true
	}
	if err := iter.Err(); err != nil {
		return 0, err
	}
	delete(candidates, r.Self)
	total := 0
	for id := range candidates {
		moved, err := recoverScript.Run(ctx, r.RDB,
			[]string{WorkersKey, ProcessingKey(id), r.Queue, WorkerInfoPrefix + id},
			id, cutoff).StringSlice()
		if err != nil {
			return total, err
		}
		if len(moved) > 0 {
			if _, err := FreeLocks(ctx, r.RDB, id); err != nil {
				return total, err
			}
		}
		for _, p := range moved {
			r.Log.Warn("job of a dead worker recovered", zap.String("worker", id))
			if r.OnRecovered != nil {
				r.OnRecovered(p, id)
			}
		}
		total += len(moved)
	}
	return total, nil
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
