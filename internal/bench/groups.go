package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/coursedl/worker/internal/download"
	"github.com/coursedl/worker/internal/upload"
)

// group is a set of figures measured together.
type group struct {
	name string
	run  func(ctx context.Context, b *Bench) error
}

// groups in the order they run.
var groups = []group{
	{"queue", func(ctx context.Context, b *Bench) error { return b.queueFigures(ctx) }},
	{"tasks", func(ctx context.Context, b *Bench) error { return b.taskFigures(ctx) }},
	{"stream", func(ctx context.Context, b *Bench) error { return b.streamFigures(ctx) }},
	{"process", func(ctx context.Context, b *Bench) error { return b.processFigures(ctx) }},
	{"stats", func(ctx context.Context, b *Bench) error { return b.statsFigures(ctx) }},
	{"replica", func(ctx context.Context, b *Bench) error { return b.replicaFigures(ctx) }},
	{"link", func(ctx context.Context, b *Bench) error { return b.linkFigures(ctx) }},
}

// Groups lists the names of the groups, for the -only flag.
func Groups() []string {
	out := make([]string, len(groups))
	for i, g := range groups {
		out[i] = g.name
	}
	return out
}

// queueFigures: queue_jobs_per_s, queue_vs_naive_ratio.
func (b *Bench) queueFigures(ctx context.Context) error {
	rounds, jobs := 7, 40_000
	if b.opts.Quick {
		rounds, jobs = 2, 10_000
	}
	naive, real, err := b.queueRounds(ctx, rounds, jobs)
	if err != nil {
		return err
	}
	r := ratios(real, naive)
	b.add(Figure{Name: "queue_jobs_per_s", Value: median(real), Unit: "jobs/s",
		Note: fmt.Sprintf("median of %d rounds of %d jobs, 16 consumers, no-op handler; naive BRPOP loop %.0f jobs/s", rounds, jobs, median(naive))})
	b.add(Figure{Name: "queue_vs_naive_ratio", Value: median(r), Unit: "ratio", Decimals: 2, Target: AtLeast(0.8),
		Note: "median of per-round ratios: " + spread(r, 2)})
	return nil
}

// taskFigures: task_overhead_p50_ms, task_overhead_p99_ms, pipeline_tasks_per_s,
// pipeline_vs_floor_ratio.
func (b *Bench) taskFigures(ctx context.Context) error {
	tasks, rounds, perRound := 200, 4, 40
	if b.opts.Quick {
		tasks, rounds, perRound = 20, 1, 12
	}
	hook, err := newHookServer()
	if err != nil {
		return err
	}
	defer hook.Close()
	lessonFile := filepath.Join(b.dir, "lesson.txt")
	if err := os.WriteFile(lessonFile, []byte("lesson\n"), 0o640); err != nil {
		return err
	}
	command := []string{"install", "-D", lessonFile, "{dir}/Course/a.txt"}
	w, err := b.startWorker(ctx, workerSetup{name: "tasks", concurrency: taskConcurrency, download: command, hookURL: hook.URL()})
	if err != nil {
		return err
	}
	defer func() { _ = w.stop() }() // on an early return; the error returned then says more
	if err := w.waitUp(ctx, b.rdb); err != nil {
		return err
	}
	if err := b.overheadFigures(ctx, w, hook, tasks); err != nil {
		return err
	}
	if err := b.pipelineFigures(ctx, w, hook, command, rounds, perRound); err != nil {
		return err
	}
	return w.stop()
}

// overheadFigures: task_overhead_p50_ms, task_overhead_p99_ms, over tasks tasks
// after a warm-up.
func (b *Bench) overheadFigures(ctx context.Context, w *workerProc, hook *hookServer, tasks int) error {
	if _, err := b.overheads(ctx, w, hook, 5); err != nil { // warm-up: connections, scripts
		return err
	}
	oh, err := b.overheads(ctx, w, hook, tasks)
	if err != nil {
		return err
	}
	b.progressf("task overhead over %d tasks: p50 %.2f ms, p99 %.2f ms, max %.2f ms", tasks, quantile(oh, 0.5), quantile(oh, 0.99), quantile(oh, 1))
	note := fmt.Sprintf("%d tasks one at a time: push to webhook received, minus downloader and rclone run time", tasks)
	b.add(Figure{Name: "task_overhead_p50_ms", Value: quantile(oh, 0.5), Unit: "ms", Decimals: 2, Target: AtMost(5), Note: note})
	b.add(Figure{Name: "task_overhead_p99_ms", Value: quantile(oh, 0.99), Unit: "ms", Decimals: 2, Target: AtMost(20), Note: note})
	return nil
}

