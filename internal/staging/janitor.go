package staging

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/coursedl/worker/internal/job"
	"github.com/coursedl/worker/internal/loop"
	"github.com/coursedl/worker/internal/store"
)

// Defaults of JanitorParams.
const (
	DefaultKeepFailed   = 72 * time.Hour // download.keep_failed
	DefaultJanitorEvery = 10 * time.Minute
)

// Rows reads the statuses of many tasks at once; an id without a row is absent
// from the map. *store.Store satisfies it.
type Rows interface {
	Statuses(ctx context.Context, ids []int64) (map[int64]string, error)
}

// JanitorParams configure a Janitor.
type JanitorParams struct {
	StagingDir string // download.staging_dir, absolute
	// LogsDir is logs.dir; task logs are under <LogsDir>/tasks. Empty leaves
	// task logs alone.
	LogsDir string
	Rows    Rows // required
	// Running reports whether this process runs task id right now; its folder
	// and its logs are left alone whatever its row says. It is called from the
	// janitor's goroutine while tasks start and end, so it must be safe for
	// concurrent use. Nil: none is.
	Running func(id int64) bool
	// KeepFailed is how long the folder of a failed task (or of one without a
	// row) is kept, counted from the folder's mtime. Default DefaultKeepFailed.
	KeepFailed time.Duration
	// LogMaxAge is logs.max_age_days as a duration: task log files unchanged
	// for longer are removed. Zero keeps them whatever their age.
	LogMaxAge time.Duration
	Every     time.Duration // default DefaultJanitorEvery
	Log       *zap.Logger
	Now       func() time.Time
}

// Janitor removes, once at start and then every Every, the task folders and task
// logs that no task of this host needs any more. It runs on every download host;
// each one sweeps its own disk.
type Janitor struct{ JanitorParams }

// NewJanitor returns a Janitor with the defaults applied. It panics without
// Rows: without statuses no folder can be judged.
func NewJanitor(p JanitorParams) *Janitor {
	if p.Rows == nil {
		panic("staging.NewJanitor: Rows is nil")
	}
	if p.Running == nil {
		p.Running = func(int64) bool { return false }
	}
	if p.KeepFailed <= 0 {
		p.KeepFailed = DefaultKeepFailed
	}
	if p.Every <= 0 {
		p.Every = DefaultJanitorEvery
	}
	if p.Log == nil {
		p.Log = zap.NewNop()
	}
	if p.Now == nil {
		p.Now = time.Now
	}
	return &Janitor{p}
}

// Run passes at once, then every Every, until ctx ends; it returns nil then.
func (j *Janitor) Run(ctx context.Context) error {
	return loop.Run(ctx, loop.Params{
		Every:   j.Every,
		Timeout: j.Every,
		Log:     j.Log,
		Failing: "staging janitor failing",
		Back:    "staging janitor back",
	}, func(ctx context.Context) (time.Time, error) {
		_, err := j.Pass(ctx)
		return time.Time{}, err
	})
}

// Report is what one pass removed.
type Report struct {
	Folders int   // task-<id> folders (or links of that name) removed
	Markers int   // task-<id>.<suffix> files removed with their folder
	Logs    int   // task log files removed
	Bytes   int64 // bytes of the regular files removed
}

// Pass sweeps once: the staging folders, then the task logs. A removal that
// fails does not stop the others; the error returned joins every failure.
func (j *Janitor) Pass(ctx context.Context) (Report, error) {
	var r Report
	errFolders := j.sweepFolders(ctx, &r)
	errLogs := j.sweepLogs(ctx, &r)
	return r, errors.Join(errFolders, errLogs)
}

// staged is what the staging directory holds for one task: its folder (or a
// link of that name) and the task-<id>.<suffix> files beside it.
type staged struct {
	folder  fs.DirEntry
	markers []fs.DirEntry
}

// scan sorts the entries of the staging directory by task. Only a task-<id>
// directory or symbolic link counts as a folder, and only a task-<id>.<suffix>
// entry that is not a directory as a marker; the rest is not the janitor's.
func scan(entries []fs.DirEntry) map[int64]*staged {
	byID := map[int64]*staged{}
	get := func(id int64) *staged {
		if byID[id] == nil {
			byID[id] = &staged{}
		}
		return byID[id]
	}
	for _, e := range entries {
		name, kind := e.Name(), e.Type()
		if id, ok := taskID(name); ok {
			if kind.IsDir() || kind&fs.ModeSymlink != 0 {
				get(id).folder = e
			}
			continue
		}
		base, _, found := strings.Cut(name, ".")
		if id, ok := taskID(base); ok && found && !kind.IsDir() {
			get(id).markers = append(get(id).markers, e)
		}
	}
	return byID
}

