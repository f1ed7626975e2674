package ctl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/coursedl/worker/internal/job"
	"github.com/coursedl/worker/internal/logfile"
	"github.com/coursedl/worker/internal/progress"
	"github.com/coursedl/worker/internal/store"
	"github.com/coursedl/worker/internal/tasklog"
)

// TaskReport is what `workerctl task` shows about one task.
type TaskReport struct {
	TaskID   int64           `json:"taskId"`
	Row      *RowView        `json:"row"`      // null when there is no row
	Progress *progress.Event `json:"progress"` // the latest event, null when none is kept
	Attempts int             `json:"attempts"` // failed attempts of the current run (dl:attempts)
	// LockTTLSeconds is set while a worker holds the task's lock (it is running).
	LockTTLSeconds *float64 `json:"lockTtlSeconds"`
	// InHandOf lists the workers whose processing list holds a job of the task;
	// its log is on their host.
	InHandOf []string `json:"inHandOf"`
	// RetryAt is when a retry of the task waiting in dl:delayed is due.
	RetryAt *time.Time `json:"retryAt"`
	// Queued is the place in the queue of a job of the task waiting there
	// (1: taken next); 0 when none waits.
	Queued int `json:"queued"`
	// Dead holds the dead letters of the task.
	Dead []DeadEntry `json:"dead"`
	// Webhooks holds the task's webhook events still in the outbox (waiting,
	// given up, or staged); a delivered event is gone.
	Webhooks []WebhookState `json:"webhooks"`
	Log      LogTail        `json:"log"`
}

// WebhookState is a webhook event of the task and where it is in the outbox.
type WebhookState struct {
	ID        string     `json:"id"` // its webhook-id
	Type      string     `json:"type"`
	State     string     `json:"state"` // waiting, given up or staged
	Due       *time.Time `json:"due"`   // the next attempt, while waiting
	Attempts  int        `json:"attempts"`
	LastError string     `json:"lastError"`
}

// RowView is the download_tasks row.
type RowView struct {
	Status       string    `json:"status"`
	Email        string    `json:"email"`
	CourseURL    string    `json:"courseUrl"`
	OrderID      *int64    `json:"orderId"`
	Enrolled     bool      `json:"enrolled"`
	DriveURL     *string   `json:"driveUrl"`
	ErrorMessage *string   `json:"errorMessage"`
	UpdatedAt    time.Time `json:"updatedAt"`
}

// LogTail is the end of the task's log file.
type LogTail struct {
	Path   string   `json:"path"`
	Exists bool     `json:"exists"`
	Lines  []string `json:"lines"`
}

// Task reads the row, the latest progress event, the attempts, the lock and the
// last n lines of the task's log. A task with none of these is an error.
func (t *Tool) Task(ctx context.Context, taskID int64, n int) (*TaskReport, error) {
	rows, err := t.rows()
	if err != nil {
		return nil, err
	}
	r := &TaskReport{TaskID: taskID, Log: LogTail{Path: tasklog.Path(t.LogsDir, taskID), Lines: []string{}}}
	d, err := rows.Detail(ctx, taskID)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return nil, err
	default:
		r.Row = rowView(d)
	}

	if err := t.redisState(ctx, r); err != nil {
		return nil, err
	}
	f, err := os.Open(r.Log.Path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("task log: %w", err)
	default:
		defer func() { _ = f.Close() }() // only read from
		st, err := f.Stat()
		if err != nil {
			return nil, fmt.Errorf("task log: %w", err)
		}
		lines, _, err := logfile.Last(f, st.Size(), n)
		if err != nil {
			return nil, fmt.Errorf("task log: %w", err)
		}
		r.Log.Exists = true
		if lines != nil {
			r.Log.Lines = lines
		}
	}
	if r.Row == nil && r.Progress == nil && !r.Log.Exists {
		return nil, fmt.Errorf("task %d: %w, no progress kept in Redis and no log at %s", taskID, store.ErrNotFound, r.Log.Path)
	}
	return r, nil
}

// redisState reads what Redis keeps of the task: its latest progress event,
// its attempts, its lock, and where its jobs are.
func (t *Tool) redisState(ctx context.Context, r *TaskReport) error {
	h, err := t.Redis.Progress(ctx, r.TaskID)
	if err != nil {
		return err
	}
	r.Progress = progress.FromFields(h)
	if r.Attempts, err = t.Redis.Attempts(ctx, r.TaskID); err != nil {
		return err
	}
	ttl, err := t.Redis.LockTTL(ctx, r.TaskID)
	if err != nil {
		return err
	}
	if ttl > 0 {
		s := ttl.Seconds()
		r.LockTTLSeconds = &s
	}
	w, err := t.Redis.Whereabouts(ctx, r.TaskID, func(p string) int64 { return job.TaskID([]byte(p)) })
	if err != nil {
		return err
	}
	r.InHandOf, r.Queued = w.InHandOf, w.Queued
	if !w.RetryAt.IsZero() {
		r.RetryAt = &w.RetryAt
	}
	dead, err := t.deadEntries(ctx)
	if err != nil {
		return err
	}
	r.Dead = []DeadEntry{}
	for _, e := range dead {
		if e.TaskID == r.TaskID {
			r.Dead = append(r.Dead, e)
		}
	}
	events, err := t.Redis.TaskEvents(ctx, r.TaskID)
	if err != nil {
		return err
	}
	r.Webhooks = []WebhookState{}
	for _, e := range events {
		ws := WebhookState{ID: e.ID, Type: e.Type, State: e.State, Attempts: e.Attempts, LastError: e.LastError}
		if !e.Due.IsZero() {
			ws.Due = &e.Due
		}
		r.Webhooks = append(r.Webhooks, ws)
	}
	return nil
}

