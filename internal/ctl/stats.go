package ctl

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/coursedl/worker/internal/queue"
	"github.com/coursedl/worker/internal/rdb"
)

// Stats is what `workerctl stats` shows: how much waits where, and the workers.
type Stats struct {
	Queue   QueueDepth    `json:"queue"`
	Delayed int64         `json:"delayed"` // retries waiting for their backoff
	Dead    int64         `json:"dead"`    // dl:dead
	Outbox  OutboxDepth   `json:"outbox"`
	Workers []WorkerState `json:"workers"`
	// Paused holds the pauses of intake in force, by worker ("*" for every
	// worker): why each does not take jobs.
	Paused map[string]string `json:"paused"`
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
	Version             string     `json:"version,omitempty"`
}

// Stats reads the depths and the workers. A worker is listed when it has a
// heartbeat in dl:workers or jobs in a processing list.
func (t *Tool) Stats(ctx context.Context) (*Stats, error) {
	d, err := t.Redis.Depths(ctx)
	if err != nil {
		return nil, err
	}
	workers, err := t.Redis.Workers(ctx)
	if err != nil {
		return nil, err
	}
	paused, err := t.Redis.Pauses(ctx)
	if err != nil {
		return nil, err
	}
	s := &Stats{
		Queue:   QueueDepth{Key: t.Redis.Queue(), Depth: d.Queue},
		Delayed: d.Delayed,
		Dead:    d.Dead,
		Outbox:  OutboxDepth{Waiting: d.Outbox, Dead: d.OutboxDead},
		Workers: make([]WorkerState, 0, len(workers)),
		Paused:  paused,
	}
	for _, w := range workers {
		s.Workers = append(s.Workers, workerState(w))
	}
	return s, nil
}

// workerState is how `workerctl stats` shows a worker. Its heartbeat's age is
// Redis's (TIME less the score it wrote), as the recoverers judge it, not
// this host's clock.
func workerState(w rdb.Worker) WorkerState {
	ws := WorkerState{ID: w.ID, State: WorkerNoHeartbeat, InHand: w.InHand, Host: w.Info.Host, PID: w.Info.PID,
		Concurrency: w.Info.Concurrency, Started: w.Info.Started, Version: w.Info.Version}
	if w.Heartbeat {
		last := w.LastBeat
		age := w.Age.Seconds()
		ws.LastHeartbeat, ws.HeartbeatAgeSeconds = &last, &age
		ws.State = WorkerLive
		if w.Age > queue.DefaultLease {
			ws.State = WorkerStale
		}
	}
	return ws
}

// WriteText renders the stats for a person.
func (s *Stats) WriteText(w io.Writer) error {
	tw := table(w)
	fmt.Fprintf(tw, "queue %s\t%d\n", s.Queue.Key, s.Queue.Depth)
	fmt.Fprintf(tw, "delayed retries\t%d\n", s.Delayed)
	fmt.Fprintf(tw, "dead letters\t%d\n", s.Dead)
	fmt.Fprintf(tw, "webhooks waiting\t%d\n", s.Outbox.Waiting)
	fmt.Fprintf(tw, "webhooks dead\t%d\n", s.Outbox.Dead)
	for _, who := range slices.Sorted(maps.Keys(s.Paused)) {
		fmt.Fprintf(tw, "intake paused (%s)\t%s\n", workerText(who), s.Paused[who])
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	if len(s.Workers) == 0 {
		_, err := fmt.Fprintln(w, "no workers: none has a heartbeat or jobs in hand")
		return err
	}
	tw = table(w)
	fmt.Fprintln(tw, "WORKER\tSTATE\tHEARTBEAT\tIN HAND\tHOST\tPID\tSTARTED\tVERSION")
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
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", wk.ID, wk.State, beat, hand, dash(wk.Host), pid, dash(wk.Started), dash(wk.Version))
	}
	return tw.Flush()
}
