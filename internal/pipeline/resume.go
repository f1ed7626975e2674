package pipeline

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"go.uber.org/zap"

	"github.com/coursedl/worker/internal/job"
)

// resume is how far earlier runs of a task got, kept beside its folder in
// <staging_dir>/task-<id>.state, so that a re-run goes on from there: a task
// whose upload waited for the Drive quota does not download again, and one
// whose row could not be written after the upload neither downloads nor
// uploads again. It is removed with the folder after a success.
type resume struct {
	Downloaded bool   `json:"downloaded"`
	Folder     string `json:"folder,omitempty"` // {folder}, once downloaded
	Uploaded   bool   `json:"uploaded"`
	Dest       string `json:"dest,omitempty"`     // where the upload went
	DriveURL   string `json:"driveUrl,omitempty"` // its link
}

// statePath is the file of a task's resume.
func (p *Pipeline) statePath(id int64) string {
	return filepath.Join(p.StagingDir, job.Name(id)+".state")
}

// loadResume reads a task's resume; a task without one starts afresh, and so
// does one whose file cannot be read (it says so in the worker's log).
func (p *Pipeline) loadResume(t *task) resume {
	var r resume
	b, err := os.ReadFile(p.statePath(t.id))
	if errors.Is(err, os.ErrNotExist) {
		return r
	}
	if err == nil {
		err = json.Unmarshal(b, &r)
	}
	if err != nil {
		t.rec.log.Warn("the task's state from an earlier run is unreadable; starting afresh", zap.Error(err))
		return resume{}
	}
	return r
}

// save writes r as the task's resume, whole or not at all.
func (p *Pipeline) save(t *task, r resume) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	path := p.statePath(t.id)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o640); err != nil {
		return fmt.Errorf("task state: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("task state: %w", err)
	}
	return nil
}

// forget removes the task's resume: it has ended.
func (p *Pipeline) forget(t *task) {
	if err := os.Remove(p.statePath(t.id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		t.rec.log.Warn("task state not removed", zap.Error(err))
	}
}
