package pipeline

import (
	"math"
	"sync"

	"github.com/coursedl/worker/internal/progress"
	"github.com/coursedl/worker/internal/upload"
)

// steady passes a task's progress on so that percent never goes back within
// a stage: downloading's is of the whole course when the downloader says
// which item of how many it is on ("Downloading item 3 of 12", which the
// default command prints), and an update whose percent would go back (the
// next file of a downloader that does not say) goes without one: percent is
// then unknown, not wrong.
type steady struct {
	TaskProgress
	mu    sync.Mutex
	stage string
	last  float64 // the highest percent sent within stage
}

func (s *steady) Update(stage string, u progress.Update) {
	if u.HasPercent && u.Item > 0 && u.Item <= u.Items {
		u.Percent = (float64(u.Item-1)*100 + u.Percent) / float64(u.Items)
	}
	s.mu.Lock()
	if stage != s.stage {
		s.stage, s.last = stage, 0
	}
	if u.HasPercent {
		if u.Percent < s.last {
			u.HasPercent, u.Percent = false, 0
		} else {
			s.last = u.Percent
		}
	}
	s.mu.Unlock()
	s.TaskProgress.Update(stage, u)
}

func (s *steady) Stage(stage string) {
	s.mu.Lock()
	if stage != s.stage {
		s.stage, s.last = stage, 0
	}
	s.mu.Unlock()
	s.TaskProgress.Stage(stage)
}

// meter counts a course's bytes at the destination for the uploading stage's
// percent: the files moved while the download went on count as done from the
// start, then each file moved after, then what rclone reports of the move at
// the end.
type meter struct {
	mu    sync.Mutex
	early bool // some files went, or are going, early; else the final move's own percent stands
	done  int64
	total int64
}

// meter starts the count of a task whose download has ended. Without files
// that went early, it counts nothing: the final move's percent is the
// course's.
func (p *Pipeline) meter(t *task, st *state) *meter {
	var moved int64
	var early bool
	st.view(func(r *resume) { _, moved = r.moved(); early = len(r.Files) > 0 })
	if !early {
		return &meter{}
	}
	left, _ := upload.Size(t.dir)
	return &meter{early: true, done: moved, total: moved + left.Bytes}
}

// add counts a file moved and returns the update to publish.
func (m *meter) add(n int64) progress.Update {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.done += n
	return m.percent(progress.Update{}, 0)
}

// with turns rclone's update of the final move into one of the course.
func (m *meter) with(u progress.Update) progress.Update {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.early {
		return u
	}
	return m.percent(u, u.Bytes)
}

// percent is u with the bytes done, and extra, over the total, when known.
func (m *meter) percent(u progress.Update, extra int64) progress.Update {
	done := m.done + extra
	u.Bytes, u.TotalBytes, u.Item, u.Items = done, m.total, 0, 0
	u.Percent, u.HasPercent = 0, false
	if m.total > 0 {
		u.Percent, u.HasPercent = math.Min(100, math.Floor(float64(done)/float64(m.total)*1000)/10), true
	}
	return u
}
