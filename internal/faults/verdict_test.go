package faults

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/coursedl/worker/internal/notify"
	"github.com/coursedl/worker/internal/rdb"
)

// figures sum up one fault test, for its FAULTS line.
type figures struct {
	name           string
	tasks          int // tasks run
	faults         int // faults injected
	lost           int // tasks not at their final status with the right drive_url
	twice          int // tasks that ended more than once
	deliveriesLost int // tasks whose final event the web app never accepted
	deliveries     int // requests the web app answered 200
	redelivered    int // of which repeated an id already accepted
	extra          string
}

func (f figures) String() string {
	s := fmt.Sprintf("FAULTS %s tasks=%d faults=%d lost=%d twice=%d deliveries_lost=%d deliveries=%d redelivered=%d",
		f.name, f.tasks, f.faults, f.lost, f.twice, f.deliveriesLost, f.deliveries, f.redelivered)
	if f.extra != "" {
		s += " " + f.extra
	}
	return s
}

// leftovers lists what is still waiting in Redis: jobs in the queue, in a
// processing list or in the delayed set, events in the outbox, staged or
// buried, dead letters. Empty means at rest.
func (c *cluster) leftovers(ctx context.Context) ([]string, error) {
	var out []string
	count := func(key string, n int64, err error) error {
		if err != nil {
			return err
		}
		if n > 0 {
			out = append(out, fmt.Sprintf("%s: %d", key, n))
		}
		return nil
	}
	n, err := c.rdb.LLen(ctx, queueKey).Result()
	if err := count(queueKey, n, err); err != nil {
		return nil, err
	}
	keys, err := c.rdb.Keys(ctx, rdb.ProcessingKey("*")).Result()
	if err != nil {
		return nil, err
	}
	slices.Sort(keys)
	for _, k := range keys {
		n, err := c.rdb.LLen(ctx, k).Result()
		if err := count(k, n, err); err != nil {
			return nil, err
		}
	}
	for _, k := range []string{rdb.DelayedKey, rdb.OutboxKey} {
		n, err := c.rdb.ZCard(ctx, k).Result()
		if err := count(k, n, err); err != nil {
			return nil, err
		}
	}
	n, err = c.rdb.HLen(ctx, rdb.OutboxStagedKey).Result()
	if err := count(rdb.OutboxStagedKey, n, err); err != nil {
		return nil, err
	}
	for _, k := range []string{rdb.DeadKey, rdb.OutboxDeadKey} {
		n, err := c.rdb.LLen(ctx, k).Result()
		if err := count(k, n, err); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// row is the part of a download_tasks row the checks read.
type row struct {
	ID       int64          `db:"id"`
	Status   string         `db:"status"`
	DriveURL sql.NullString `db:"drive_url"`
	Error    sql.NullString `db:"error_message"`
}

func (c *cluster) rows(ctx context.Context) (map[int64]row, error) {
	var rows []row
	if err := c.db.SelectContext(ctx, &rows, "SELECT id, status, drive_url, error_message FROM download_tasks"); err != nil {
		return nil, err
	}
	m := make(map[int64]row, len(rows))
	for _, r := range rows {
		m[r.ID] = r
	}
	return m, nil
}

// pending says what keeps the cluster from rest, or "" once every task has
// its final status, the web app has every final event, and Redis holds no job
// and no event.
func (c *cluster) pending(ctx context.Context) string {
	rows, err := c.rows(ctx)
	if err != nil {
		return "rows: " + err.Error()
	}
	var notDone []string
	tl := c.hook.tally()
	for _, tk := range c.allTasks() {
		if rows[tk.id].Status != tk.want {
			notDone = append(notDone, fmt.Sprintf("task %d %s", tk.id, rows[tk.id].Status))
		} else if len(tl.ids(tk.id, "task."+tk.want)) == 0 {
			notDone = append(notDone, fmt.Sprintf("task %d: no event", tk.id))
		}
	}
	left, err := c.leftovers(ctx)
	if err != nil {
		return "redis: " + err.Error()
	}
	return strings.Join(append(notDone, left...), ", ")
}

// waitRest waits until the cluster is at rest, at most within; it returns
// what is still pending then ("" at rest).
func (c *cluster) waitRest(within time.Duration) string {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	var last string
	for {
		pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
		last = c.pending(pctx)
		pcancel()
		if last == "" {
			return ""
		}
		select {
		case <-ctx.Done():
			return last
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// verdict waits for rest, then checks every task, event, file and list,
// logs the figures and fails the test on any loss or double run. With
// redelivery, an event accepted once may come again (a worker died between
// the web app's answer and the outbox's record of it); the web app knows it
// by its webhook-id.
func (c *cluster) verdict(name string, faults int, redelivery bool, extra string) figures {
	c.t.Helper()
	t := c.t
	if p := c.waitRest(3 * time.Minute); p != "" {
		t.Errorf("not at rest: %s", p)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	f := figures{name: name, faults: faults, extra: extra}
	rows, err := c.rows(ctx)
	if err != nil {
		t.Fatalf("rows: %v", err)
	}
	lines := c.lifecycleCounts()
	tl := c.hook.tally()
	for _, n := range tl.count {
		f.deliveries += n
		f.redelivered += n - 1
	}
	tasks := c.allTasks()
	f.tasks = len(tasks)
	for _, tk := range tasks {
		r := rows[tk.id]
		switch {
		case r.Status != tk.want:
			f.lost++
			t.Errorf("task %d: status %q (error %q), want %q", tk.id, r.Status, r.Error.String, tk.want)
		case tk.want == "completed" && r.DriveURL.String != tk.driveURL():
			f.lost++
			t.Errorf("task %d: drive_url %q, want %q", tk.id, r.DriveURL.String, tk.driveURL())
		case tk.want == "failed" && r.Error.String != "enrollment required":
			f.lost++
			t.Errorf("task %d: error_message %q, want %q", tk.id, r.Error.String, "enrollment required")
		}
		typ, other := "task."+tk.want, "task.failed"
		event, otherEvent := "TASK_COMPLETED", "TASK_FAILED"
		if tk.want == "failed" {
			other, event, otherEvent = "task.completed", "TASK_FAILED", "TASK_COMPLETED"
		}
		ids := tl.ids(tk.id, typ)
		twice := false
		switch {
		case len(ids) == 0:
			f.deliveriesLost++
			t.Errorf("task %d: no %s event accepted", tk.id, typ)
		case len(ids) > 1:
			twice = true
			t.Errorf("task %d: %d distinct %s webhook-ids %q, want 1", tk.id, len(ids), typ, ids)
		}
		if o := tl.ids(tk.id, other); len(o) > 0 {
			twice = true
			t.Errorf("task %d: also %s events %q", tk.id, other, o)
		}
		if n := lines[event][tk.id]; n > 1 {
			twice = true
			t.Errorf("task %d: %d %s lifecycle lines, want at most 1", tk.id, n, event)
		}
		if n := lines[otherEvent][tk.id]; n > 0 {
			twice = true
			t.Errorf("task %d: %d %s lifecycle lines", tk.id, n, otherEvent)
		}
		if twice {
			f.twice++
		}
		for _, id := range ids {
			c.checkEvent(tk, id, tl.events[id])
			if n := tl.count[id]; n > 1 && !redelivery {
				t.Errorf("task %d: webhook-id %s accepted %d times, want once", tk.id, id, n)
			}
		}
	}
	for _, b := range tl.bad {
		t.Errorf("webhook refused: %s", b)
	}
	if left, err := c.leftovers(ctx); err != nil || len(left) > 0 {
		t.Errorf("left in Redis: %v %v", left, err)
	}
	c.checkDrive(tasks)
	c.checkRaces()
	t.Log(f.String())
	if f.lost+f.twice+f.deliveriesLost > 0 {
		t.Errorf("%s: %d lost, %d run twice, %d deliveries lost", name, f.lost, f.twice, f.deliveriesLost)
	}
	return f
}

// checkEvent checks the accepted event's fields against the task.
func (c *cluster) checkEvent(tk *task, id string, ev notify.Event) {
	c.t.Helper()
	if ev.OrderID == nil || *ev.OrderID != tk.orderID || ev.Email != tk.email {
		c.t.Errorf("task %d: event %s for order %v, %q", tk.id, id, ev.OrderID, ev.Email)
	}
	if tk.want == "completed" && (ev.DriveURL != tk.driveURL() || ev.Folder != "Fake Course") {
		c.t.Errorf("task %d: event %s has driveUrl %q, folder %q", tk.id, id, ev.DriveURL, ev.Folder)
	}
}

// checkDrive checks that the drive holds each completed task's lessons (two,
// or the cluster's lessons) once, in the task's own folder, and nothing else.
func (c *cluster) checkDrive(tasks []*task) {
	c.t.Helper()
	drive := filepath.Join(c.root, "drive")
	want := map[string]string{}
	for _, tk := range tasks {
		if tk.want != "completed" {
			continue
		}
		for n := 1; n <= max(2, c.lessons); n++ {
			want[fmt.Sprintf("%d/lesson-%d.txt", tk.id, n)] = fmt.Sprintf("lesson %d of %s\n", n, tk.url)
		}
	}
	got := map[string]string{}
	_ = filepath.WalkDir(drive, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(drive, path)
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		got[filepath.ToSlash(rel)] = string(b)
		return nil
	})
	var extra, missing []string
	for k, v := range got {
		w, ok := want[k]
		switch {
		case !ok:
			extra = append(extra, k)
		case v != w:
			c.t.Errorf("drive: %s holds %q, want %q", k, v, w)
		}
	}
	for k := range want {
		if _, ok := got[k]; !ok {
			missing = append(missing, k)
		}
	}
	sort.Strings(extra)
	sort.Strings(missing)
	if len(extra) > 0 {
		c.t.Errorf("drive: unexpected files %q", extra)
	}
	if len(missing) > 0 {
		c.t.Errorf("drive: missing files %q", missing)
	}
}

// lifecycleLine matches the event and task of a lifecycle line.
var lifecycleLine = regexp.MustCompile(`^\S+ \[([A-Z_]+)\] \[TaskId: (\d+)\]`)

// lifecycleCounts counts, in every worker's lifecycle files, the lines of
// each event for each task.
func (c *cluster) lifecycleCounts() map[string]map[int64]int {
	out := map[string]map[int64]int{}
	files, _ := filepath.Glob(filepath.Join(c.root, "logs-*", "lifecycle-*.log"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			c.t.Errorf("lifecycle: %v", err)
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			m := lifecycleLine.FindStringSubmatch(line)
			if m == nil {
				continue
			}
			id, _ := strconv.ParseInt(m[2], 10, 64)
			if out[m[1]] == nil {
				out[m[1]] = map[int64]int{}
			}
			out[m[1]][id]++
		}
	}
	return out
}

// checkRaces fails the test if a worker built with -race reported one.
func (c *cluster) checkRaces() {
	c.t.Helper()
	for _, w := range c.allWorkers() {
		b, err := os.ReadFile(w.out.path)
		if err == nil && strings.Contains(string(b), "WARNING: DATA RACE") {
			c.t.Errorf("worker %s: data race; see %s", w.id, w.out.path)
		}
	}
}
