package rdb

import (
	"context"
	"slices"
)

// Pause stops intake of worker who (AllWorkers for every worker) for reason:
// it fetches no job until Resume. It reports whether it was running before.
func (r *Client) Pause(ctx context.Context, who, reason string) (bool, error) {
	n, err := r.c.HSet(ctx, IntakeKey, who, reason).Result()
	return n == 1, wrap("pause intake of "+who, err)
}

// Resume lets workers fetch again: those named, or every pause when none is.
// It returns the pauses it lifted, by worker.
func (r *Client) Resume(ctx context.Context, who ...string) (map[string]string, error) {
	paused, err := r.c.HGetAll(ctx, IntakeKey).Result()
	if err != nil {
		return nil, wrap("resume intake", err)
	}
	lifted := map[string]string{}
	for w, why := range paused {
		if len(who) == 0 || slices.Contains(who, w) {
			lifted[w] = why
		}
	}
	if len(lifted) == 0 {
		return lifted, nil
	}
	fields := make([]string, 0, len(lifted))
	for w := range lifted {
		fields = append(fields, w)
	}
	return lifted, wrap("resume intake", r.c.HDel(ctx, IntakeKey, fields...).Err())
}

// Paused says why this worker's intake is paused ("" when it is not): its
// own pause first, then one of every worker's.
func (r *Client) Paused(ctx context.Context) (string, error) {
	v, err := r.c.HMGet(ctx, IntakeKey, r.worker, AllWorkers).Result()
	if err != nil {
		return "", wrap("read "+IntakeKey, err)
	}
	for _, x := range v {
		if s, ok := x.(string); ok && s != "" {
			return s, nil
		}
	}
	return "", nil
}

// Pauses returns every pause, by worker (AllWorkers for all).
func (r *Client) Pauses(ctx context.Context) (map[string]string, error) {
	m, err := r.c.HGetAll(ctx, IntakeKey).Result()
	return m, wrap("read "+IntakeKey, err)
}
