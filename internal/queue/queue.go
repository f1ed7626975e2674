// Package queue owns the worker's Redis lists: the reliable fetch from the web app's
// queue into this worker's processing list, the acknowledgement that removes a job
// once its task has ended, the requeue of unfinished jobs and the dead-letter list.
//
// The web app LPUSHes jobs; the worker takes from the right end (FIFO) with BLMOVE
// into "dl:processing:<worker id>", so a job is always in exactly one Redis list
// until its task has ended. It does not decode jobs: payloads are opaque strings.
package queue

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// DeadKey is the contract's dead-letter list.
const DeadKey = "dl:dead"

// ProcessingKey is the processing list of the worker with the given id.
func ProcessingKey(workerID string) string { return "dl:processing:" + workerID }

// Dead is one entry of the dead-letter list, as contract section 1 spells it. A
// payload over MaxDeadPayload bytes is kept cut to that size, with its whole size
// and SHA-256, so that a hostile giant job cannot blow up the dead list.
type Dead struct {
	Payload   string `json:"payload"`
	Reason    string `json:"reason"`
	At        string `json:"at"`
	Worker    string `json:"worker"`
	Truncated bool   `json:"truncated,omitempty"`
	Size      int    `json:"size,omitempty"`
	SHA256    string `json:"sha256,omitempty"`
}

// MaxDeadPayload is the most of a payload a dead-letter entry keeps (the job
// size limit: a longer job was refused for its size).
const MaxDeadPayload = 64 << 10

// deadEntry builds the dead-letter entry of payload.
func deadEntry(payload, reason, worker string, at time.Time) Dead {
	d := Dead{Payload: payload, Reason: reason, At: at.UTC().Format(time.RFC3339), Worker: worker}
	if len(payload) > MaxDeadPayload {
		sum := sha256.Sum256([]byte(payload))
		d.Payload, d.Truncated, d.Size, d.SHA256 = payload[:MaxDeadPayload], true, len(payload), hex.EncodeToString(sum[:])
	}
	return d
}

// Client is the queue as one worker sees it.
type Client struct {
	rdb        redis.UniversalClient
	blocking   *blocking // see BlockOn; nil: Fetch blocks on rdb
	queue      string
	processing string
	worker     string
}

// New returns the queue client of worker workerID on the list queueKey.
func New(rdb redis.UniversalClient, queueKey, workerID string) *Client {
	return &Client{rdb: rdb, queue: queueKey, processing: ProcessingKey(workerID), worker: workerID}
}

// Processing is the key of this worker's processing list.
func (c *Client) Processing() string { return c.processing }

// Fetch moves the oldest job into this worker's processing list and returns it,
// blocking up to block. It returns "" and no error when none came in that time,
// or, with BlockOn, when ctx ended meanwhile. A block under a second (go-redis's
// least) does not wait at all.
func (c *Client) Fetch(ctx context.Context, block time.Duration) (string, error) {
	var payload string
	var err error
	switch {
	case block < time.Second:
		payload, err = c.rdb.LMove(ctx, c.queue, c.processing, "RIGHT", "LEFT").Result()
	case c.blocking != nil:
		payload, err = c.blockingMove(ctx, block)
	default:
		payload, err = c.rdb.BLMove(ctx, c.queue, c.processing, "RIGHT", "LEFT", block).Result()
	}
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("fetch from %s: %w", c.queue, err)
	}
	return payload, nil
}

// Ack removes a job whose task has ended from the processing list.
func (c *Client) Ack(ctx context.Context, payload string) error {
	if err := c.rdb.LRem(ctx, c.processing, 1, payload).Err(); err != nil {
		return fmt.Errorf("ack: %w", err)
	}
	return nil
}

// AckFetch removes done, whose task has ended, from the processing list and moves
// the oldest job of the queue into it, in one round trip and atomically (LREM and
// a non-blocking LMOVE in one MULTI/EXEC): the jobs in hand never outnumber those
// before. It does not block: it returns "" when the queue is empty, and the ack is
// done then too. After an error the caller settles done again (removing a job that
// is gone already is harmless).
//
// A transaction rather than a script: Redis runs it for less CPU than a Lua call,
// and on a busy queue Redis's CPU is what bounds the jobs a second.
func (c *Client) AckFetch(ctx context.Context, done string) (string, error) {
	var next *redis.StringCmd
	_, err := c.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.LRem(ctx, c.processing, 1, done)
		next = p.LMove(ctx, c.queue, c.processing, "RIGHT", "LEFT")
		return nil
	})
	if errors.Is(err, redis.Nil) { // LMOVE found the queue empty; LREM ran
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("ack and fetch from %s: %w", c.queue, err)
	}
	return next.Val(), nil
}

// Requeue puts an unfinished job back at the head of the queue (it is taken next)
// and removes it from the processing list, atomically.
func (c *Client) Requeue(ctx context.Context, payload string) error {
	_, err := c.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.RPush(ctx, c.queue, payload)
		p.LRem(ctx, c.processing, 1, payload)
		return nil
	})
	if err != nil {
		return fmt.Errorf("requeue: %w", err)
	}
	return nil
}

// DeadLetter moves a job to the dead-letter list with the reason it was rejected,
// atomically with its removal from the processing list.
func (c *Client) DeadLetter(ctx context.Context, payload, reason string, at time.Time) error {
	entry, err := json.Marshal(deadEntry(payload, reason, c.worker, at))
	if err != nil {
		return fmt.Errorf("dead letter: %w", err)
	}
	_, err = c.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.LPush(ctx, DeadKey, entry)
		p.LRem(ctx, c.processing, 1, payload)
		return nil
	})
	if err != nil {
		return fmt.Errorf("dead letter: %w", err)
	}
	return nil
}

// RecoverOwn gives every job left in this worker's processing list (by an earlier
// run of the same worker id that did not end cleanly) back to the head of the queue,
// oldest first, frees the task locks that run held, and returns the jobs. Call it
// before fetching.
func (c *Client) RecoverOwn(ctx context.Context) ([]string, error) {
	if _, err := FreeLocks(ctx, c.rdb, c.worker); err != nil {
		return nil, err
	}
	var moved []string
	for {
		// LMOVE LEFT->RIGHT takes the job fetched last first; pushing each onto the
		// queue's right end leaves the job fetched first at the very end, taken next.
		p, err := c.rdb.LMove(ctx, c.processing, c.queue, "LEFT", "RIGHT").Result()
		if errors.Is(err, redis.Nil) {
			return moved, nil
		}
		if err != nil {
			return moved, fmt.Errorf("recover %s: %w", c.processing, err)
		}
		moved = append(moved, p)
	}
}

// DeadEntries returns up to n entries of the dead-letter list, newest first.
func DeadEntries(ctx context.Context, rdb redis.UniversalClient, n int64) ([]Dead, error) {
	raw, err := rdb.LRange(ctx, DeadKey, 0, n-1).Result()
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", DeadKey, err)
	}
	out := make([]Dead, 0, len(raw))
	for _, r := range raw {
		var d Dead
		if err := json.Unmarshal([]byte(r), &d); err != nil {
			return nil, fmt.Errorf("read %s: entry %q: %w", DeadKey, r, err)
		}
		out = append(out, d)
	}
	return out, nil
}
