package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/coursedl/worker/internal/process"
)

// Time-to-link figures (issue 14): a course of courseLessons equal lessons from
// the bench's course server, every connection paced to the same rate, through
// real yt-dlp (download.command of configs/worker.example.yaml, as shipped) to
// a local rclone remote throttled by --bwlimit (RCLONE_BWLIMIT) to that rate
// too. Measured alone, in the same run: the download, the upload of the whole
// course, the upload of one lesson; then the worker binary taking the job from
// the push to the webhook, the old way (download.announce none: one move at the
// end) and the new way (each lesson moved once announced). The remote is named
// "drive", not "local": rclone moves within one local remote by renaming, and
// nothing would be throttled.
const courseLessons = 12

// linkBench is the state of the time-to-link group.
type linkBench struct {
	b       *Bench
	course  *courseServer
	hook    *hookServer
	command []string // download.command
	// announce: the worker knows download.announce (a binary without it moves
	// the course the old way whatever it is told).
	announce   bool
	rcloneConf string
	bwlimit    string // RCLONE_BWLIMIT=...
}

// linkTimes are the references measured alone.
type linkTimes struct {
	download, upload, lesson time.Duration
}

// linkRun is one task through the worker.
type linkRun struct {
	took   time.Duration // push to webhook
	peak   int64         // the most bytes the task's staging folder held
	served int64         // bytes of lessons the course server wrote
}

// linkFigures: time_to_link_vs_limit, time_to_link_vs_sequential,
// staging_peak_ratio, resume_redownload_ratio, and the times they come from.
func (b *Bench) linkFigures(ctx context.Context) error {
	size, rate := int64(3<<20), float64(4<<20)
	if b.opts.Quick {
		size, rate = 256<<10, 2<<20
	}
	l := &linkBench{b: b, course: newCourseServer(courseLessons, size, rate),
		bwlimit: "RCLONE_BWLIMIT=" + strconv.FormatInt(int64(rate)>>10, 10) + "k"}
	defer l.course.Close()
	hook, err := newHookServer()
	if err != nil {
		return err
	}
	defer hook.Close()
	l.hook = hook
	if l.command, err = exampleCommand(filepath.Join(b.opts.Root, "configs", "worker.example.yaml")); err != nil {
		return err
	}
	l.rcloneConf = filepath.Join(b.dir, "link-rclone.conf")
	if err := os.WriteFile(l.rcloneConf, []byte("[drive]\ntype = local\n"), 0o600); err != nil {
		return err
	}
	if l.announce, err = l.knowsAnnounce(ctx); err != nil {
		return err
	}
	alone, err := l.aloneTimes(ctx)
	if err != nil {
		return err
	}
	old, err := l.oldWay(ctx)
	if err != nil {
		return err
	}
	pipelined, redone, err := l.newWay(ctx)
	if err != nil {
		return err
	}
	l.figures(alone, old, pipelined, redone)
	return nil
}

// exampleCommand reads download.command from the example configuration: the
// command the worker ships with.
func exampleCommand(path string) ([]string, error) {
	data, err := os.ReadFile(path) //nolint:gosec // G304: the repository's own example
	if err != nil {
		return nil, err
	}
	var cfg struct {
		Download struct {
			Command []string `yaml:"command"`
		} `yaml:"download"`
	}
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(cfg.Download.Command) == 0 {
		return nil, fmt.Errorf("%s: no download.command", path)
	}
	return cfg.Download.Command, nil
}

// knowsAnnounce asks the worker binary, with --check-config, whether it takes
// download.announce (a key it does not know stops it).
func (l *linkBench) knowsAnnounce(ctx context.Context) (bool, error) {
	w := &workerProc{id: "bench-check", dir: filepath.Join(l.b.dir, "link-check")}
	s := l.setup("link-check", "none")
	env := l.b.workerSettings(w, s, l.rcloneConf)
	_, err := process.Run(ctx, process.Spec{Path: l.b.opts.Worker, Args: []string{"--check-config"}, Env: process.MinimalEnv(env)})
	var exit *process.ExitError
	switch {
	case err == nil:
		return true, nil
	case errors.As(err, &exit) && exit.ExitCode > 0:
		l.b.progressf("the worker binary takes no download.announce: both worker runs move the course the old way")
		return false, nil
	}
	return false, fmt.Errorf("worker --check-config: %w", err)
}

