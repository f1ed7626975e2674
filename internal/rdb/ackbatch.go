package rdb

import (
	"context"
	"sync"

	"github.com/redis/go-redis/v9"
)

// ackBatch gathers concurrent AckFetch calls into one transaction (flat
// combining, with no goroutine of its own): the first call leads, sending the
// calls waiting then, itself among them, in one MULTI/EXEC; the calls made
// meanwhile wait, and when the round trip is over the first of them leads the
// next batch. Each call is its own LREM then LMOVE, in the order they came, so
// a batch does what the calls one after another would do, atomically.
type ackBatch struct {
	mu      sync.Mutex
	waiting []*ackCall
	leading bool // a batch is on its way
}

// ackCall is one AckFetch call.
type ackCall struct {
	done string
	next string
	err  error
	// wake says true when the call is to lead the next batch, false when
	// its result is in.
	wake chan bool
}

// do runs the AckFetch of done, alone or with others.
func (b *ackBatch) do(ctx context.Context, r *Client, done string) (string, error) {
	me := &ackCall{done: done, wake: make(chan bool, 1)}
	b.mu.Lock()
	b.waiting = append(b.waiting, me)
	lead := !b.leading
	b.leading = true
	b.mu.Unlock()
	if !lead && !<-me.wake {
		return me.next, me.err
	}
	b.mu.Lock()
	batch := b.waiting
	b.waiting = nil
	b.mu.Unlock()
	r.ackFetchBatch(ctx, batch)
	b.mu.Lock()
	if len(b.waiting) > 0 {
		b.waiting[0].wake <- true
	} else {
		b.leading = false
	}
	b.mu.Unlock()
	for _, c := range batch {
		if c != me {
			c.wake <- false
		}
	}
	return me.next, me.err
}

// ackFetchBatch runs the calls of batch in one MULTI/EXEC and fills in each
// one's result: its next job, "" when the queue was empty for it, or the error
// of its own commands.
func (r *Client) ackFetchBatch(ctx context.Context, batch []*ackCall) {
	lrems := make([]*redis.IntCmd, len(batch))
	lmoves := make([]*redis.StringCmd, len(batch))
	// Each command carries its own error, a lost connection's included.
	_, txErr := r.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		for i, c := range batch {
			lrems[i] = p.LRem(ctx, r.processing, 1, c.done)
			lmoves[i] = p.LMove(ctx, r.queue, r.processing, "RIGHT", "LEFT")
		}
		return nil
	})
	for i, c := range batch {
		c.next, c.err = ackFetchResult(lrems[i], lmoves[i], txErr)
		c.err = wrap("ack and fetch from "+r.queue, c.err)
	}
}

// ackFetchResult is the result of one call of a batch: its next job, "" when
// the queue was empty for it (its LREM ran), or its error. txErr, the batch's,
// counts for a call whose commands hold none and no job.
func ackFetchResult(lrem *redis.IntCmd, lmove *redis.StringCmd, txErr error) (string, error) {
	if err := lrem.Err(); err != nil {
		return "", err
	}
	next, err := lmove.Result()
	switch {
	case IsNil(err):
		return "", nil
	case err != nil:
		return "", err
	case next == "" && txErr != nil && !IsNil(txErr):
		return "", txErr
	}
	return next, nil
}
