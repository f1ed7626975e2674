package progress_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/coursedl/worker/internal/progress"
)

// progressLine is a yt-dlp progress line at pct percent.
func progressLine(pct float64) []byte {
	return fmt.Appendf(nil, "[download] %5.1f%% of ~  1.23GiB at    1.23MiB/s ETA 00:07 (frag 12/345)", pct)
}

// A flood of progress lines gives a few events, and the last line's update comes
// out when the interval is over, without more lines and without Close.
func TestFeedSendsTheLatestOfAFlood(t *testing.T) {
	p, rc := newPublisher(t)
	id := newTaskID()
	sub := subscribe(t, rc, id)
	tp := p.Task(id)
	tp.MinInterval = 50 * time.Millisecond
	t.Cleanup(tp.Close)
	f := progress.NewFeed(tp, progress.StageDownloading, tp.MinInterval)
	t.Cleanup(f.Close)

	for i := 1; i <= 10_000; i++ {
		f.Lines([][]byte{progressLine(float64(i) / 100)})
	}
	sub.waitFor(t, id, "the last line's percent", func(ev progress.Event) bool { return percentOf(ev) == 100 })
	sub.barrier(t, p)
	if got := sub.all(id); len(got) > 10 {
		t.Errorf("10,000 lines at once gave %d events", len(got))
	}
}

// Close parses the line held back, and lines after Close do nothing.
func TestFeedCloseParsesTheHeldLine(t *testing.T) {
	p, rc := newPublisher(t)
	id := newTaskID()
	sub := subscribe(t, rc, id)
	tp := p.Task(id)
	tp.MinInterval = time.Hour // nothing comes out by the timer
	f := progress.NewFeed(tp, progress.StageDownloading, tp.MinInterval)
	f.Lines([][]byte{progressLine(1)})  // parsed at once
	f.Lines([][]byte{progressLine(2)})  // held
	f.Lines([][]byte{progressLine(42)}) // held instead
	f.Close()
	f.Lines([][]byte{progressLine(99)})
	tp.Close()
	sub.barrier(t, p)
	var percents []float64
	for _, r := range sub.all(id) {
		percents = append(percents, percentOf(r.ev))
	}
	if len(percents) == 0 || percents[len(percents)-1] != 42 {
		t.Fatalf("percents %v, want the held 42 last", percents)
	}
}
