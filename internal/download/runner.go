package download

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/coursedl/worker/internal/process"
)

// Runner runs the configured downloader program. The zero value is not
// usable: Command must hold at least the program.
type Runner struct {
	// Command is the argv template; Command[0] is the program. Each element
	// may hold {url}, {dir}, {task_id}, {cookies} and {proxy} (see Expand).
	Command []string
	// Timeout bounds one run; 0 means none. Past it the downloader's whole
	// process tree is killed.
	Timeout time.Duration
	// Env holds "NAME=value" variables added to the minimal environment of the
	// downloader (see process.MinimalEnv); the worker's own environment is not
	// passed.
	Env []string
	// KillGrace is the time between SIGTERM and SIGKILL when a run is
	// stopped; 0 means process.DefaultKillGrace.
	KillGrace time.Duration
}

// Job is one download: a course URL and the task's folder.
type Job struct {
	TaskID int64
	URL    string
	// Dir is the task's working folder, absolute; it must exist.
	Dir string
	// Cookies is the path of the task's own copy of download.cookies_file
	// ({cookies}); empty without one.
	Cookies string
	// Proxy is the URL of the egress guard the downloader must go through
	// ({proxy}); empty without one.
	Proxy string
	// Env holds "NAME=value" variables of this run, applied after the Runner's
	// (the guard's proxy variables, which download.env must not override).
	Env []string
}

// Expand returns template with {url}, {dir}, {task_id}, {cookies} and {proxy}
// replaced in each element. Elements are never split or joined, so a URL holding spaces, ';'
// or "$(...)" stays one argument, and nothing is ever seen by a shell. The
// replacement is a single pass: a URL holding "{dir}" is not expanded again.
func Expand(template []string, job Job) []string {
	r := strings.NewReplacer(
		"{url}", job.URL,
		"{dir}", job.Dir,
		"{task_id}", strconv.FormatInt(job.TaskID, 10),
		"{cookies}", job.Cookies,
		"{proxy}", job.Proxy,
	)
	argv := make([]string, len(template))
	for i, arg := range template {
		argv[i] = r.Replace(arg)
	}
	return argv
}

// Run runs the downloader for job in job.Dir and passes the lines it prints
// to onLines, those of one read together (which may be nil; see
// process.Spec.OnLines: a downloader may print thousands of lines a second). A
// failure of the downloader is a *process.ExitError, wrapped with the task id.
func (r *Runner) Run(ctx context.Context, job Job, onLines func(process.Stream, [][]byte)) (process.Result, error) {
	if len(r.Command) == 0 || r.Command[0] == "" {
		return process.Result{}, errors.New("download: no command configured")
	}
	if !filepath.IsAbs(job.Dir) {
		return process.Result{}, fmt.Errorf("download task %d: folder %q is not absolute", job.TaskID, job.Dir)
	}
	argv := Expand(r.Command, job)
	res, err := process.Run(ctx, process.Spec{
		Path:      argv[0],
		Args:      argv[1:],
		Dir:       job.Dir,
		Env:       process.MinimalEnv(env(r.Env, job.Env)),
		Timeout:   r.Timeout,
		KillGrace: r.KillGrace,
		OnLines:   onLines,
	})
	if err != nil {
		return res, fmt.Errorf("download task %d: %w", job.TaskID, err)
	}
	return res, nil
}

// env is the downloader's extra environment: the Runner's, then the job's,
// which wins where both name a variable.
func env(runner, job []string) map[string]string {
	m := process.ParseEnv(runner)
	for k, v := range process.ParseEnv(job) {
		m[k] = v
	}
	return m
}
