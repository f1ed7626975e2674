package progress

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

// recorder keeps the updates a Feed hands on.
type recorder struct {
	mu      sync.Mutex
	updates []Update
}

func (r *recorder) Update(_ string, u Update) {
	r.mu.Lock()
	r.updates = append(r.updates, u)
	r.mu.Unlock()
}

// Lines that change the parser's state are parsed in order, after the progress
// line held before them: every update carries the playlist item of the lines it
// came from, and every Destination line is counted. Line by line, or in batches
// as the process package hands them over.
func TestFeedKeepsStateLinesInOrder(t *testing.T) {
	for _, batch := range []int{1, 7, 1000} {
		t.Run(fmt.Sprintf("batches of %d", batch), func(t *testing.T) {
			rec := &recorder{}
			f := &Feed{sink: rec, stage: StageDownloading, every: 5 * time.Millisecond}
			var pending [][]byte
			feed := func(line []byte) {
				pending = append(pending, line)
				if len(pending) == batch {
					f.Lines(pending)
					pending = nil
				}
			}
			// Item 1's lines say 10.0..19.9 %, item 2's 30.0..39.9 %.
			for _, item := range []struct {
				n    int
				base float64
			}{{1, 10}, {2, 30}} {
				feed(fmt.Appendf(nil, "[download] Downloading item %d of 2", item.n))
				feed([]byte("[download] Destination: lesson.mp4"))
				for i := range 100 {
					feed(fmt.Appendf(nil, "[download] %5.1f%% of ~  1.23GiB at    1.23MiB/s ETA 00:07", item.base+float64(i)/10))
					if i%25 == 0 {
						time.Sleep(8 * time.Millisecond) // let intervals end meanwhile
					}
				}
			}
			f.Lines(pending)
			f.Close()
			rec.mu.Lock()
			defer rec.mu.Unlock()
			if len(rec.updates) < 2 || len(rec.updates) > 60 {
				t.Errorf("%d updates from 200 progress lines", len(rec.updates))
			}
			for _, u := range rec.updates {
				if (u.Item == 1) != (u.Percent >= 10 && u.Percent < 20) || (u.Item == 2) != (u.Percent >= 30 && u.Percent < 40) {
					t.Errorf("update with item %d and %.1f %%: parsed with another line's state", u.Item, u.Percent)
				}
			}
			if last := rec.updates[len(rec.updates)-1]; last.Item != 2 || last.Percent != 39.9 {
				t.Errorf("last update: item %d, %.1f %%; want item 2, 39.9 %%", last.Item, last.Percent)
			}
			if n := f.parser.Files(); n != 2 {
				t.Errorf("%d Destination lines counted, want 2", n)
			}
		})
	}
}

func TestIsProgressLine(t *testing.T) {
	tests := []struct {
		line string
		want bool
	}{
		{"[download]  42.3% of ~  1.23GiB at    1.23MiB/s ETA 00:07 (frag 12/345)", true},
		{"[download] 100% of  250.00MiB in 00:00:07 at 33.82MiB/s", true},
		{"[download] N/A% of ~  1.23GiB at  Unknown B/s ETA Unknown", true},
		{"[download]    1.00KiB at    2.00MiB/s (00:00:01)", true},
		{"57.5% done", true},
		{"[download] Destination: Go In Depth/01 intro.mp4", false},
		{"[download] Downloading item 3 of 42", false},
		{"[download] Go In Depth/01 intro.mp4 has already been downloaded", false},
		{"[download] 3 files", false},
		{"[info] Writing video metadata", false},
		{"57 files", false},
		{"", false},
		{"[download]", false},
	}
	for _, tt := range tests {
		if got := isProgressLine([]byte(tt.line)); got != tt.want {
			t.Errorf("isProgressLine(%q) = %v, want %v", tt.line, got, tt.want)
		}
	}
}

// BenchmarkFeedFlood hands a Feed batches of 1,024 yt-dlp progress lines, as a
// downloader flooding its output does: the cost a line of classifying it while
// the publisher's interval runs.
func BenchmarkFeedFlood(b *testing.B) {
	f := &Feed{sink: &recorder{}, stage: StageDownloading, every: time.Hour}
	batch := make([][]byte, 1024)
	for i := range batch {
		batch[i] = fmt.Appendf(nil, "[download]  %4.1f%% of ~  1.23GiB at    1.23MiB/s ETA 00:07 (frag %d/345)", float64(i%1000)/10, i%345)
	}
	f.Lines(batch[:1]) // parsed at once; the interval starts
	b.SetBytes(int64(len(batch[0]) * len(batch)))
	b.ReportAllocs()
	for b.Loop() {
		f.Lines(batch)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(batch)), "ns/line")
	f.Close()
}