// pipelineFigures: pipeline_tasks_per_s, pipeline_vs_floor_ratio, in rounds of
// perRound tasks through the worker w, each against the floor of the same
// download command and rclone alone.
func (b *Bench) pipelineFigures(ctx context.Context, w *workerProc, hook *hookServer, command []string, rounds, perRound int) error {
	fl := &floor{
		download: download.Runner{Command: command},
		upload: func(dest string) *upload.Uploader {
			return &upload.Uploader{Rclone: "rclone", Config: filepath.Join(w.dir, "rclone.conf"), Dest: dest, URLTemplate: "https://drive.example/{task_id}/{folder}"}
		},
		dir: b.dir,
	}
	var floors, pipes []float64
	for i := range rounds {
		f, err := fl.pass(ctx, perRound)
		if err != nil {
			return fmt.Errorf("floor: %w", err)
		}
		p, err := b.pipelinePass(ctx, w, hook, perRound)
		if err != nil {
			return fmt.Errorf("pipeline: %w", err)
		}
		floors, pipes = append(floors, f), append(pipes, p)
		b.progressf("pipeline round %d/%d: floor %.1f tasks/s, worker %.1f tasks/s (%.2f)", i+1, rounds, f, p, p/f)
	}
	if n := hook.unverified(); n > 0 {
		return fmt.Errorf("%d webhooks failed verification", n)
	}
	r := ratios(pipes, floors)
	b.add(Figure{Name: "pipeline_tasks_per_s", Value: median(pipes), Unit: "tasks/s", Decimals: 1,
		Note: fmt.Sprintf("median of %d rounds of %d tasks at concurrency %d; floor (the two subprocesses alone) %.1f tasks/s", rounds, perRound, taskConcurrency, median(floors))})
	b.add(Figure{Name: "pipeline_vs_floor_ratio", Value: median(r), Unit: "ratio", Decimals: 2, Target: AtLeast(0.8),
		Note: "median of per-round ratios: " + spread(r, 2)})
	return nil
}

// streamFigures: stream_mib_per_s, stream_vs_copy_ratio, stream_stamp_vs_copy_ratio,
// stream_rss_growth_mib.
func (b *Bench) streamFigures(ctx context.Context) error {
	// The reference swings most (its 64 KiB FIFO makes the child and the copy
	// take turns, at the scheduler's mercy), and a first pass on this VM pays for
	// page-cache memory the others reuse: a warm-up pass of each is not counted,
	// the rounds alternate which goes first, and the ratio is their median.
	size, rounds := int64(500<<20), 7
	if b.opts.Quick {
		size, rounds = 50<<20, 1
	}
	hook, err := newHookServer()
	if err != nil {
		return err
	}
	defer hook.Close()
	download := []string{b.opts.Self, ChildArg, "flood", strconv.FormatInt(size, 10), "{dir}"}
	w, err := b.startWorker(ctx, workerSetup{name: "stream", concurrency: 1, download: download, hookURL: hook.URL()})
	if err != nil {
		return err
	}
	defer func() { _ = w.stop() }() // on an early return; the error returned then says more
	if err := w.waitUp(ctx, b.rdb); err != nil {
		return err
	}
	var copies, streams []float64
	var growth int64
	var stamps []float64
	for i := -1; i < rounds; i++ { // round -1 is the warm-up
		c, st, s, g, err := b.streamRound(ctx, w, hook, size, i%2 != 0)
		if err != nil {
			return err
		}
		if i < 0 {
			b.progressf("stream warm-up: io.Copy %.0f MiB/s, stamping copy %.0f MiB/s, worker %.0f MiB/s (not counted)", c, st, s)
			continue
		}
		copies, streams, stamps = append(copies, c), append(streams, s), append(stamps, st)
		growth = max(growth, g)
		b.progressf("stream round %d/%d: io.Copy %.0f MiB/s, stamping copy %.0f MiB/s (%.2f), worker %.0f MiB/s (%.2f), RSS +%.1f MiB",
			i+1, rounds, c, st, st/c, s, s/c, mib(max(g, 0)))
	}
	r, ceiling := ratios(streams, copies), ratios(stamps, copies)
	b.add(Figure{Name: "stream_mib_per_s", Value: median(streams), Unit: "MiB/s",
		Note: fmt.Sprintf("median of %d rounds after a warm-up: %d MiB of 100-byte lines, downloader to task log; io.Copy to a file %.0f MiB/s", rounds, size>>20, median(copies))})
	b.add(Figure{Name: "stream_vs_copy_ratio", Value: median(r), Unit: "ratio", Decimals: 2, Target: AtLeast(0.8),
		Note: "median of per-round ratios: " + spread(r, 2)})
	b.add(Figure{Name: "stream_stamp_vs_copy_ratio", Value: median(ceiling), Unit: "ratio", Decimals: 2,
		Note: "the ceiling, in the same rounds: a copy that only splits lines and stamps each with a time; per round: " + spread(ceiling, 2)})
	b.add(Figure{Name: "stream_rss_growth_mib", Value: mib(growth), Unit: "MiB", Decimals: 1, Target: AtMost(16),
		Note: "the worst round: peak RSS during the task (the kernel's VmHWM, reset before it) over RSS before it"})
	return w.stop()
}

