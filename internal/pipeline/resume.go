package pipeline

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"

	"go.uber.org/zap"

	"github.com/coursedl/worker/internal/job"
)

// resume is how far earlier runs of a task got, kept beside its folder in
// <staging_dir>/task-<id>.state, so that a re-run goes on from there: a task
// whose upload waited for the Drive quota does not download again, one whose
// row could not be written after the upload neither downloads nor uploads
// again, and a lesson moved to the destination while the download went on is
// not moved again (the downloader's own archive keeps it from being
// downloaded again). It is removed with the folder after a success.
type resume struct {
	Downloaded bool   `json:"downloaded"`
	Folder     string `json:"folder,omitempty"` // {folder}, once downloaded
	Uploaded   bool   `json:"uploaded"`
	Dest       string `json:"dest,omitempty"`     // where the upload went
	DriveURL   string `json:"driveUrl,omitempty"` // its link
	// Layout is where the files moved while the download went on were put:
	// the first of them fixed it (see layout).
	Layout *layout `json:"layout,omitempty"`
	// Files are the files the downloader announced, by path relative to the
	// task's folder: each is written here before its move starts, and
	// marked moved once rclone has said so.
	Files map[string]*shipped `json:"files,omitempty"`
}

// shipped is an announced file and where it goes: Dest/Sub.
type shipped struct {
	Size  int64  `json:"size"`
	Dest  string `json:"dest"`
	Sub   string `json:"sub"`
	Moved bool   `json:"moved"`
}

// moved lists the files at the destination, sorted, and their bytes.
func (r *resume) moved() ([]string, int64) {
	var rels []string
	var bytes int64
	for rel, f := range r.Files {
		if f.Moved {
			rels = append(rels, rel)
			bytes += f.Size
		}
	}
	sort.Strings(rels)
	return rels, bytes
}

// state is a task's resume in memory, written to its file whole at each
// change. The moves of announced files report from the uploads' goroutines,
// so the resume is read and changed under mu only.
type state struct {
	mu   sync.Mutex
	path string
	r    resume
}

// statePath is the file of a task's resume.
func (p *Pipeline) statePath(id int64) string {
	return filepath.Join(p.StagingDir, job.Name(id)+".state")
}

// loadResume reads a task's resume; a task without one starts afresh, and so
// does one whose file cannot be read (it says so in the worker's log).
func (p *Pipeline) loadResume(t *task) *state {
	s := &state{path: p.statePath(t.id)}
	b, err := os.ReadFile(s.path)
	if errors.Is(err, os.ErrNotExist) {
		return s
	}
	if err == nil {
		err = json.Unmarshal(b, &s.r)
	}
	if err != nil {
		t.rec.log.Warn("the task's state from an earlier run is unreadable; starting afresh", zap.Error(err))
		s.r = resume{}
	}
	return s
}

// view calls f with the resume, which f must not keep.
func (s *state) view(f func(r *resume)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(&s.r)
}

// update changes the resume with f, then writes it, whole or not at all.
// The change stands in memory even when the write fails.
func (s *state) update(f func(r *resume)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(&s.r)
	b, err := json.Marshal(s.r)
	if err != nil {
		return err
	}
	tmp := s.path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o640); err != nil {
		return fmt.Errorf("task state: %w", err)
	}
	if err := os.Rename(tmp, s.path); err != nil {
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
