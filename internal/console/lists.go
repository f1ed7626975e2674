package console

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/coursedl/worker/internal/ctl"
	"github.com/coursedl/worker/internal/job"
)

// The lists an operator works through: dead letters, delayed jobs and webhook
// events given up on. Each takes a filter (?q=): the entries whose task id,
// reason, worker or payload contain it.

// listView is a list page's data.
type listView[T any] struct {
	Filter string
	Total  int // entries in the list, whatever the filter
	Items  []T // those the filter keeps
	Extra  string
}

// matches reports whether the filter q (lower case) is in any of fields.
func matches(q string, fields ...string) bool {
	if q == "" {
		return true
	}
	for _, f := range fields {
		if strings.Contains(strings.ToLower(f), q) {
			return true
		}
	}
	return false
}

// deadPage lists the dead letters, the newest first.
func (c *Console) deadPage(w http.ResponseWriter, r *http.Request, p who) {
	ctx, cancel := context.WithTimeout(r.Context(), readTimeout)
	defer cancel()
	l, err := c.p.Tool.DeadList(ctx, 0)
	if err != nil {
		c.unavailable(w, r, p, err)
		return
	}
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	v := listView[ctl.DeadEntry]{Filter: q, Total: len(l.Entries)}
	lq := strings.ToLower(q)
	for i := len(l.Entries) - 1; i >= 0; i-- {
		e := l.Entries[i]
		if matches(lq, taskText(e.TaskID), e.Reason, e.Worker, e.Payload, e.Raw) {
			v.Items = append(v.Items, e)
		}
	}
	c.render(w, r, http.StatusOK, "dead", c.newView(p, "Dead letters", "dead", v))
}

// deadRequeue pushes the original jobs of the dead letters chosen (one, by
// its id, or all) back onto the queue, as `workerctl dead requeue` does.
func (c *Console) deadRequeue(w http.ResponseWriter, r *http.Request, p who) {
	sel := ctl.Selection{All: r.PostFormValue("all") == "1"}
	if id := r.PostFormValue("id"); id != "" && !sel.All {
		sel.IDs = []string{id}
	}
	if !sel.All && len(sel.IDs) == 0 {
		c.fail(w, r, p, http.StatusBadRequest, "Name the dead letter to requeue, or all of them.")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), readTimeout)
	defer cancel()
	res, err := c.p.Tool.DeadRequeue(ctx, sel)
	if err != nil {
		c.done(w, r, p, "/dead", "Nothing requeued: "+err.Error(), zap.String("action", "dead requeue"))
		return
	}
	msg := fmt.Sprintf("Requeued %d dead letter(s) onto %s.", len(res.Requeued), res.Queue)
	for _, s := range res.Skipped {
		msg += fmt.Sprintf(" Skipped #%d: %s.", s.Index, s.Reason)
	}
	var tasks []int64
	for _, e := range res.Requeued {
		tasks = append(tasks, e.TaskID)
	}
	c.done(w, r, p, "/dead", msg, zap.String("action", "dead requeue"), zap.Int64s("task_ids", tasks))
}

// deadPurge deletes every dead letter; the form must say it is meant.
func (c *Console) deadPurge(w http.ResponseWriter, r *http.Request, p who) {
	if r.PostFormValue("confirm") != "yes" {
		c.done(w, r, p, "/dead", "Nothing purged: tick the box to confirm.", zap.String("action", "dead purge"))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), readTimeout)
	defer cancel()
	res, err := c.p.Tool.DeadPurge(ctx)
	if err != nil {
		c.unavailable(w, r, p, err)
		return
	}
	c.done(w, r, p, "/dead", fmt.Sprintf("Purged %d dead letter(s).", res.Purged), zap.String("action", "dead purge"))
}

// delayedJob is a job waiting in dl:delayed.
type delayedJob struct {
	ID       string // ctl.Digest of the payload, for the run-now form
	TaskID   int64
	Payload  string
	Due      time.Time
	In       time.Duration // until due, by Redis's clock
	Attempts int
}