// streamRound runs one round of the stream group: the io.Copy reference, the
// stamping copy and the worker w, in that order or, when reverse, the other way
// round. It returns their MiB/s (c, st, s) and the worker's RSS growth g.
func (b *Bench) streamRound(ctx context.Context, w *workerProc, hook *hookServer, size int64, reverse bool) (c, st, s float64, g int64, err error) {
	passes := []func() error{
		func() (err error) {
			if c, err = b.copyPass(ctx, size); err != nil {
				return fmt.Errorf("io.Copy reference: %w", err)
			}
			return nil
		},
		func() (err error) {
			if st, err = b.stampPass(ctx, size); err != nil {
				return fmt.Errorf("stamping copy: %w", err)
			}
			return nil
		},
		func() (err error) {
			if s, g, err = b.streamPass(ctx, w, hook, size); err != nil {
				return fmt.Errorf("through the worker: %w", err)
			}
			return nil
		},
	}
	if reverse {
		slices.Reverse(passes)
	}
	for _, pass := range passes {
		if err := pass(); err != nil {
			return 0, 0, 0, 0, err
		}
	}
	return c, st, s, g, nil
}

// processFigures: ready_ms, idle_rss_mib, idle_cpu_percent, busy_rss_mib.
func (b *Bench) processFigures(ctx context.Context) error {
	starts, idleFor, busySeconds := 5, 30*time.Second, 5
	if b.opts.Quick {
		starts, idleFor, busySeconds = 2, 5*time.Second, 2
	}
	hook, err := newHookServer()
	if err != nil {
		return err
	}
	defer hook.Close()
	setup := workerSetup{name: "process", concurrency: 16, hookURL: hook.URL(),
		download: []string{b.opts.Self, ChildArg, "progress", strconv.Itoa(busySeconds), "{dir}"}}

	// Start-up: a fresh process each time; the last one stays for the rest.
	var w *workerProc
	defer func() {
		if w != nil {
			_ = w.stop()
		}
	}()
	if w, err = b.readyFigure(ctx, setup, starts); err != nil {
		return err
	}
	if err := b.idleFigures(ctx, w, idleFor); err != nil {
		return err
	}
	if err := b.busyFigure(ctx, w, hook, busySeconds); err != nil {
		return err
	}
	return w.stop()
}

