package progress

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/coursedl/worker/internal/rdb"
)

// Expiries of a task's hash.
const (
	// ActiveTTL is the expiry set with every event before the task ends, so that the
	// hash of a task whose worker crashed does not stay forever.
	ActiveTTL = 7 * 24 * time.Hour
	// FinalTTL is the expiry set with the final (completed or failed) event.
	FinalTTL = 24 * time.Hour
)

// Publisher publishes events on the channel "dl:progress" and keeps the latest one
// in the hash "dl:task:<taskId>" (fields: the event's JSON keys, values as strings),
// through rdb.PublishProgress: the event's fields are set, the optional fields it
// lacks are removed, the expiry is set (FinalTTL once the task has ended, ActiveTTL
// before) and the JSON is published. A Publisher is safe for concurrent use.
type Publisher struct {
	redis *rdb.Client
	log   *zap.Logger

	// Now is the clock that stamps events (an event's At); time.Now by default.
	// Set it before the first event, e.g. to a fixed time in tests.
	Now func() time.Time
	// Timeout bounds each publish made by a TaskPublisher (2 s by default) through
	// its context, so that a slow Redis delays a task's events, never the task. A
	// go-redis client applies a context's deadline to its connection only with
	// ContextTimeoutEnabled; without it, its own Read/WriteTimeout bound a publish.
	Timeout time.Duration
}

// NewPublisher returns a Publisher writing through r. log (already named by the
// caller) may be zap.NewNop() or nil.
func NewPublisher(r *rdb.Client, log *zap.Logger) *Publisher {
	if log == nil {
		log = zap.NewNop()
	}
	return &Publisher{redis: r, log: log, Now: time.Now, Timeout: 2 * time.Second}
}

// Publish sends ev at once, unthrottled, and returns when Redis has answered or ctx
// is done. A zero ev.At is set from the publisher's clock; At is published in UTC
// with whole seconds. Tasks normally publish through Task, not here.
func (p *Publisher) Publish(ctx context.Context, ev Event) error {
	if ev.TaskID <= 0 {
		return fmt.Errorf("publish progress: task id %d is not positive", ev.TaskID)
	}
	if ev.At.IsZero() {
		ev.At = p.Now()
	}
	ev.At = ev.At.UTC().Truncate(time.Second)
	payload, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("publish progress of task %d: %w", ev.TaskID, err)
	}
	ttl := ActiveTTL
	if IsFinal(ev.Stage) {
		ttl = FinalTTL
	}
	set, drop := ev.fields()
	return p.redis.PublishProgress(ctx, ev.TaskID, set, drop, ttl, payload)
}
