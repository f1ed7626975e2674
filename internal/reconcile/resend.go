package reconcile

import (
	"context"
	"time"

	"github.com/coursedl/worker/internal/job"
	"github.com/coursedl/worker/internal/notify"
	"github.com/coursedl/worker/internal/store"
)

// resend sends again the events of the tasks that ended within the last
// within (by the database's clock), each under the webhook-id its run gave
// it; the outbox skips those it still holds. It returns how many it put back.
func (r *Reconciler) resend(ctx context.Context, within time.Duration) (int, error) {
	n := 0
	for after := int64(0); ; {
		page, err := r.Rows.EndedTasks(ctx, within, after, pageSize)
		if err != nil {
			return n, err
		}
		for _, e := range page {
			id, ev := eventOf(e)
			ok, err := r.Outbox.Resend(ctx, id, ev)
			if err != nil {
				return n, err
			}
			if ok {
				n++
			}
		}
		if len(page) < pageSize {
			return n, nil
		}
		after = page[len(page)-1].ID
		if _, err := r.Redis.HoldReconcile(ctx, r.token, lockTTL); err != nil {
			return n, err
		}
	}
}

// eventOf rebuilds the webhook event of an ended row and its id, the one its
// run gave it (notify.CompletedID, notify.FailedID of error_message). The row
// does not keep the downloader's folder name nor the run's duration: the
// event names the folder task-<id> (the contract's name when the downloader
// made no single folder) and a duration of 0. The web app has the event its
// run sent whenever that one arrived, and tells the two apart by their id.
func eventOf(e store.Ended) (string, notify.Event) {
	ev := notify.Event{
		TaskID:    e.ID,
		OrderID:   e.Order(),
		Email:     e.Email,
		Folder:    job.Name(e.ID),
		Timestamp: notify.FormatTime(e.UpdatedAt()),
	}
	if e.Status == store.StatusCompleted {
		ev.Type, ev.DriveURL = notify.TypeCompleted, e.DriveURL.String
		return notify.CompletedID(e.ID), ev
	}
	ev.Type, ev.Error = notify.TypeFailed, e.ErrorMessage.String
	return notify.FailedID(e.ID, ev.Error), ev
}
