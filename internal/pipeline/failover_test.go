package pipeline

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"testing"

	"github.com/coursedl/worker/internal/notify"
	"github.com/coursedl/worker/internal/queue"
	"github.com/coursedl/worker/internal/store"
)

// failingOutbox is a fakeOutbox whose Redis fails as during a failover.
type failingOutbox struct {
	*fakeOutbox
	stageErr, releaseErr error
}

func (o *failingOutbox) Stage(ctx context.Context, id string, ev notify.Event) error {
	if o.stageErr != nil {
		return o.stageErr
	}
	return o.fakeOutbox.Stage(ctx, id, ev)
}

func (o *failingOutbox) Release(ctx context.Context, id string, taskID int64) error {
	if o.releaseErr != nil {
		return o.releaseErr
	}
	return o.fakeOutbox.Release(ctx, id, taskID)
}

// A Redis failover under a task (a write refused by the old master, now a
// replica; a connection reset) makes its job wait without using up an
// attempt; the task is not failed and its webhook not released yet.
func TestFailoverDefersTask(t *testing.T) {
	readonly := errors.New("READONLY You can't write against a read only replica.") //nolint:revive // Redis's reply, word for word
	reset := fmt.Errorf("outbox release msg_task17_completed: read tcp 127.0.0.1:1->127.0.0.1:2: %w", syscall.ECONNRESET)
	for _, c := range []struct {
		name                 string
		stageErr, releaseErr error
		lockErr              error
		row                  string // the row's status left for the next run
	}{
		{name: "stage refused by a replica", stageErr: fmt.Errorf("outbox stage msg_task17_completed: %w", readonly), row: store.StatusUploading},
		// The row is written: the next run finds it completed and releases
		// the staged event.
		{name: "release on a reset connection", releaseErr: reset, row: store.StatusCompleted},
		{name: "lock refused by a replica", lockErr: fmt.Errorf("lock task 17: %w", readonly), row: ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			ob := &failingOutbox{fakeOutbox: f.outbox, stageErr: c.stageErr, releaseErr: c.releaseErr}
			f.p.Outbox = ob
			f.locker.err = c.lockErr
			res := f.p.Handle(context.Background(), goodJob)
			if res.Outcome != queue.Retry || res.Delay != retryDelay {
				t.Fatalf("result %+v, want a retry after %s", res, retryDelay)
			}
			if f.attempts.counted != 0 {
				t.Errorf("%d attempts counted, want none", f.attempts.counted)
			}
			if f.store.status != c.row {
				t.Errorf("row %q, want %q", f.store.status, c.row)
			}
			if len(f.outbox.released) != 0 {
				t.Errorf("webhook released: %v", f.outbox.released)
			}
		})
	}
}
