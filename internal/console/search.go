package console

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/coursedl/worker/internal/ctl"
	"github.com/coursedl/worker/internal/lifecycle"
	"github.com/coursedl/worker/internal/progress"
	"github.com/coursedl/worker/internal/store"
)

// Search: a task id, an order id or a buyer's e-mail address leads to the
// task's row, where its job is now, its webhook events, its lifecycle lines
// and its log.
const (
	searchLimit  = 50  // rows listed for an order or an address
	logLines     = 200 // lines of the task log shown
	lifecycleMax = 200 // lifecycle lines shown
)

// searchView is the search page's data.
type searchView struct {
	Query     string
	Error     string
	Matches   []matchView // several tasks: a list to pick from
	MatchNote string      // what the list is
	Task      *taskView   // one task: all about it
}

// matchView is a row in a list of matches.
type matchView struct {
	ID      int64
	Status  string
	Email   string
	OrderID string
	Updated time.Time
}

// taskView is all about one task.
type taskView struct {
	R         *ctl.TaskReport
	Where     []string // where its job is, in sentences
	Running   bool     // a worker holds its lock: its log is followed live
	Lifecycle []string
	Elsewhere string // why the log is not here, if it is not
}

// search finds tasks by id, order or e-mail address.
func (c *Console) search(w http.ResponseWriter, r *http.Request, p who) {
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	v := &searchView{Query: q}
	if q != "" {
		ctx, cancel := context.WithTimeout(r.Context(), readTimeout)
		defer cancel()
		c.find(ctx, p, v)
	}
	c.render(w, r, http.StatusOK, "search", c.newView(p, "Search", "search", v))
}

// find fills v for its query: "task:N", "order:N", a number (a task id, and
// the tasks of the order with that id), or an e-mail address.
func (c *Console) find(ctx context.Context, p who, v *searchView) {
	q := v.Query
	lower := strings.ToLower(q)
	switch {
	case strings.Contains(q, "@"):
		if !p.seesEmail() {
			v.Error = "Searching by e-mail address needs a login, and this console has no users (console.users): it is read-only."
			return
		}
		c.findRows(ctx, v, "e-mail address", func(rows Rows) ([]store.Detail, error) { return rows.ByEmail(ctx, q, searchLimit) })
	case strings.HasPrefix(lower, "order:"):
		id, ok := number(q[len("order:"):])
		if !ok {
			v.Error = "After order: give an order id, a whole number."
			return
		}
		c.findRows(ctx, v, "order", func(rows Rows) ([]store.Detail, error) { return rows.ByOrder(ctx, id, searchLimit) })
	default:
		id, ok := number(strings.TrimPrefix(strings.TrimPrefix(lower, "task:"), "#"))
		if !ok {
			v.Error = "Give a task id (17, task:17), an order id (order:12) or a buyer's e-mail address."
			return
		}
		c.findTask(ctx, v, id)
		if v.Task != nil || strings.HasPrefix(lower, "task:") || c.p.Rows == nil {
			return
		}
		// No task of that id: perhaps it is an order's.
		missed := v.Error
		v.Error = ""
		c.findRows(ctx, v, "order", func(rows Rows) ([]store.Detail, error) { return rows.ByOrder(ctx, id, searchLimit) })
		if v.Task == nil && v.Matches == nil {
			v.Error = missed + fmt.Sprintf(" No order %d either.", id)
		}
	}
}

// findRows lists the rows found by read; a single one is shown whole.
func (c *Console) findRows(ctx context.Context, v *searchView, what string, read func(Rows) ([]store.Detail, error)) {
	if c.p.Rows == nil {
		v.Error = "Searching by order or e-mail reads download_tasks: set mysql.dsn."
		return
	}
	rows, err := read(c.p.Rows)
	switch {
	case err != nil:
		v.Error = err.Error()
	case len(rows) == 0:
		v.Error = "No task of this " + what + "."
	case len(rows) == 1:
		c.findTask(ctx, v, rows[0].ID)
	default:
		v.MatchNote = fmt.Sprintf("%d tasks of this %s, the newest first:", len(rows), what)
		if len(rows) == searchLimit {
			v.MatchNote = fmt.Sprintf("The newest %d tasks of this %s:", searchLimit, what)
		}
		for _, d := range rows {
			m := matchView{ID: d.ID, Status: d.Status, Email: d.Email, Updated: d.UpdatedAt, OrderID: "-"}
			if d.OrderID.Valid {
				m.OrderID = strconv.FormatInt(d.OrderID.Int64, 10)
			}
			v.Matches = append(v.Matches, m)
		}
	}
}

// findTask shows one task whole, as `workerctl task` reads it.
func (c *Console) findTask(ctx context.Context, v *searchView, id int64) {
	rep, err := c.p.Tool.Task(ctx, id, logLines)
	if errors.Is(err, store.ErrNotFound) {
		v.Error = fmt.Sprintf("No task %d: no row, no progress in Redis, no log on this host.", id)
		return
	}
	if err != nil {
		v.Error = err.Error()
		return
	}
	tv := &taskView{R: rep, Running: rep.LockTTLSeconds != nil, Where: where(rep)}
	if tv.Lifecycle, err = lifecycle.TaskLines(c.p.Tool.LogsDir, id, lifecycleMax); err != nil {
		tv.Lifecycle = []string{"(the lifecycle files could not be read: " + err.Error() + ")"}
	}
	if !rep.Log.Exists && len(rep.InHandOf) > 0 {
		tv.Elsewhere = "Its log is on the host of " + strings.Join(rep.InHandOf, ", ") + "."
	}
	v.Task = tv
}

// where says where the task's jobs are, in sentences.
func where(r *ctl.TaskReport) []string {
	var out []string
	if r.LockTTLSeconds != nil {
		s := "Running: a worker holds its lock"
		if len(r.InHandOf) > 0 {
			s = "Running on " + strings.Join(r.InHandOf, ", ")
		}
		out = append(out, s+".")
	} else if len(r.InHandOf) > 0 {
		out = append(out, "Taken by "+strings.Join(r.InHandOf, ", ")+", not running: waiting for its worker, or for recovery if that worker is gone.")
	}
	if r.Queued > 0 {
		out = append(out, fmt.Sprintf("Waiting in the queue, #%d in line (1 is taken next).", r.Queued))
	}
	if r.RetryAt != nil {
		out = append(out, "Delayed: its retry is due at "+stamp(*r.RetryAt)+".")
	}
	for _, d := range r.Dead {
		out = append(out, fmt.Sprintf("Dead letter #%d since %s: %s", d.Index, d.At, d.Reason))
	}
	if len(out) > 0 {
		return out
	}
	ended := r.Progress != nil && progress.IsFinal(r.Progress.Stage)
	if r.Row != nil && (r.Row.Status == store.StatusCompleted || r.Row.Status == store.StatusFailed) {
		ended = true
	}
	if ended {
		return []string{"Nowhere: the task has ended, and no job of it is in Redis."}
	}
	return []string{"Nowhere in Redis: no job of this task is queued, held, delayed or dead. " +
		"The worker pushes its job again once the row has been unchanged for reconcile.stale_after."}
}

// number reads a positive whole number.
func number(s string) (int64, bool) {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	return n, err == nil && n > 0
}
