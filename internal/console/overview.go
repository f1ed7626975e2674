package console

import (
	"context"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/coursedl/worker/internal/ctl"
	"github.com/coursedl/worker/internal/rdb"
)

// readTimeout bounds the reads of one page.
const readTimeout = 10 * time.Second

// overviewView is the overview page's data.
type overviewView struct {
	Stats    *ctl.Stats
	Running  int
	Alive    int
	Oldest   time.Duration // of the oldest queued job; zero when the queue is empty
	Paused   []pauseView
	Workers  []string // ids, for the pause form
	Ended    chart
	Depth    chart
	Problems []string // what could not be read (the row counts without MySQL)
}

// pauseView is one pause of intake.
type pauseView struct {
	Who, Why string
	All      bool
}

// overview shows the figures of the queue, the charts and the intake switch.
func (c *Console) overview(w http.ResponseWriter, r *http.Request, p who) {
	ctx, cancel := context.WithTimeout(r.Context(), readTimeout)
	defer cancel()
	v := &overviewView{}
	var locks []rdb.TaskLock
	var err error
	if v.Stats, locks, err = c.statsAndLocks(ctx); err != nil {
		c.unavailable(w, r, p, err)
		return
	}
	if v.Oldest, err = c.p.Tool.Redis.OldestQueued(ctx); err != nil {
		c.unavailable(w, r, p, err)
		return
	}
	v.Running = len(locks)
	for _, wk := range v.Stats.Workers {
		if wk.State == ctl.WorkerLive {
			v.Alive++
		}
		if wk.State != ctl.WorkerNoHeartbeat {
			v.Workers = append(v.Workers, wk.ID)
		}
	}
	v.Paused = pauses(v.Stats.Paused)
	v.Depth = depthChart(c.samples.since(c.p.Now().Add(-chartWindow)), c.p.Now())
	if c.p.Rows == nil {
		v.Ended = endedChart(nil)
		v.Ended.Empty = "The tasks finished are counted from MySQL: set mysql.dsn."
	} else if minutes, err := c.p.Rows.EndedPerMinute(ctx, chartWindow); err != nil {
		v.Ended = endedChart(nil)
		v.Problems = append(v.Problems, "Tasks finished: "+err.Error())
	} else {
		v.Ended = endedChart(minutes)
	}
	view := c.newView(p, "Overview", "overview", v)
	view.Refresh = 30
	c.render(w, r, http.StatusOK, "overview", view)
}

// pauses lists the pauses in force, every worker's first.
func pauses(m map[string]string) []pauseView {
	var out []pauseView
	for _, who := range slices.Sorted(maps.Keys(m)) {
		pv := pauseView{Who: who, Why: m[who], All: who == rdb.AllWorkers}
		if pv.All {
			out = append([]pauseView{pv}, out...)
		} else {
			out = append(out, pv)
		}
	}
	return out
}

// unavailable answers 503 when Redis (or MySQL) could not be read.
func (c *Console) unavailable(w http.ResponseWriter, r *http.Request, p who, err error) {
	c.p.Log.Warn("console page could not read its data", zap.String("path", r.URL.Path), zap.Error(err))
	c.fail(w, r, p, http.StatusServiceUnavailable, "Could not read the worker's state: "+err.Error())
}

// pause stops intake of every worker, or of the one named, for the reason
// given; the workers see it within a few seconds.
func (c *Console) pause(w http.ResponseWriter, r *http.Request, p who) {
	worker := r.PostFormValue("worker")
	reason := strings.TrimSpace(r.PostFormValue("reason"))
	if reason == "" {
		reason = "paused from the console"
	}
	reason += " (by " + p.sess.user + ")"
	ctx, cancel := context.WithTimeout(r.Context(), readTimeout)
	defer cancel()
	if _, err := c.p.Tool.Pause(ctx, worker, reason); err != nil {
		c.unavailable(w, r, p, err)
		return
	}
	who := "every worker"
	if worker != "" {
		who = "worker " + worker
	}
	c.done(w, r, p, "/", "Intake paused for "+who+": no new job is taken; running tasks finish.",
		zap.String("action", "pause"), zap.String("worker", worker), zap.String("reason", reason))
}

// resume lifts every pause (an operator's or the breaker's), or the one of
// the worker named.
func (c *Console) resume(w http.ResponseWriter, r *http.Request, p who) {
	var workers []string
	if wk := r.PostFormValue("worker"); wk != "" {
		workers = append(workers, wk)
	}
	ctx, cancel := context.WithTimeout(r.Context(), readTimeout)
	defer cancel()
	in, err := c.p.Tool.Resume(ctx, workers...)
	if err != nil {
		c.unavailable(w, r, p, err)
		return
	}
	msg := "Intake resumed: the workers take jobs again."
	if len(in.Lifted) == 0 {
		msg = "Nothing to resume: intake was not paused."
	}
	c.done(w, r, p, "/", msg, zap.String("action", "resume"), zap.Strings("workers", workers))
}

// done ends an action: the message for the next page, a line in the log
// naming the user, and a redirect to the page to show (POST, then GET).
func (c *Console) done(w http.ResponseWriter, r *http.Request, p who, to, msg string, fields ...zap.Field) {
	c.p.Log.Info("console action", append([]zap.Field{zap.String("user", p.name()), zap.String("result", msg)}, fields...)...)
	c.sessions.setFlash(p.sess, msg)
	http.Redirect(w, r, to, http.StatusSeeOther)
}