// readyFigure: ready_ms, over starts fresh starts of the worker as setup
// describes. It returns the worker it started last, still running, for the idle
// and busy figures; it returns it with an error too (nil when the last start
// failed), for the caller to stop.
func (b *Bench) readyFigure(ctx context.Context, setup workerSetup, starts int) (*workerProc, error) {
	var readies []float64
	var w *workerProc
	var err error
	readyNote := ""
	for i := range starts {
		if w != nil {
			if err := w.stop(); err != nil {
				return w, err
			}
		}
		if w, err = b.startWorker(ctx, setup); err != nil {
			return w, err
		}
		d, err := b.readyTime(ctx, w)
		if errors.Is(err, errNoReadyz) {
			readyNote = "NA: the worker binary serves no /readyz yet (metrics.listen is not wired)"
			b.progressf("%s", readyNote)
			if err := w.waitUp(ctx, b.rdb); err != nil {
				return w, err
			}
			break
		}
		if err != nil {
			return w, err
		}
		readies = append(readies, ms(d))
		b.progressf("start %d/%d: /readyz 200 after %.1f ms", i+1, starts, ms(d))
	}
	if readyNote == "" {
		readyNote = fmt.Sprintf("median of %d starts, concurrency 16: process start to the first 200 of /readyz (polled every 2 ms); all: %s",
			starts, spread(readies, 1))
		b.add(Figure{Name: "ready_ms", Value: median(readies), Unit: "ms", Decimals: 1, Target: AtMost(300), Note: readyNote})
	} else {
		b.add(Figure{Name: "ready_ms", Value: NA, Unit: "ms", Decimals: 1, Target: AtMost(300), Note: readyNote})
	}
	return w, nil
}

// idleFigures: idle_rss_mib, idle_cpu_percent, the worker w doing nothing for
// idleFor.
func (b *Bench) idleFigures(ctx context.Context, w *workerProc, idleFor time.Duration) error {
	if err := w.waitUp(ctx, b.rdb); err != nil {
		return err
	}
	time.Sleep(2 * time.Second) // start-up's garbage and connections settle
	cpu, rss, err := idleUse(ctx, w.pid(), idleFor)
	if err != nil {
		return err
	}
	b.progressf("idle for %s: %.2f%% CPU, peak RSS %.1f MiB", idleFor, cpu, mib(rss))
	b.add(Figure{Name: "idle_rss_mib", Value: mib(rss), Unit: "MiB", Decimals: 1, Target: AtMost(25),
		Note: fmt.Sprintf("peak RSS (VmHWM) of an idle worker at concurrency 16 over %s", idleFor)})
	b.add(Figure{Name: "idle_cpu_percent", Value: cpu, Unit: "%", Decimals: 2, Target: AtMost(0.5),
		Note: fmt.Sprintf("utime+stime of an idle worker over %s, in %% of one core", idleFor)})
	return nil
}

// busyFigure: busy_rss_mib, the worker w running 16 tasks at once, each
// downloader printing progress lines for busySeconds.
func (b *Bench) busyFigure(ctx context.Context, w *workerProc, hook *hookServer, busySeconds int) error {
	tasks, err := b.newTasks(ctx, 16)
	if err != nil {
		return err
	}
	busy, err := watchPeak(w.pid())
	if err != nil {
		return err
	}
	if err := b.push(ctx, tasks...); err != nil {
		return err
	}
	if err := await(ctx, w, hook, tasks...); err != nil {
		return err
	}
	peak, err := busy.KiB()
	if err != nil {
		return err
	}
	b.progressf("16 tasks in flight: peak RSS %.1f MiB", mib(peak))
	b.add(Figure{Name: "busy_rss_mib", Value: mib(peak), Unit: "MiB", Decimals: 1, Target: AtMost(64),
		Note: fmt.Sprintf("peak RSS (VmHWM) while 16 tasks run at once (downloaders printing progress for %d s, then rclone)", busySeconds)})
	return nil
}

// statsFigures: stats_ms_100k.
func (b *Bench) statsFigures(ctx context.Context) error {
	const jobs = 100_000
	if b.opts.WorkerCtl == "" {
		b.add(Figure{Name: "stats_ms_100k", Value: NA, Unit: "ms", Decimals: 1, Target: AtMost(50), Note: "NA: no workerctl binary"})
		return nil
	}
	if _, err := os.Stat(b.opts.WorkerCtl); err != nil {
		b.add(Figure{Name: "stats_ms_100k", Value: NA, Unit: "ms", Decimals: 1, Target: AtMost(50),
			Note: "NA: no workerctl binary at " + b.opts.WorkerCtl})
		return nil
	}
	runs := 7
	if b.opts.Quick {
		runs = 3
	}
	times, err := b.statsTimes(ctx, jobs, runs)
	if err != nil {
		return err
	}
	b.add(Figure{Name: "stats_ms_100k", Value: median(times), Unit: "ms", Decimals: 1, Target: AtMost(50),
		Note: fmt.Sprintf("median of %d runs of `workerctl stats`, process start to exit, %d jobs queued; all: %s", runs, jobs, spread(times, 1))})
	return nil
}