// delayedPage lists the delayed jobs, the one due first first.
func (c *Console) delayedPage(w http.ResponseWriter, r *http.Request, p who) {
	ctx, cancel := context.WithTimeout(r.Context(), readTimeout)
	defer cancel()
	jobs, err := c.p.Tool.Redis.Delayed(ctx)
	if err != nil {
		c.unavailable(w, r, p, err)
		return
	}
	now, err := c.p.Tool.Redis.Now(ctx)
	if err != nil {
		c.unavailable(w, r, p, err)
		return
	}
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	v := listView[delayedJob]{Filter: q, Total: len(jobs)}
	lq := strings.ToLower(q)
	for _, j := range jobs {
		d := delayedJob{ID: ctl.Digest(j.Payload), TaskID: job.TaskID([]byte(j.Payload)), Payload: j.Payload, Due: j.Due, In: j.Due.Sub(now)}
		if !matches(lq, taskText(d.TaskID), d.Payload) {
			continue
		}
		if d.TaskID > 0 {
			if d.Attempts, err = c.p.Tool.Redis.Attempts(ctx, d.TaskID); err != nil {
				c.unavailable(w, r, p, err)
				return
			}
		}
		v.Items = append(v.Items, d)
	}
	c.render(w, r, http.StatusOK, "delayed", c.newView(p, "Delayed", "delayed", v))
}

// delayedRun moves the delayed job named (by id) to the head of the queue.
func (c *Console) delayedRun(w http.ResponseWriter, r *http.Request, p who) {
	id := r.PostFormValue("id")
	ctx, cancel := context.WithTimeout(r.Context(), readTimeout)
	defer cancel()
	jobs, err := c.p.Tool.Redis.Delayed(ctx)
	if err != nil {
		c.unavailable(w, r, p, err)
		return
	}
	for _, j := range jobs {
		if ctl.Digest(j.Payload) != id {
			continue
		}
		ok, err := c.p.Tool.Redis.RunNow(ctx, j.Payload)
		if err != nil {
			c.unavailable(w, r, p, err)
			return
		}
		task := job.TaskID([]byte(j.Payload))
		msg := fmt.Sprintf("The job of task %s is at the head of the queue: the next free worker takes it.", taskText(task))
		if !ok {
			msg = "That job was no longer delayed (due meanwhile, or moved by someone else)."
		}
		c.done(w, r, p, "/delayed", msg, zap.String("action", "run now"), zap.Int64("task_id", task))
		return
	}
	c.done(w, r, p, "/delayed", "That job is no longer delayed (due meanwhile, or moved by someone else).", zap.String("action", "run now"))
}

// taskText is a task id for people, "?" when a payload names none.
func taskText(id int64) string {
	if id <= 0 {
		return "?"
	}
	return strconv.FormatInt(id, 10)
}

// webhooksPage lists the webhook events given up on, the last given up first.
func (c *Console) webhooksPage(w http.ResponseWriter, r *http.Request, p who) {
	ctx, cancel := context.WithTimeout(r.Context(), readTimeout)
	defer cancel()
	l, err := c.p.Tool.OutboxList(ctx)
	if err != nil {
		c.unavailable(w, r, p, err)
		return
	}
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	v := listView[ctl.GivenUpEvent]{Filter: q, Total: len(l.GivenUp), Extra: strconv.FormatInt(l.Waiting, 10)}
	lq := strings.ToLower(q)
	for _, e := range l.GivenUp {
		if matches(lq, taskText(e.TaskID), e.ID, e.Type, e.LastError) {
			v.Items = append(v.Items, e)
		}
	}
	c.render(w, r, http.StatusOK, "webhooks", c.newView(p, "Webhooks given up", "webhooks", v))
}

// webhooksRedeliver sends given-up events again (one by its webhook-id, or
// all), as `workerctl outbox redeliver` does.
func (c *Console) webhooksRedeliver(w http.ResponseWriter, r *http.Request, p who) {
	all := r.PostFormValue("all") == "1"
	var ids []string
	if id := r.PostFormValue("id"); id != "" && !all {
		ids = []string{id}
	}
	ctx, cancel := context.WithTimeout(r.Context(), readTimeout)
	defer cancel()
	res, err := c.p.Tool.OutboxRedeliver(ctx, ids, all)
	if err != nil {
		c.done(w, r, p, "/webhooks", "Nothing redelivered: "+err.Error(), zap.String("action", "redeliver"))
		return
	}
	msg := fmt.Sprintf("%d event(s) due again at once, under their own webhook-id, attempts reset.", len(res.Redelivered))
	c.done(w, r, p, "/webhooks", msg, zap.String("action", "redeliver"), zap.Strings("ids", res.Redelivered))
}

// searchLink is the search page for task id.
func searchLink(id int64) string {
	return "/search?q=" + url.QueryEscape("task:"+strconv.FormatInt(id, 10))
}