// taskID parses name as job.Name gives it, "task-<id>": positive, plain digits,
// no leading zero.
func taskID(name string) (int64, bool) {
	digits, ok := strings.CutPrefix(name, "task-")
	if !ok || digits == "" || strings.TrimLeft(digits, "0123456789") != "" {
		return 0, false
	}
	id, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || id <= 0 || job.Name(id) != name {
		return 0, false
	}
	return id, true
}

// sweepFolders removes the task folders whose rows say they are done with, and
// their markers.
func (j *Janitor) sweepFolders(ctx context.Context, r *Report) error {
	entries, err := os.ReadDir(j.StagingDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read staging dir: %w", err)
	}
	byID := scan(entries)
	var ids []int64
	for id, s := range byID {
		if s.folder != nil && !j.Running(id) {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	slices.Sort(ids)
	statuses, err := j.Rows.Statuses(ctx, ids)
	if err != nil {
		return fmt.Errorf("statuses of %d staged tasks: %w", len(ids), err)
	}
	var errs []error
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return err
		}
		status, found := statuses[id]
		errs = append(errs, j.sweepTask(id, byID[id], status, found, r))
	}
	return errors.Join(errs...)
}

// sweepTask removes the folder of task id and its markers when the row allows.
func (j *Janitor) sweepTask(id int64, s *staged, status string, found bool, r *Report) error {
	info, err := s.folder.Info()
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("task %d: %w", id, err)
	}
	age := j.Now().Sub(info.ModTime())
	why, ok := j.verdict(status, found, age)
	// Again just before the removal: the task may have started since the scan.
	if !ok || j.Running(id) {
		return nil
	}
	path := filepath.Join(j.StagingDir, s.folder.Name())
	n, err := remove(path, info)
	if err != nil {
		return fmt.Errorf("remove staging folder of task %d: %w", id, err)
	}
	r.Folders++
	r.Bytes += n
	log := j.Log.With(zap.Int64("task_id", id))
	log.Info("staging folder removed", zap.String("path", path), zap.String("reason", why),
		zap.Duration("age", age.Round(time.Second)), zap.Int64("bytes", n))
	return j.removeMarkers(id, s.markers, log, r)
}

// removeMarkers removes the task-<id>.<suffix> files of a removed folder.
func (j *Janitor) removeMarkers(id int64, markers []fs.DirEntry, log *zap.Logger, r *Report) error {
	var errs []error
	for _, m := range markers {
		mpath := filepath.Join(j.StagingDir, m.Name())
		var n int64
		mi, err := m.Info()
		if err == nil {
			n, err = remove(mpath, mi)
		}
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("remove staging marker of task %d: %w", id, err))
			continue
		}
		r.Markers++
		r.Bytes += n
		log.Info("staging marker removed", zap.String("path", mpath))
	}
	return errors.Join(errs...)
}

// verdict says whether a folder of that age, whose row has status (found
// false: no row), goes, and why.
func (j *Janitor) verdict(status string, found bool, age time.Duration) (string, bool) {
	switch {
	case !found:
		return "no download_tasks row", age >= j.KeepFailed
	case status == store.StatusCompleted:
		// The host that ran it removed its own folder: this one is another run's.
		return "task completed", true
	case status == store.StatusFailed:
		return "task failed", age >= j.KeepFailed
	}
	return "", false
}

// remove removes path, described by info (from Lstat): a directory with all it
// holds, anything else (a link among them) as itself. It returns the bytes of
// the regular files removed.
func remove(path string, info fs.FileInfo) (int64, error) {
	if !info.IsDir() {
		return regularSize(info), os.Remove(path)
	}
	var n int64
	// WalkDir does not follow links; a file it cannot see is still removed below.
	_ = filepath.WalkDir(path, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n, os.RemoveAll(path)
}

// regularSize is the size of a regular file, 0 for anything else.
func regularSize(info fs.FileInfo) int64 {
	if info.Mode().IsRegular() {
		return info.Size()
	}
	return 0
}
