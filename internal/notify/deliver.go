package notify

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// ErrExhausted is wrapped in Deliver's error when every attempt of the
// schedule failed transiently; the event must be kept for a later delivery.
var ErrExhausted = errors.New("retry schedule exhausted")

// Deliver sends body under the webhook-id id until the web app accepts it.
// The first attempt is made at once; after the n-th transient failure it
// waits schedule[n-1], give or take 10%, then tries again. It stops at the
// first success (nil), at a permanent refusal (IsPermanent is true), when the
// schedule is exhausted (errors.Is(err, ErrExhausted)) or when ctx ends
// (errors.Is(err, ctx.Err())). onAttempt, when not nil, is called after each
// attempt with its number (from 1) and its result.
func (s *Sender) Deliver(ctx context.Context, id string, body []byte, schedule []time.Duration, onAttempt func(attempt int, err error)) error {
	for attempt := 1; ; attempt++ {
		err := s.Send(ctx, id, body)
		if onAttempt != nil {
			onAttempt(attempt, err)
		}
		switch {
		case err == nil:
			return nil
		case ctx.Err() != nil:
			return fmt.Errorf("webhook %s: stopped after %d attempts: %w (last: %w)", id, attempt, ctx.Err(), err)
		case IsPermanent(err):
			return fmt.Errorf("webhook %s: refused on attempt %d: %w", id, attempt, err)
		case attempt > len(schedule):
			return fmt.Errorf("webhook %s: %w after %d attempts: %w", id, ErrExhausted, attempt, err)
		}
		if werr := sleep(ctx, jitter(schedule[attempt-1])); werr != nil {
			return fmt.Errorf("webhook %s: stopped after %d attempts: %w (last: %w)", id, attempt, werr, err)
		}
	}
}

// jitter spreads d uniformly over [0.9d, 1.1d] so that many events failing
// together do not retry together.
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	span := int64(d) / 10
	if span == 0 {
		return d
	}
	return d + time.Duration(rand.Int64N(2*span+1)-span)
}

// sleep waits for d or until ctx ends, whichever comes first.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
