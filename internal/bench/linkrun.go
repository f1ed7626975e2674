package bench

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/coursedl/worker/internal/download"
	"github.com/coursedl/worker/internal/egress"
	"github.com/coursedl/worker/internal/upload"
)

// aloneTimes measures the references: yt-dlp downloading the course through an
// egress guard as the worker runs it, then rclone moving one lesson, then the
// whole course, with the worker's own download.Runner and upload.Uploader.
func (l *linkBench) aloneTimes(ctx context.Context) (linkTimes, error) {
	var t linkTimes
	base := filepath.Join(l.b.dir, "link-alone")
	dir := filepath.Join(base, "task")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return t, err
	}
	start := time.Now()
	if err := downloadCourse(ctx, l.command, l.course.URL(), dir); err != nil {
		return t, fmt.Errorf("download alone: %w", err)
	}
	t.download = time.Since(start)
	source := filepath.Join(dir, courseTitle)
	if err := l.course.check(source); err != nil {
		return t, fmt.Errorf("download alone: %w", err)
	}
	up := &upload.Uploader{Rclone: "rclone", Config: l.rcloneConf, Env: []string{l.bwlimit},
		Dest: "drive:" + filepath.Join(base, "drive") + "/{task_id}/{folder}", URLTemplate: "https://drive.example/{task_id}/{folder}"}
	up.Prepare(ctx) // once per process in the worker: not part of the times
	one := filepath.Join(base, "lesson", courseTitle)
	if err := os.MkdirAll(one, 0o750); err != nil {
		return t, err
	}
	if err := os.WriteFile(filepath.Join(one, lessonTitle(0)+".mp4"), l.course.lesson, 0o640); err != nil {
		return t, err
	}
	var err error
	if t.lesson, err = timedUpload(ctx, up, 2, one); err != nil {
		return t, fmt.Errorf("one lesson's upload alone: %w", err)
	}
	if t.upload, err = timedUpload(ctx, up, 1, source); err != nil {
		return t, fmt.Errorf("upload alone: %w", err)
	}
	if err := l.course.check(filepath.Join(base, "drive", "1", courseTitle)); err != nil {
		return t, fmt.Errorf("upload alone: %w", err)
	}
	l.b.progressf("alone: download %.2f s, upload %.2f s, one lesson's upload %.2f s", t.download.Seconds(), t.upload.Seconds(), t.lesson.Seconds())
	return t, nil
}

