package staging

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"go.uber.org/zap"
)

// sweepLogs removes the task log files unchanged for longer than LogMaxAge,
// except those of tasks running here.
func (j *Janitor) sweepLogs(ctx context.Context, r *Report) error {
	if j.LogMaxAge <= 0 || j.LogsDir == "" {
		return nil
	}
	dir := filepath.Join(j.LogsDir, "tasks")
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read task logs dir: %w", err)
	}
	cutoff := j.Now().Add(-j.LogMaxAge)
	var errs []error
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		id, ok := logTaskID(e.Name())
		if !ok || !e.Type().IsRegular() || j.Running(id) {
			continue
		}
		info, err := e.Info()
		if err == nil && !info.ModTime().Before(cutoff) {
			continue
		}
		path := filepath.Join(dir, e.Name())
		if err == nil {
			err = os.Remove(path)
		}
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("remove log of task %d: %w", id, err))
			continue
		}
		r.Logs++
		r.Bytes += info.Size()
		j.Log.Info("task log removed", zap.Int64("task_id", id), zap.String("path", path))
	}
	return errors.Join(errs...)
}

// logTaskID parses the name of a task log file as tasklog writes it:
// task-<id>.log, or a rotated part task-<id>.log.<n>, compressed or not
// (task-<id>.log.<n>.gz).
func logTaskID(name string) (int64, bool) {
	base, rest, found := strings.Cut(name, ".log")
	id, ok := taskID(base)
	if !ok || !found {
		return 0, false
	}
	if rest == "" {
		return id, true
	}
	part, ok := strings.CutPrefix(strings.TrimSuffix(rest, ".gz"), ".")
	if !ok || part == "" || strings.TrimLeft(part, "0123456789") != "" {
		return 0, false
	}
	return id, true
}
