package console

import (
	"context"
	"net/http"
	"time"

	"github.com/coursedl/worker/internal/progress"
)

// runningTask is a task whose lock a worker holds, with its latest progress.
type runningTask struct {
	TaskID  int64
	Worker  string
	Since   time.Time     // when its worker took the lock, by that worker's clock; zero if unknown
	Elapsed time.Duration // since then, by this host's clock
	Event   *progress.Event
}

// runningTasks reads the tasks running now: the task locks held, and each
// task's latest kept progress event (dl:task:<id>).
func (c *Console) runningTasks(ctx context.Context) ([]runningTask, error) {
	locks, err := c.p.Tool.Redis.Locks(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]runningTask, 0, len(locks))
	for _, l := range locks {
		h, err := c.p.Tool.Redis.Progress(ctx, l.TaskID)
		if err != nil {
			return nil, err
		}
		rt := runningTask{TaskID: l.TaskID, Worker: l.Worker, Since: l.Since, Event: progress.FromFields(h)}
		if !l.Since.IsZero() {
			rt.Elapsed = c.p.Now().Sub(l.Since)
		}
		out = append(out, rt)
	}
	return out, nil
}

// running shows every running task with a progress bar. The bars move with
// the progress events (console.js, over /events/progress); without
// JavaScript the page reloads every few seconds and shows the latest kept
// events.
func (c *Console) running(w http.ResponseWriter, r *http.Request, p who) {
	ctx, cancel := context.WithTimeout(r.Context(), readTimeout)
	defer cancel()
	tasks, err := c.runningTasks(ctx)
	if err != nil {
		c.unavailable(w, r, p, err)
		return
	}
	v := c.newView(p, "Running", "running", tasks)
	v.Refresh = 5
	c.render(w, r, http.StatusOK, "running", v)
}
