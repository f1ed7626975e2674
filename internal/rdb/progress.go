package rdb

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"
)

// PublishProgress keeps a task's latest progress event in its hash and
// publishes it, in one MULTI/EXEC: the fields set are set, those in drop
// removed, the hash set to expire after ttl, and payload (the event's JSON)
// published on ProgressChannel.
func (r *Client) PublishProgress(ctx context.Context, taskID int64, set []any, drop []string, ttl time.Duration, payload []byte) error {
	key := ProgressKey(taskID)
	_, err := r.c.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
		if len(drop) > 0 {
			pipe.HDel(ctx, key, drop...)
		}
		pipe.HSet(ctx, key, set...)
		pipe.Expire(ctx, key, ttl)
		pipe.Publish(ctx, ProgressChannel, payload)
		return nil
	})
	return wrap("publish progress of task "+itoa(taskID), err)
}

// Progress returns the fields of a task's latest progress event; empty when
// none is kept.
func (r *Client) Progress(ctx context.Context, taskID int64) (map[string]string, error) {
	h, err := r.c.HGetAll(ctx, ProgressKey(taskID)).Result()
	return h, wrap("read "+ProgressKey(taskID), err)
}

// Subscription is a subscription to the progress events.
type Subscription struct {
	ps     *redis.PubSub
	events chan string
	done   chan struct{}
}

// SubscribeProgress subscribes to ProgressChannel; it returns once Redis has
// confirmed, so no event published after it is missed. Close it when done.
func (r *Client) SubscribeProgress(ctx context.Context) (*Subscription, error) {
	ps := r.c.Subscribe(ctx, ProgressChannel)
	if _, err := ps.Receive(ctx); err != nil {
		_ = ps.Close()
		return nil, wrap("subscribe to "+ProgressChannel, err)
	}
	s := &Subscription{ps: ps, events: make(chan string), done: make(chan struct{})}
	msgs := ps.Channel()
	go func() {
		defer close(s.events)
		for m := range msgs {
			select {
			case s.events <- m.Payload:
			case <-s.done:
				return
			}
		}
	}()
	return s, nil
}

// Events delivers the JSON of each event as it comes; it is closed after Close.
// Read it until then: an event not read holds up the next.
func (s *Subscription) Events() <-chan string { return s.events }

// Close ends the subscription.
func (s *Subscription) Close() error {
	close(s.done)
	return s.ps.Close()
}
