package rdb

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// blocking is the connection the blocking fetch waits on, a client of one
// connection of its own, whose Redis client id it keeps so that a stop can cut
// the wait short with CLIENT UNBLOCK from another connection. Without it, a stop
// waited for the BLMOVE's block to run out, which kept that block at a second:
// an idle worker's most frequent wake-up.
type blocking struct {
	rdb redis.UniversalClient
	id  atomic.Int64 // CLIENT ID of rdb's connection; 0 before it connects
}

// BlockOn has Fetch wait on a connection of its own, made with opts (the main
// client's options; the pool is set to one connection). When the context of a
// Fetch ends while it waits, Fetch asks Redis through the main client to unblock
// that connection, and returns at once with no job: a BLMOVE unblocked so
// moves nothing. A Redis user that may not run CLIENT ID or CLIENT UNBLOCK
// (ACL categories @connection, @admin) still fetches, and its stops wait for
// the block to run out. Close the returned client when the worker stops.
func (r *Client) BlockOn(opts *redis.Options) *redis.Client {
	o := *opts
	o.PoolSize, o.MinIdleConns, o.MaxIdleConns = 1, 0, 1
	onConnect := o.OnConnect
	var c *redis.Client
	r.blockOn(func(keepID func(context.Context, *redis.Conn) error) redis.UniversalClient {
		o.OnConnect = chain(onConnect, keepID)
		c = redis.NewClient(&o)
		return c
	})
	return c
}

// BlockOnDial is BlockOn for a client Dial makes from o (the main client's
// DialOptions), a pool of one connection: through Sentinel, the connection the
// fetch waits on follows the master across a failover.
func (r *Client) BlockOnDial(o DialOptions) redis.UniversalClient {
	return r.blockOn(func(keepID func(context.Context, *redis.Conn) error) redis.UniversalClient {
		o.single, o.onConnect = true, chain(o.onConnect, keepID)
		return Dial(o)
	})
}

// blockOn makes the fetch's client with dial, which must run keepID when it
// connects.
func (r *Client) blockOn(dial func(keepID func(context.Context, *redis.Conn) error) redis.UniversalClient) redis.UniversalClient {
	b := &blocking{}
	b.rdb = dial(func(ctx context.Context, cn *redis.Conn) error {
		// A Redis user not allowed CLIENT ID (an ACL) still fetches; its stops
		// then wait for the block to run out, as CLIENT UNBLOCK needs the id.
		id, err := cn.ClientID(ctx).Result()
		if err != nil {
			id = 0
		}
		b.id.Store(id)
		return nil
	})
	r.blocking = b
	return b.rdb
}

// chain runs first (when set), then then, on each new connection.
func chain(first, then func(context.Context, *redis.Conn) error) func(context.Context, *redis.Conn) error {
	if first == nil {
		return then
	}
	return func(ctx context.Context, cn *redis.Conn) error {
		if err := first(ctx, cn); err != nil {
			return err
		}
		return then(ctx, cn)
	}
}

// blockingMove is BLMOVE on the connection of its own, cut short when ctx ends.
func (r *Client) blockingMove(ctx context.Context, block time.Duration) (string, error) {
	done := make(chan struct{})
	defer close(done)
	//nolint:gosec,contextcheck // G118, not under ctx: the unblock starts when ctx has ended and must still reach Redis
	go func() {
		select {
		case <-done:
			return
		case <-ctx.Done():
		}
		// The BLMOVE may not have reached Redis yet: ask until it returns.
		uctx, cancel := context.WithTimeout(context.Background(), block+time.Second)
		defer cancel()
		t := time.NewTicker(unblockRetry)
		defer t.Stop()
		for {
			if id := r.blocking.id.Load(); id != 0 {
				_ = r.c.ClientUnblock(uctx, id).Err()
			}
			select {
			case <-done:
				return
			case <-uctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	// Not ctx: its end is the unblock's to handle; a canceled context would make
	// go-redis drop the connection, and a job moved meanwhile with it.
	return r.blocking.rdb.BLMove(context.WithoutCancel(ctx), r.queue, r.processing, "RIGHT", "LEFT", block).Result()
}

// unblockRetry is how often a stop asks again to unblock a fetch that had not
// reached Redis when it first asked.
const unblockRetry = 20 * time.Millisecond
