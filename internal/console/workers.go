package console

import (
	"context"
	"net/http"
	"time"

	"github.com/coursedl/worker/internal/ctl"
	"github.com/coursedl/worker/internal/rdb"
)

// workerView is one worker on the workers page.
type workerView struct {
	ctl.WorkerState
	Age     time.Duration // of its heartbeat, by Redis's clock
	Running []int64       // tasks whose lock it holds
	Paused  string        // why its intake is paused ("" when not); every worker's pause counts
}

// workersPage lists the workers: heartbeat, build, jobs in hand and tasks
// running.
func (c *Console) workersPage(w http.ResponseWriter, r *http.Request, p who) {
	ctx, cancel := context.WithTimeout(r.Context(), readTimeout)
	defer cancel()
	st, locks, err := c.statsAndLocks(ctx)
	if err != nil {
		c.unavailable(w, r, p, err)
		return
	}
	out := make([]workerView, 0, len(st.Workers))
	for _, ws := range st.Workers {
		v := workerView{WorkerState: ws, Paused: st.Paused[ws.ID]}
		if v.Paused == "" {
			v.Paused = st.Paused[rdb.AllWorkers]
		}
		if ws.HeartbeatAgeSeconds != nil {
			v.Age = time.Duration(*ws.HeartbeatAgeSeconds * float64(time.Second))
		}
		for _, l := range locks {
			if l.Worker == ws.ID {
				v.Running = append(v.Running, l.TaskID)
			}
		}
		out = append(out, v)
	}
	c.render(w, r, http.StatusOK, "workers", c.newView(p, "Workers", "workers", out))
}

// statsAndLocks reads what the overview and the workers page both start from:
// the queue's figures and workers (ctl.Tool.Stats) and the tasks running.
func (c *Console) statsAndLocks(ctx context.Context) (*ctl.Stats, []rdb.TaskLock, error) {
	st, err := c.p.Tool.Stats(ctx)
	if err != nil {
		return st, nil, err
	}
	locks, err := c.p.Tool.Redis.Locks(ctx)
	return st, locks, err
}
