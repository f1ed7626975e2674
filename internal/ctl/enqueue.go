package ctl

import (
	"context"
	"fmt"
	"io"

	"github.com/coursedl/worker/internal/job"
	"github.com/coursedl/worker/internal/store"
)

// Enqueued is what `workerctl enqueue` did.
type Enqueued struct {
	TaskID     int64  `json:"taskId"`
	Queue      string `json:"queue"`
	Payload    string `json:"payload"`    // exactly what was pushed
	QueueDepth int64  `json:"queueDepth"` // after the push
	Status     string `json:"status"`     // the row's status when pushed
	Note       string `json:"note,omitempty"`
}

// Enqueue reads the row of taskID and pushes its job onto the queue with LPUSH,
// as the web app does. A completed task is pushed all the same (the worker
// acknowledges and skips it); the report says so.
func (t *Tool) Enqueue(ctx context.Context, taskID int64) (*Enqueued, error) {
	rows, err := t.rows()
	if err != nil {
		return nil, err
	}
	row, err := rows.Task(ctx, taskID)
	if err != nil {
		return nil, err
	}
	payload, err := job.Of(row.ID, job.Row{Email: row.Email, CourseURL: row.CourseURL, OrderID: row.Order()}).Payload()
	if err != nil {
		return nil, fmt.Errorf("task %d: %w", taskID, err)
	}
	n, err := t.Redis.Push(ctx, payload)
	if err != nil {
		return nil, err
	}
	e := &Enqueued{TaskID: taskID, Queue: t.Redis.Queue(), Payload: payload, QueueDepth: n, Status: row.Status}
	switch {
	case row.Status == store.StatusCompleted:
		e.Note = "the task is completed: a worker will acknowledge the job and skip it"
	case !row.IsEnrolled:
		e.Note = "is_enrolled is 0: the worker waits for it (enrollment.max_wait), then fails the task with \"enrollment required\""
	}
	return e, nil
}

// WriteText renders the push for a person.
func (e *Enqueued) WriteText(w io.Writer) error {
	fmt.Fprintf(w, "task %d (status %s) pushed onto %s, %d waiting:\n%s\n", e.TaskID, e.Status, e.Queue, e.QueueDepth, e.Payload)
	if e.Note != "" {
		fmt.Fprintf(w, "note: %s\n", e.Note)
	}
	return nil
}