// setup is the worker run called name, with download.announce set to announce
// ("" leaves the default).
func (l *linkBench) setup(name, announce string) workerSetup {
	env := map[string]string{
		"WORKER_UPLOAD_CONFIG":      l.rcloneConf,
		"WORKER_UPLOAD_DEST":        "drive:" + filepath.Join(l.b.dir, name, "drive") + "/{task_id}/{folder}",
		"WORKER_UPLOAD_ENV":         `["` + l.bwlimit + `"]`,
		"WORKER_RETRY_MAX_ATTEMPTS": "3",
	}
	if announce != "" {
		env["WORKER_DOWNLOAD_ANNOUNCE"] = announce
	}
	return workerSetup{name: name, concurrency: 2, download: l.command, hookURL: l.hook.URL(), env: env}
}

// figures adds the group's figures.
func (l *linkBench) figures(alone linkTimes, old, pipelined linkRun, redone float64) {
	c := l.course
	course := float64(c.bytes())
	sequential := alone.download + alone.upload
	limit := max(alone.download, alone.upload) + alone.lesson
	how := "download.announce none"
	if !l.announce {
		how = "this worker knows no download.announce: both runs are the old way"
	}
	l.b.add(Figure{Name: "link_download_s", Value: alone.download.Seconds(), Unit: "s", Decimals: 2,
		Note: fmt.Sprintf("yt-dlp alone (download.command), %d lessons of %.2f MiB at %.1f MiB/s a connection: %.2f s of bytes",
			len(c.served), mib(int64(len(c.lesson))>>10), c.rate/(1<<20), course/c.rate)})
	l.b.add(Figure{Name: "link_upload_s", Value: alone.upload.Seconds(), Unit: "s", Decimals: 2,
		Note: fmt.Sprintf("rclone move of the course alone, %s: %.2f s of bytes", l.bwlimit, course/c.rate)})
	l.b.add(Figure{Name: "link_lesson_upload_s", Value: alone.lesson.Seconds(), Unit: "s", Decimals: 2,
		Note: "rclone move of one lesson alone"})
	l.b.add(Figure{Name: "link_old_way_s", Value: old.took.Seconds(), Unit: "s", Decimals: 2,
		Note: fmt.Sprintf("the worker, push to webhook, %s; %.2f of download+upload; staging peak %.2f of the course", how, old.took.Seconds()/sequential.Seconds(), float64(old.peak)/course)})
	l.b.add(Figure{Name: "link_worker_s", Value: pipelined.took.Seconds(), Unit: "s", Decimals: 2,
		Note: "the worker, push to webhook, download.announce default"})
	l.b.add(Figure{Name: "time_to_link_vs_limit", Value: limit.Seconds() / pipelined.took.Seconds(), Unit: "ratio", Decimals: 2, Target: AtLeast(0.85),
		Note: fmt.Sprintf("limit %.2f s = max(download, upload) + one lesson's upload, over the worker's time", limit.Seconds())})
	l.b.add(Figure{Name: "time_to_link_vs_sequential", Value: pipelined.took.Seconds() / sequential.Seconds(), Unit: "ratio", Decimals: 2, Target: AtMost(0.6),
		Note: fmt.Sprintf("the worker's time over download + upload alone (%.2f s)", sequential.Seconds())})
	l.b.add(Figure{Name: "staging_peak_ratio", Value: float64(pipelined.peak) / course, Unit: "ratio", Decimals: 2, Target: AtMost(0.25),
		Note: fmt.Sprintf("the most bytes in the task's staging folder (summed every %s) over the course's %.1f MiB", stagingEvery, course/(1<<20))})
	l.b.add(Figure{Name: "resume_redownload_ratio", Value: redone, Unit: "ratio", Decimals: 3, Target: AtMost(0.15),
		Note: "kill -9 of the worker once half the course is served, restart under the same id: bytes served beyond those of the run without a crash, over the course's"})
}
