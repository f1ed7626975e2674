package faults

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/coursedl/worker/internal/rdb"
)

// testKill9: 30 tasks on two workers of three slots each; 30 times, a worker
// gets SIGKILL at a moment picked in a random stage of the pipeline (waiting
// for enrollment, downloading, uploading, between the row's completion and
// the job's acknowledgement: the first worker seen there; or any moment: a
// random worker) and is started again at once under the same id. Every task
// must complete exactly once.
func testKill9(t *testing.T, c *cluster) {
	const nTasks, nKills = 30, 30
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	t.Logf("seed %d", seed)

	// One task in four waits a moment for the web app's enrollment.
	late := func(i int) bool { return i%4 == 3 }
	tasks := c.addTasks(nTasks, func(i int) bool { return !late(i) })
	ws := []*worker{c.worker("kill9-a", nil), c.worker("kill9-b", nil)}
	for _, w := range ws {
		w.start()
	}
	ctx := testContext(t)
	var lateTasks []*task
	for i, tk := range tasks {
		if late(i) {
			lateTasks = append(lateTasks, tk)
		}
	}
	go c.enrollLater(ctx, lateTasks, 1500*time.Millisecond)
	byPayload := map[string]*task{}
	for _, tk := range tasks {
		byPayload[tk.payload] = tk
	}

	// Some work up front, then one more job after each kill, so that every
	// kill finds tasks under way.
	c.push(tasks[:8]...)
	pushed := 8
	stages := []string{"any", "enrollment", "downloading", "uploading", "completed-not-acked"}
	landed := map[string]int{}
	begin := time.Now()
	for range nKills {
		pause(ctx, time.Duration(100+rng.IntN(500))*time.Millisecond)
		stage := stages[rng.IntN(len(stages))]
		w, got := c.awaitStage(ctx, ws, stage, byPayload, 2*time.Second)
		if w == nil {
			w = ws[rng.IntN(len(ws))]
		}
		landed[got]++
		w.kill()
		w.start()
		if pushed < len(tasks) {
			c.push(tasks[pushed])
			pushed++
		}
	}
	c.push(tasks[pushed:]...)
	var hist []string
	for k, v := range landed {
		hist = append(hist, fmt.Sprintf("%s:%d", k, v))
	}
	slices.Sort(hist)
	t.Logf("%d kills in %s, landed in: %s", nKills, time.Since(begin).Round(time.Millisecond), strings.Join(hist, " "))
	c.verdict("kill9", nKills, true, "landed="+strings.Join(hist, ","))
}

// enrollLater enrolls each task once its row has waited for enrollment for
// wait (status processing), as the web app's enrollment step would.
func (c *cluster) enrollLater(ctx context.Context, tasks []*task, wait time.Duration) {
	seen := map[int64]time.Time{}
	for len(tasks) > 0 && ctx.Err() == nil {
		pause(ctx, 50*time.Millisecond)
		var left []*task
		for _, tk := range tasks {
			var status string
			if err := c.db.GetContext(ctx, &status, "SELECT status FROM download_tasks WHERE id = ?", tk.id); err != nil {
				left = append(left, tk)
				continue
			}
			if status == "processing" && seen[tk.id].IsZero() {
				seen[tk.id] = time.Now()
			}
			if !seen[tk.id].IsZero() && time.Since(seen[tk.id]) >= wait {
				if err := c.enroll(ctx, tk); err == nil {
					continue
				}
			}
			left = append(left, tk)
		}
		tasks = left
	}
}

// awaitStage waits until a job of one of ws is in stage (as its row tells), at
// most within, and returns that worker and the stage; or no worker and
// "missed-<stage>" when none came. "any" returns at once, with no worker.
func (c *cluster) awaitStage(ctx context.Context, ws []*worker, stage string, byPayload map[string]*task, within time.Duration) (*worker, string) {
	if stage == "any" {
		return nil, stage
	}
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		for _, w := range ws {
			if c.inStage(ctx, w, stage, byPayload) {
				return w, stage
			}
		}
		pause(ctx, 5*time.Millisecond)
	}
	return nil, "missed-" + stage
}

// inStage reports whether a job in w's processing list has its row in stage.
func (c *cluster) inStage(ctx context.Context, w *worker, stage string, byPayload map[string]*task) bool {
	payloads, err := c.rdb.LRange(ctx, rdb.ProcessingKey(w.id), 0, -1).Result()
	if err != nil || len(payloads) == 0 {
		return false
	}
	var ids []int64
	for _, p := range payloads {
		if tk := byPayload[p]; tk != nil {
			ids = append(ids, tk.id)
		} else {
			var j struct{ TaskID int64 }
			_ = json.Unmarshal([]byte(p), &j)
			ids = append(ids, j.TaskID)
		}
	}
	q, args, err := sqlx.In("SELECT status, is_enrolled FROM download_tasks WHERE id IN (?)", ids)
	if err != nil {
		return false
	}
	var rows []struct {
		Status   string `db:"status"`
		Enrolled bool   `db:"is_enrolled"`
	}
	if err := c.db.SelectContext(ctx, &rows, q, args...); err != nil {
		return false
	}
	for _, r := range rows {
		switch {
		case stage == "enrollment" && r.Status == "processing" && !r.Enrolled,
			stage == "downloading" && r.Status == "downloading",
			stage == "uploading" && r.Status == "uploading",
			stage == "completed-not-acked" && r.Status == "completed":
			return true
		}
	}
	return false
}
