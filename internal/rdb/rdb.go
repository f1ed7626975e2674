// Package rdb is the worker's one door into Redis: every key name and every
// script of the project lives here, and the other packages (queue, outbox,
// progress, metrics, ctl) call its named operations. It owns no loop, no
// retry policy and no decoding of jobs or events: payloads and bodies are
// opaque strings and bytes to it.
//
// One Client serves one process: it knows the web app's queue key and, in a
// worker, the worker's id, so that callers do not pass them around.
package rdb

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Client is the door into Redis of one process.
type Client struct {
	c          redis.UniversalClient
	queue      string // redis.queue
	worker     string // this process's worker id; "" in workerctl
	processing string // ProcessingKey(worker)
	blocking   *blocking
	repl       replication
	acks       ackBatch // AckFetch calls gathered into one transaction
}

// Options name what a Client works on.
type Options struct {
	Queue  string // redis.queue, the list the web app pushes to
	Worker string // the worker id of this process; empty in a tool
	// WaitReplica, when set, has the writes whose loss costs most (Ack,
	// AckFetch, StageEvent, ReleaseEvent, ReleaseClaimed) wait up to this long
	// for one replica to have them (WAIT 1), while the master has a replica.
	WaitReplica time.Duration
	// OnReplicaAck, if set, is called when the replicas that had such a write
	// within WaitReplica change from some to none (acked is 0) or back.
	OnReplicaAck func(acked int64)
}

// New returns the door on c. The Client does not own c: close c yourself.
func New(c redis.UniversalClient, o Options) *Client {
	return &Client{c: c, queue: o.Queue, worker: o.Worker, processing: ProcessingKey(o.Worker),
		repl: replication{wait: o.WaitReplica, onAck: o.OnReplicaAck}}
}

// Queue is the key of the web app's queue.
func (r *Client) Queue() string { return r.queue }

// Worker is the worker id this Client acts for ("" in a tool).
func (r *Client) Worker() string { return r.worker }

// Ping checks that Redis answers.
func (r *Client) Ping(ctx context.Context) error { return r.c.Ping(ctx).Err() }

// IsNil reports whether err is Redis's "no such key or element".
func IsNil(err error) bool { return errors.Is(err, redis.Nil) }

// wrap adds what was being done to a Redis error.
func wrap(what string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", what, err)
}