// downloadCourse runs command, a download.command, for the course at url into
// dir, through an egress guard of its own, as the worker runs a task's.
func downloadCourse(ctx context.Context, command []string, url, dir string) error {
	guard, err := egress.Start(ctx, egress.Params{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
	if err != nil {
		return err
	}
	runner := download.Runner{Command: command}
	_, err = runner.Run(ctx, download.Job{TaskID: 1, URL: url, Dir: dir, Proxy: guard.URL(), Env: egress.Env(guard.URL())}, nil)
	if cerr := guard.Close(); err == nil {
		err = cerr
	}
	return err
}

// timedUpload moves the folder source with up as task id and returns how long
// it took.
func timedUpload(ctx context.Context, up *upload.Uploader, id int64, source string) (time.Duration, error) {
	start := time.Now()
	_, err := up.Upload(ctx, upload.Request{TaskID: id, Source: source, Folder: courseTitle}, nil)
	return time.Since(start), err
}

// oldWay runs the course through a worker told to move it the old way.
func (l *linkBench) oldWay(ctx context.Context) (linkRun, error) {
	announce := ""
	if l.announce {
		announce = "none"
	}
	w, err := l.b.startWorker(ctx, l.setup("link-old", announce))
	if err != nil {
		return linkRun{}, err
	}
	defer func() { _ = w.stop() }() // on an early return; the error returned then says more
	if err := w.waitUp(ctx, l.b.rdb); err != nil {
		return linkRun{}, err
	}
	run, err := l.workerRun(ctx, w)
	if err != nil {
		return linkRun{}, fmt.Errorf("the old way: %w", err)
	}
	l.b.progressf("the old way: %.2f s, staging peak %.1f MiB", run.took.Seconds(), float64(run.peak)/(1<<20))
	return run, w.stop()
}

// newWay runs the course through a worker with the default download.announce,
// then a second task on it that is killed half-way; it returns the first run
// and the second's ratio of bytes served again.
func (l *linkBench) newWay(ctx context.Context) (linkRun, float64, error) {
	setup := l.setup("link-new", "")
	w, err := l.b.startWorker(ctx, setup)
	if err != nil {
		return linkRun{}, 0, err
	}
	defer func() { _ = w.stop() }() // on an early return; the error returned then says more
	if err := w.waitUp(ctx, l.b.rdb); err != nil {
		return linkRun{}, 0, err
	}
	run, err := l.workerRun(ctx, w)
	if err != nil {
		return linkRun{}, 0, fmt.Errorf("the new way: %w", err)
	}
	l.b.progressf("the new way: %.2f s, staging peak %.1f MiB", run.took.Seconds(), float64(run.peak)/(1<<20))
	setup.id = w.id
	redone, w, err := l.resume(ctx, w, setup, run.served)
	if err != nil {
		return linkRun{}, 0, fmt.Errorf("resume: %w", err)
	}
	return run, redone, w.stop()
}

// workerRun pushes the job of one new task to w and waits for its webhook,
// sampling the staging folder meanwhile.
func (l *linkBench) workerRun(ctx context.Context, w *workerProc) (linkRun, error) {
	tasks, err := l.b.newTasksOf(ctx, 1, l.course.URL())
	if err != nil {
		return linkRun{}, err
	}
	l.course.reset()
	watch := watchStaging(filepath.Join(w.dir, "staging"))
	pushed := time.Now()
	if err := l.b.push(ctx, tasks...); err != nil {
		watch.stop()
		return linkRun{}, err
	}
	err = await(ctx, w, l.hook, tasks...)
	peak := watch.stop()
	if err != nil {
		return linkRun{}, err
	}
	run := linkRun{took: l.hook.at(tasks[0].id).Sub(pushed), peak: peak, served: l.course.servedBytes()}
	return run, l.course.check(l.delivered(w, tasks[0]))
}

// delivered is where task t's course lands at the destination of w.
func (l *linkBench) delivered(w *workerProc, t benchTask) string {
	return filepath.Join(w.dir, "drive", fmt.Sprint(t.id), courseTitle)
}

// resume pushes one more task to w, kills w with SIGKILL once half the course
// (and half a lesson) has been served, starts it again as setup says (the same
// id), and waits for the webhook. It returns the bytes served beyond whole,
// those of the same task run without a crash, over the course's; and the worker
// now running.
func (l *linkBench) resume(ctx context.Context, w *workerProc, setup workerSetup, whole int64) (float64, *workerProc, error) {
	tasks, err := l.b.newTasksOf(ctx, 1, l.course.URL())
	if err != nil {
		return 0, w, err
	}
	l.course.reset()
	if err := l.b.push(ctx, tasks...); err != nil {
		return 0, w, err
	}
	lesson := int64(len(l.course.lesson))
	half := int64(len(l.course.served))/2*lesson + lesson/2
	if err := l.course.waitServed(ctx, w, half); err != nil {
		return 0, w, err
	}
	if err := w.crash(); err != nil {
		return 0, w, err
	}
	before := l.course.servedBy()
	there := l.course.complete(l.delivered(w, tasks[0]))
	if w, err = l.b.startWorker(ctx, setup); err != nil {
		return 0, w, err
	}
	if err := w.waitUp(ctx, l.b.rdb); err != nil {
		return 0, w, err
	}
	if err := await(ctx, w, l.hook, tasks...); err != nil {
		return 0, w, err
	}
	if err := l.course.check(l.delivered(w, tasks[0])); err != nil {
		return 0, w, err
	}
	total, course := l.course.servedBytes(), l.course.bytes()
	after := l.course.servedBy()
	var was int64
	again := make([]float64, len(after))
	for i := range after {
		was += before[i]
		again[i] = float64(after[i]-before[i]) / (1 << 10)
	}
	l.b.progressf("resume: killed with %.1f MiB served and %d lessons at the destination; %.1f MiB served in all for a course of %.1f MiB; KiB served after the restart, by lesson: %s",
		float64(was)/(1<<20), there, float64(total)/(1<<20), float64(course)/(1<<20), spread(again, 0))
	return float64(total-whole) / float64(course), w, nil
}

// waitServed waits until the server has written at least n bytes of lessons,
// failing when w exits or after two minutes.
func (c *courseServer) waitServed(ctx context.Context, w *workerProc, n int64) error {
	deadline := time.Now().Add(2 * time.Minute)
	for c.servedBytes() < n {
		select {
		case <-w.done:
			return fmt.Errorf("worker exited: %v", w.err) //nolint:errorlint // w.err is nil after a clean exit, which %w would print as %!w(<nil>)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d bytes served in two minutes", c.servedBytes(), n)
		}
	}
	return nil
}

// check says whether the folder dir holds the course: every lesson, whole,
// and nothing else.
func (c *courseServer) check(dir string) error {
	files, err := upload.Files(dir)
	if err != nil {
		return err
	}
	want := make([]string, len(c.served))
	for i := range want {
		want[i] = lessonTitle(i) + ".mp4"
	}
	slices.Sort(files)
	if !slices.Equal(files, want) {
		return fmt.Errorf("%s holds %q, want %q", dir, files, want)
	}
	if n := c.complete(dir); n != len(want) {
		return fmt.Errorf("%s: %d of %d lessons whole", dir, n, len(want))
	}
	return nil
}

// complete counts the lessons whole in dir, byte for byte.
func (c *courseServer) complete(dir string) int {
	n := 0
	for i := range c.served {
		data, err := os.ReadFile(filepath.Join(dir, lessonTitle(i)+".mp4")) //nolint:gosec // G304: the bench's own folders
		if err == nil && bytes.Equal(data, c.lesson) {
			n++
		}
	}
	return n
}
