package ctl

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/coursedl/worker/internal/outbox"
	"github.com/coursedl/worker/internal/queue"
)

// Stats is what `workerctl stats` shows: how much waits where, and the workers.
type Stats struct {
	Queue   QueueDepth    `json:"queue"`
	Delayed int64         `json:"delayed"` // retries waiting for their backoff
	Dead    int64         `json:"dead"`    // dl:dead
	Outbox  OutboxDepth   `json:"outbox"`
	Workers []WorkerState `json:"workers"`
}

// QueueDepth is the web app's queue.
type QueueDepth struct {
	Key   string `json:"key"`
	Depth int64  `json:"depth"`
}

// OutboxDepth is the webhook outbox.
type OutboxDepth struct {
	Waiting int64 `json:"waiting"` // dl:outbox
	Dead    int64 `json:"dead"`    // dl:outbox:dead
}

// Worker states.
const (
	WorkerLive        = "live"         // heartbeat within the lease
	WorkerStale       = "stale"        // heartbeat older than the lease: taken for dead
	WorkerNoHeartbeat = "no-heartbeat" // a processing list without a heartbeat entry
)

// WorkerState is one worker as Redis knows it.
type WorkerState struct {
	ID                  string     `json:"id"`
	State               string     `json:"state"`
	LastHeartbeat       *time.Time `json:"lastHeartbeat"`       // null without a heartbeat
	HeartbeatAgeSeconds *float64   `json:"heartbeatAgeSeconds"` // null without a heartbeat
	InHand              int64      `json:"inHand"`              // jobs in its processing list
	Host                string     `json:"host,omitempty"`
	PID                 int        `json:"pid,omitempty"`
	Concurrency         int        `json:"concurrency,omitempty"`
	Started             string     `json:"started,omitempty"`
}

// Stats reads the depths and the workers. A worker is listed when it has a
// heartbeat in dl:workers or jobs in a processing list.
func (t *Tool) Stats(ctx context.Context) (*Stats, error) {
	p := t.Redis.Pipeline()
	qlen := p.LLen(ctx, t.Queue)
	delayed := p.ZCard(ctx, queue.DelayedKey)
	dead := p.LLen(ctx, queue.DeadKey)
	obWaiting := p.ZCard(ctx, outbox.DueKey)
	obDead := p.LLen(ctx, outbox.DeadKey)
	beats := p.ZRangeWithScores(ctx, queue.WorkersKey, 0, -1)
	if _, err := p.Exec(ctx); err != nil {
		return nil, fmt.Errorf("read redis: %w", err)
	}
	s := &Stats{
		Queue:   QueueDepth{Key: t.Queue, Depth: qlen.Val()},
		Delayed: delayed.Val(),
		Dead:    dead.Val(),
		Outbox:  OutboxDepth{Waiting: obWaiting.Val(), Dead: obDead.Val()},
		Workers: []WorkerState{},
	}
	now := t.now()
	seen := map[string]bool{}
	for _, z := range beats.Val() {
		id, _ := z.Member.(string)
		last := time.UnixMilli(int64(z.Score)).UTC()
		age := now.Sub(last)
		ageSec := age.Seconds()
		w := WorkerState{ID: id, State: WorkerLive, LastHeartbeat: &last, HeartbeatAgeSeconds: &ageSec}
		if age > queue.DefaultLease {
			w.State = WorkerStale
		}
		s.Workers = append(s.Workers, w)
		seen[id] = true
	}
	// Processing lists of workers without a heartbeat: jobs a recoverer has yet
	// to give back, or a worker of a version without heartbeats.
	prefix := queue.ProcessingKey("")
	iter := t.Redis.Scan(ctx, 0, prefix+"*", 200).Iterator()
	for iter.Next(ctx) {
		id := strings.TrimPrefix(iter.Val(), prefix)
		if !seen[id] {
			s.Workers = append(s.Workers, WorkerState{ID: id, State: WorkerNoHeartbeat})
			seen[id] = true
		}
	}
	if err := iter.Err(); err != nil {
		return nil, fmt.Errorf("scan processing lists: %w", err)
	}
	slices.SortFunc(s.Workers, func(a, b WorkerState) int { return strings.Compare(a.ID, b.ID) })

	p = t.Redis.Pipeline()
	lens := make([]*redis.IntCmd, len(s.Workers))
	infos := make([]*redis.MapStringStringCmd, len(s.Workers))
	for i, w := range s.Workers {
		lens[i] = p.LLen(ctx, queue.ProcessingKey(w.ID))
		infos[i] = p.HGetAll(ctx, queue.WorkerInfoPrefix+w.ID)
	}
	if len(s.Workers) > 0 {
		if _, err := p.Exec(ctx); err != nil {
			return nil, fmt.Errorf("read workers: %w", err)
		}
	}
	for i := range s.Workers {
		w := &s.Workers[i]
		w.InHand = lens[i].Val()
		info := infos[i].Val()
		w.Host = info["host"]
		w.PID, _ = strconv.Atoi(info["pid"])
		w.Concurrency, _ = strconv.Atoi(info["concurrency"])
		w.Started = info["started"]
	}
	return s, nil
}

// WriteText renders the stats for a person.
func (s *Stats) WriteText(w io.Writer) error {
	tw := table(w)
	fmt.Fprintf(tw, "queue %s\t%d\n", s.Queue.Key, s.Queue.Depth)
	fmt.Fprintf(tw, "delayed retries\t%d\n", s.Delayed)
	fmt.Fprintf(tw, "dead letters\t%d\n", s.Dead)
	fmt.Fprintf(tw, "webhooks waiting\t%d\n", s.Outbox.Waiting)
	fmt.Fprintf(tw, "webhooks dead\t%d\n", s.Outbox.Dead)
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	if len(s.Workers) == 0 {
		_, err := fmt.Fprintln(w, "no workers: none has a heartbeat or jobs in hand")
		return err
	}
	tw = table(w)
	fmt.Fprintln(tw, "WORKER\tSTATE\tHEARTBEAT\tIN HAND\tHOST\tPID\tSTARTED")
	for _, wk := range s.Workers {
		beat := "-"
		if wk.HeartbeatAgeSeconds != nil {
			beat = ago(time.Duration(*wk.HeartbeatAgeSeconds * float64(time.Second)))
		}
		hand := strconv.FormatInt(wk.InHand, 10)
		if wk.Concurrency > 0 {
			hand += "/" + strconv.Itoa(wk.Concurrency)
		}
		pid := "-"
		if wk.PID > 0 {
			pid = strconv.Itoa(wk.PID)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", wk.ID, wk.State, beat, hand, dash(wk.Host), pid, dash(wk.Started))
	}
	return tw.Flush()
}
