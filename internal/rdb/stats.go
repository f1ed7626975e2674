package rdb

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Depths is how much waits where: one pipeline, one round trip.
type Depths struct {
	Queue      int64 // the web app's queue
	Delayed    int64 // retries waiting for their backoff
	Dead       int64 // dead letters
	Outbox     int64 // webhook events waiting for delivery
	OutboxDead int64 // webhook events given up, waiting for an operator
}

// Depths reads the depths of the queue, the delayed set, the dead letters and
// the outbox.
func (r *Client) Depths(ctx context.Context) (Depths, error) {
	p := r.c.Pipeline()
	q := p.LLen(ctx, r.queue)
	delayed := p.ZCard(ctx, DelayedKey)
	dead := p.LLen(ctx, DeadKey)
	ob := p.ZCard(ctx, OutboxKey)
	obDead := p.LLen(ctx, OutboxDeadKey)
	if _, err := p.Exec(ctx); err != nil {
		return Depths{}, wrap("read depths", err)
	}
	return Depths{Queue: q.Val(), Delayed: delayed.Val(), Dead: dead.Val(), Outbox: ob.Val(), OutboxDead: obDead.Val()}, nil
}

// Worker is a worker as Redis knows it: its heartbeat, its info and its jobs
// in hand.
type Worker struct {
	ID        string
	LastBeat  time.Time     // zero without a heartbeat
	Age       time.Duration // of the heartbeat, by Redis's clock; zero without one
	Info      WorkerInfo
	InHand    int64
	Heartbeat bool // false: a processing list and no heartbeat entry
}

// Workers lists the workers with a heartbeat or a processing list, by id. The
// age of each heartbeat is measured on Redis's clock, which wrote it.
func (r *Client) Workers(ctx context.Context) ([]Worker, error) {
	p := r.c.Pipeline()
	zs := p.ZRangeWithScores(ctx, WorkersKey, 0, -1)
	now := p.Time(ctx)
	if _, err := p.Exec(ctx); err != nil {
		return nil, wrap("read "+WorkersKey, err)
	}
	var out []Worker
	seen := map[string]bool{}
	for _, z := range zs.Val() {
		id, _ := z.Member.(string)
		last := time.UnixMilli(int64(z.Score)).UTC()
		out = append(out, Worker{ID: id, LastBeat: last, Age: max(now.Val().Sub(last), 0), Heartbeat: true})
		seen[id] = true
	}
	// Processing lists of workers without a heartbeat: jobs a recoverer has yet
	// to give back.
	lists, err := r.workersWithLists(ctx)
	if err != nil {
		return nil, err
	}
	for _, id := range lists {
		if !seen[id] {
			out = append(out, Worker{ID: id})
			seen[id] = true
		}
	}
	slices.SortFunc(out, func(a, b Worker) int { return strings.Compare(a.ID, b.ID) })
	if len(out) == 0 {
		return out, nil
	}
	p = r.c.Pipeline()
	lens := make([]*redis.IntCmd, len(out))
	infos := make([]*redis.MapStringStringCmd, len(out))
	for i, w := range out {
		lens[i] = p.LLen(ctx, ProcessingKey(w.ID))
		infos[i] = p.HGetAll(ctx, WorkerInfoPrefix+w.ID)
	}
	if _, err := p.Exec(ctx); err != nil {
		return nil, wrap("read workers", err)
	}
	for i := range out {
		out[i].InHand = lens[i].Val()
		out[i].Info = workerInfo(infos[i].Val())
	}
	return out, nil
}

// Whereabouts is where the jobs of one task are in Redis.
type Whereabouts struct {
	// Queued is the place in the queue of a job of the task waiting there, 1
	// for the job taken next; 0 when none waits.
	Queued   int
	InHandOf []string  // workers whose processing list holds a job of the task
	RetryAt  time.Time // when a retry waiting in the delayed set is due; zero if none
}

// Whereabouts finds the jobs of a task in the queue, the processing lists and
// the delayed set; taskOf reads the task id of a payload (package job's).
func (r *Client) Whereabouts(ctx context.Context, taskID int64, taskOf func(payload string) int64) (Whereabouts, error) {
	w := Whereabouts{InHandOf: []string{}}
	queued, err := r.c.LRange(ctx, r.queue, 0, -1).Result()
	if err != nil {
		return w, wrap("read "+r.queue, err)
	}
	for i := len(queued) - 1; i >= 0; i-- { // workers take from the right end
		if taskOf(queued[i]) == taskID {
			w.Queued = len(queued) - i
			break
		}
	}
	ids, err := r.workersWithLists(ctx)
	if err != nil {
		return w, err
	}
	slices.Sort(ids)
	for _, id := range ids {
		jobs, err := r.c.LRange(ctx, ProcessingKey(id), 0, -1).Result()
		if err != nil {
			return w, wrap("read "+ProcessingKey(id), err)
		}
		if slices.ContainsFunc(jobs, func(p string) bool { return taskOf(p) == taskID }) {
			w.InHandOf = append(w.InHandOf, id)
		}
	}
	delayed, err := r.Delayed(ctx)
	if err != nil {
		return w, err
	}
	for _, d := range delayed {
		if taskOf(d.Payload) == taskID {
			w.RetryAt = d.Due.UTC()
			break
		}
	}
	return w, nil
}

// Now is Redis's clock: the due times and heartbeats it keeps are on it.
func (r *Client) Now(ctx context.Context) (time.Time, error) {
	t, err := r.c.Time(ctx).Result()
	return t, wrap("read the time of Redis", err)
}
