package bench

import (
	"io/fs"
	"path/filepath"
	"sync/atomic"
	"time"
)

// stagingEvery is how often watchStaging sums the staging folder.
const stagingEvery = 20 * time.Millisecond

// stagingWatch samples how many bytes a folder holds until stopped.
type stagingWatch struct {
	quit chan struct{}
	done chan struct{}
	peak atomic.Int64
}

// watchStaging starts summing the sizes of the regular files under dir every
// stagingEvery, keeping the largest sum. The folder need not exist yet.
func watchStaging(dir string) *stagingWatch {
	s := &stagingWatch{quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		tick := time.NewTicker(stagingEvery)
		defer tick.Stop()
		for {
			if n := dirBytes(dir); n > s.peak.Load() {
				s.peak.Store(n)
			}
			select {
			case <-s.quit:
				return
			case <-tick.C:
			}
		}
	}()
	return s
}

// stop ends the sampling and returns the peak.
func (s *stagingWatch) stop() int64 {
	close(s.quit)
	<-s.done
	return s.peak.Load()
}

// peakNow is the peak so far.
func (s *stagingWatch) peakNow() int64 { return s.peak.Load() }

// dirBytes sums the sizes of the regular files under dir, skipping what
// vanishes while it walks.
func dirBytes(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil //nolint:nilerr // a file or folder gone while walking: the others still count
		}
		if d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}
