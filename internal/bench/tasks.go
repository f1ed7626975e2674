package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/coursedl/worker/internal/download"
	"github.com/coursedl/worker/internal/job"
	"github.com/coursedl/worker/internal/upload"
)

// Task figures: real tasks through the real worker binary (MariaDB row, Redis
// queue, lock, progress and outbox, task log, lifecycle lines, the webhook to a
// local server), with a downloader that only leaves one file and rclone moving
// it to a local remote.
const taskConcurrency = 4

// benchTask is a row and the job the web app would push for it.
type benchTask struct {
	id      int64
	payload string
}

// newTasks inserts n paid orders and their enrolled tasks.
func (b *Bench) newTasks(ctx context.Context, n int) ([]benchTask, error) {
	return b.newTasksOf(ctx, n, "http://127.0.0.1/courses/go-in-depth")
}

// newTasksOf inserts n paid orders and their enrolled tasks, for the course at
// url.
func (b *Bench) newTasksOf(ctx context.Context, n int, url string) ([]benchTask, error) {
	out := make([]benchTask, 0, n)
	for range n {
		res, err := b.db.ExecContext(ctx, "INSERT INTO orders (email, amount, status) VALUES ('buyer@example.com', 19.99, 'paid')")
		if err != nil {
			return nil, err
		}
		order, _ := res.LastInsertId()
		res, err = b.db.ExecContext(ctx,
			"INSERT INTO download_tasks (order_id, email, course_url, is_enrolled) VALUES (?, 'buyer@example.com', ?, 1)", order, url)
		if err != nil {
			return nil, err
		}
		id, _ := res.LastInsertId()
		out = append(out, benchTask{id: id, payload: fmt.Sprintf(
			`{"taskId": %d, "email": "buyer@example.com", "courseUrl": %q, "orderId": %d}`, id, url, order)})
	}
	return out, nil
}

// push LPUSHes the jobs of tasks, oldest first, as the web app does.
func (b *Bench) push(ctx context.Context, tasks ...benchTask) error {
	args := make([]any, len(tasks))
	for i, t := range tasks {
		args[i] = t.payload
	}
	return b.rdb.LPush(ctx, jobQueue, args...).Err()
}

// await waits for the webhooks of tasks, failing when the worker exits or a task
// takes more than a minute.
func await(ctx context.Context, w *workerProc, hook *hookServer, tasks ...benchTask) error {
	for _, t := range tasks {
		select {
		case <-hook.arrival(t.id):
		case <-w.done:
			return fmt.Errorf("worker exited: %v", w.err) //nolint:errorlint // w.err is nil after a clean exit, which %w would print as %!w(<nil>)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Minute):
			return fmt.Errorf("no webhook for task %d within a minute (see %s)", t.id, filepath.Join(w.dir, "logs"))
		}
	}
	return nil
}

// overheads runs n tasks one at a time and returns, for each, the wall time from
// the push of its job to the arrival of its webhook minus the time its
// subprocesses ran, in milliseconds.
func (b *Bench) overheads(ctx context.Context, w *workerProc, hook *hookServer, n int) ([]float64, error) {
	tasks, err := b.newTasks(ctx, n)
	if err != nil {
		return nil, err
	}
	walls := make(map[int64]time.Duration, n)
	for _, t := range tasks {
		pushed := time.Now()
		if err := b.push(ctx, t); err != nil {
			return nil, err
		}
		if err := await(ctx, w, hook, t); err != nil {
			return nil, err
		}
		walls[t.id] = hook.at(t.id).Sub(pushed)
	}
	// The "task completed" line may come just after the webhook.
	var times map[int64]taskTime
	for deadline := time.Now().Add(10 * time.Second); ; {
		if times, err = w.taskTimes(); err != nil {
			return nil, err
		}
		if allIn(times, tasks) || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	out := make([]float64, 0, n)
	for _, t := range tasks {
		tt, ok := times[t.id]
		if !ok {
			return nil, fmt.Errorf("no task completed line for task %d", t.id)
		}
		out = append(out, ms(walls[t.id]-tt.subprocess))
	}
	return out, nil
}

func allIn(times map[int64]taskTime, tasks []benchTask) bool {
	for _, t := range tasks {
		if _, ok := times[t.id]; !ok {
			return false
		}
	}
	return true
}

// pipelinePass pushes n jobs at once and returns tasks/s until the last webhook.
func (b *Bench) pipelinePass(ctx context.Context, w *workerProc, hook *hookServer, n int) (float64, error) {
	tasks, err := b.newTasks(ctx, n)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	if err := b.push(ctx, tasks...); err != nil {
		return 0, err
	}
	if err := await(ctx, w, hook, tasks...); err != nil {
		return 0, err
	}
	last := start
	for _, t := range tasks {
		if at := hook.at(t.id); at.After(last) {
			last = at
		}
	}
	return float64(n) / last.Sub(start).Seconds(), nil
}

// floor is what the pipeline cannot beat: the same two subprocesses, the
// downloader and rclone move, run by the worker's own download.Runner and
// upload.Uploader, taskConcurrency at a time, and nothing else.
type floor struct {
	download download.Runner
	upload   func(dest string) *upload.Uploader // a new one per pass, to its own Dest
	dir      string
}

// pass runs n (download, move) pairs and returns pairs/s.
func (f *floor) pass(ctx context.Context, n int) (float64, error) {
	base, err := os.MkdirTemp(f.dir, "floor-")
	if err != nil {
		return 0, err
	}
	defer func() { _ = os.RemoveAll(base) }() // inside the scratch folder, which Run removes too
	up := f.upload("local:" + filepath.Join(base, "drive") + "/{task_id}/{folder}")
	up.Prepare(ctx) // once per process in the worker: not part of the pairs timed
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(taskConcurrency)
	start := time.Now()
	for i := range int64(n) {
		g.Go(func() error {
			dir := filepath.Join(base, job.Name(i))
			if err := os.MkdirAll(dir, 0o750); err != nil {
				return err
			}
			if _, err := f.download.Run(gctx, download.Job{TaskID: i, Dir: dir}, nil); err != nil {
				return err
			}
			_, err := up.Upload(gctx, upload.Request{TaskID: i, Source: filepath.Join(dir, "Course"), Folder: "Course"}, nil)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return 0, err
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

// ms is d in milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
