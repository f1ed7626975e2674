package console

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/coursedl/worker/internal/store"
)

// The overview's two charts of the last hour, drawn on the server as SVG (no
// script, no library):
//
//   - tasks finished and failed, a bar a minute, counted from the rows'
//     final writes (Rows.EndedPerMinute): MySQL remembers them, so the chart
//     is whole from the console's first page, whichever host ran the tasks;
//   - the queue depth, a line through the samples this process takes every
//     SampleEvery (Redis keeps no history of it), so it starts when the
//     console starts.

const (
	chartWidth  = 600
	chartHeight = 120
	chartWindow = time.Hour
)

// chart is one SVG chart.
type chart struct {
	Width, Height int
	Label         string // what it shows, for screen readers
	Bars          []bar
	Line          string // the points of a polyline, "x,y x,y ..."; "" for none
	Max           int64  // the value at the top
	Empty         string // said instead when there is nothing to draw
}

// bar is one rectangle of a bar chart.
type bar struct {
	X, Y, W, H float64
	Class      string // "done" or "failed"
	Title      string
}

// sample is the queue depth at a moment.
type sample struct {
	at    time.Time
	depth int64
}

// samples is a ring of the latest samples over window.
type samples struct {
	mu   sync.Mutex
	ring []sample
	next int
	full bool
}

func newSamples(window, every time.Duration) *samples {
	return &samples{ring: make([]sample, int(window/every)+1)}
}

func (s *samples) add(x sample) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ring[s.next] = x
	s.next = (s.next + 1) % len(s.ring)
	s.full = s.full || s.next == 0
}

// since returns the samples taken after from, oldest first.
func (s *samples) since(from time.Time) []sample {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []sample
	n := s.next
	start := 0
	if s.full {
		n, start = len(s.ring), s.next
	}
	for i := range n {
		x := s.ring[(start+i)%len(s.ring)]
		if x.at.After(from) {
			out = append(out, x)
		}
	}
	return out
}

// sample reads the queue depth into the ring.
func (c *Console) sample(ctx context.Context) error {
	d, err := c.p.Tool.Redis.Depths(ctx)
	if err != nil {
		return err
	}
	c.samples.add(sample{at: c.p.Now(), depth: d.Queue})
	return nil
}

// endedChart draws the tasks ended per minute of the last hour, completed
// below and failed above.
func endedChart(minutes []store.EndedMinute) chart {
	ch := chart{Width: chartWidth, Height: chartHeight, Label: "Tasks completed and failed per minute, last hour"}
	slots := int(chartWindow / time.Minute)
	var total int64
	for _, m := range minutes {
		ch.Max = max(ch.Max, int64(m.Completed+m.Failed))
		total += int64(m.Completed + m.Failed)
	}
	if total == 0 {
		ch.Empty = "No task finished in the last hour."
		return ch
	}
	w := float64(chartWidth) / float64(slots)
	scale := float64(chartHeight-14) / float64(ch.Max)
	for _, m := range minutes {
		if m.Ago < 0 || m.Ago >= slots {
			continue
		}
		x := float64(slots-1-m.Ago) * w
		hDone, hFailed := float64(m.Completed)*scale, float64(m.Failed)*scale
		when := "this minute"
		if m.Ago > 0 {
			when = fmt.Sprintf("%d min ago", m.Ago)
		}
		if m.Completed > 0 {
			ch.Bars = append(ch.Bars, bar{X: x + 1, Y: chartHeight - hDone, W: w - 2, H: hDone, Class: "done",
				Title: fmt.Sprintf("%s: %d completed", when, m.Completed)})
		}
		if m.Failed > 0 {
			ch.Bars = append(ch.Bars, bar{X: x + 1, Y: chartHeight - hDone - hFailed, W: w - 2, H: hFailed, Class: "failed",
				Title: fmt.Sprintf("%s: %d failed", when, m.Failed)})
		}
	}
	return ch
}

// depthChart draws the queue depth samples of the last hour before now.
func depthChart(points []sample, now time.Time) chart {
	ch := chart{Width: chartWidth, Height: chartHeight, Label: "Queue depth, last hour"}
	if len(points) == 0 {
		ch.Empty = "No sample yet: the console samples the queue every few seconds from its start."
		return ch
	}
	for _, p := range points {
		ch.Max = max(ch.Max, p.depth)
	}
	top := float64(max(ch.Max, 1))
	from := now.Add(-chartWindow)
	var b strings.Builder
	for _, p := range points {
		x := float64(p.at.Sub(from)) / float64(chartWindow) * chartWidth
		y := chartHeight - float64(p.depth)/top*float64(chartHeight-14)
		fmt.Fprintf(&b, "%.1f,%.1f ", min(max(x, 0), chartWidth), y)
	}
	ch.Line = strings.TrimSpace(b.String())
	return ch
}