func rowView(d store.Detail) *RowView {
	v := &RowView{Status: d.Status, Email: d.Email, CourseURL: d.CourseURL, Enrolled: d.IsEnrolled, UpdatedAt: d.UpdatedAt}
	if d.OrderID.Valid {
		v.OrderID = &d.OrderID.Int64
	}
	if d.DriveURL.Valid {
		v.DriveURL = &d.DriveURL.String
	}
	if d.ErrorMessage.Valid {
		v.ErrorMessage = &d.ErrorMessage.String
	}
	return v
}

// WriteText renders the report for a person.
func (r *TaskReport) WriteText(w io.Writer) error {
	fmt.Fprintf(w, "task %d\n", r.TaskID)
	tw := table(w)
	if r.Row == nil {
		fmt.Fprintln(tw, "  row\tnone: no download_tasks row with this id")
	} else {
		order := "none"
		if r.Row.OrderID != nil {
			order = strconv.FormatInt(*r.Row.OrderID, 10)
		}
		enrolled := "no"
		if r.Row.Enrolled {
			enrolled = "yes"
		}
		fmt.Fprintf(tw, "  status\t%s\n", r.Row.Status)
		fmt.Fprintf(tw, "  email\t%s\n", r.Row.Email)
		fmt.Fprintf(tw, "  course\t%s\n", r.Row.CourseURL)
		fmt.Fprintf(tw, "  order\t%s\n", order)
		fmt.Fprintf(tw, "  enrolled\t%s\n", enrolled)
		fmt.Fprintf(tw, "  drive url\t%s\n", deref(r.Row.DriveURL))
		fmt.Fprintf(tw, "  error\t%s\n", oneLine(deref(r.Row.ErrorMessage), 200))
		fmt.Fprintf(tw, "  updated\t%s\n", r.Row.UpdatedAt.UTC().Format(time.RFC3339))
	}
	if r.Progress == nil {
		fmt.Fprintln(tw, "  progress\tnone kept (none yet, or expired 24 h after the task ended)")
	} else {
		fmt.Fprintf(tw, "  progress\t%s (at %s)\n", progressLine(*r.Progress), r.Progress.At.UTC().Format(time.RFC3339))
	}
	fmt.Fprintf(tw, "  attempts\t%d\n", r.Attempts)
	if r.LockTTLSeconds != nil {
		fmt.Fprintf(tw, "  running\tyes: a worker holds its lock (renewed; expires in %.0fs unless renewed)\n", *r.LockTTLSeconds)
	} else {
		fmt.Fprintln(tw, "  running\tno worker holds its lock")
	}
	if len(r.InHandOf) > 0 {
		fmt.Fprintf(tw, "  in hand of\t%s (its log is on that host)\n", strings.Join(r.InHandOf, ", "))
	}
	if r.RetryAt != nil {
		fmt.Fprintf(tw, "  retry due\t%s\n", r.RetryAt.Format(time.RFC3339))
	}
	if r.Queued > 0 {
		fmt.Fprintf(tw, "  queued\t#%d in line (1 is taken next)\n", r.Queued)
	}
	for _, e := range r.Dead {
		fmt.Fprintf(tw, "  dead letter\t#%d at %s: %s\n", e.Index, dash(e.At), oneLine(e.Reason, 150))
	}
	for _, e := range r.Webhooks {
		fmt.Fprintf(tw, "  webhook\t%s\n", webhookLine(e))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if !r.Log.Exists {
		_, err := fmt.Fprintf(w, "log %s: none yet\n", r.Log.Path)
		return err
	}
	fmt.Fprintf(w, "log %s (last %d lines):\n", r.Log.Path, len(r.Log.Lines))
	for _, l := range r.Log.Lines {
		fmt.Fprintf(w, "  %s\n", l)
	}
	return nil
}

func deref(s *string) string {
	if s == nil {
		return "-"
	}
	return dash(*s)
}

// webhookLine says where a webhook event is, on one line.
func webhookLine(e WebhookState) string {
	s := fmt.Sprintf("%s %s: %s", dash(e.Type), e.ID, e.State)
	if e.Due != nil {
		s += ", next attempt " + e.Due.UTC().Format(time.RFC3339)
	}
	if e.Attempts > 0 {
		s += fmt.Sprintf(", %d attempts", e.Attempts)
	}
	if e.LastError != "" {
		s += ", last error: " + oneLine(e.LastError, 100)
	}
	return s
}
