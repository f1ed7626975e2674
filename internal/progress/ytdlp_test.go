package progress_test

import (
	"math"
	"strings"
	"testing"

	"github.com/coursedl/worker/internal/progress"
)

const (
	kib = 1024
	mib = 1024 * kib
	gib = 1024 * mib
)

func TestDownloaderParse(t *testing.T) {
	tests := []struct {
		name   string
		before []string // lines fed first, for the Downloader's state
		line   string
		want   progress.Update
		ok     bool
	}{
		{
			name: "estimated size",
			line: "[download]  42.3% of ~ 10.00MiB at  1.23MiB/s ETA 00:07",
			want: progress.Update{Percent: 42.3, HasPercent: true, Speed: "1.23MiB/s", ETA: "00:07", Bytes: 4435476, TotalBytes: 10 * mib},
			ok:   true,
		},
		{
			name: "fragments",
			line: "[download]  42.3% of 10.00MiB at 1.23MiB/s ETA 00:07 (frag 3/20)",
			want: progress.Update{Percent: 42.3, HasPercent: true, Speed: "1.23MiB/s", ETA: "00:07", Bytes: 4435476, TotalBytes: 10 * mib},
			ok:   true,
		},
		{
			name: "estimated GiB with fragments",
			line: "[download]  12.5% of ~  1.00GiB at  3.00MiB/s ETA 05:00 (frag 1/8)",
			want: progress.Update{Percent: 12.5, HasPercent: true, Speed: "3.00MiB/s", ETA: "05:00", Bytes: gib / 8, TotalBytes: gib},
			ok:   true,
		},
		{
			name: "estimate glued to a size 10 wide",
			line: "[download]  50.0% of ~1023.00KiB at  1.00MiB/s ETA 00:00 (frag 1/2)",
			want: progress.Update{Percent: 50, HasPercent: true, Speed: "1.00MiB/s", ETA: "00:00", Bytes: 1023 * kib / 2, TotalBytes: 1023 * kib},
			ok:   true,
		},
		{
			name: "unknown speed and eta",
			line: "[download]   0.0% of ~ 10.00MiB at Unknown B/s ETA Unknown",
			want: progress.Update{Percent: 0, HasPercent: true, TotalBytes: 10 * mib},
			ok:   true,
		},
		{
			name: "N/A speed and eta",
			line: "[download]  50.0% of 10.00MiB at N/A ETA N/A",
			want: progress.Update{Percent: 50, HasPercent: true, Bytes: 5 * mib, TotalBytes: 10 * mib},
			ok:   true,
		},
		{
			name: "finished with elapsed time",
			line: "[download] 100% of 10.00MiB in 00:00:05 at 2.00MiB/s",
			want: progress.Update{Percent: 100, HasPercent: true, Speed: "2.00MiB/s", Bytes: 10 * mib, TotalBytes: 10 * mib},
			ok:   true,
		},
		{
			name: "last redraw",
			line: "[download] 100.0% of   10.00MiB at    5.00MiB/s ETA 00:00",
			want: progress.Update{Percent: 100, HasPercent: true, Speed: "5.00MiB/s", ETA: "00:00", Bytes: 10 * mib, TotalBytes: 10 * mib},
			ok:   true,
		},
		{
			name: "finished, size only",
			line: "[download] 100% of    4.00MiB",
			want: progress.Update{Percent: 100, HasPercent: true, Bytes: 4 * mib, TotalBytes: 4 * mib},
			ok:   true,
		},
		{
			name: "eta past an hour",
			line: "[download]   1.0% of   10.00GiB at    1.00MiB/s ETA 02:45:33",
			want: progress.Update{Percent: 1, HasPercent: true, Speed: "1.00MiB/s", ETA: "02:45:33", Bytes: 107374182, TotalBytes: 10 * gib},
			ok:   true,
		},
		{
			name: "size not known",
			line: "[download]    1.77MiB at  794.24KiB/s (00:00:02)",
			want: progress.Update{Speed: "794.24KiB/s", Bytes: 1855980},
			ok:   true,
		},
		{
			name: "percent not known, speed known",
			line: "[download]   N/A% at    1.00MiB/s ETA Unknown",
			want: progress.Update{Speed: "1.00MiB/s"},
			ok:   true,
		},
		{
			name: "nothing known",
			line: "[download]   N/A% at  Unknown B/s ETA Unknown",
		},
		{
			name: "over 100 is clamped",
			line: "[download] 142.0% of 1.00MiB at 1.00MiB/s ETA 00:00",
			want: progress.Update{Percent: 100, HasPercent: true, Speed: "1.00MiB/s", ETA: "00:00", Bytes: mib, TotalBytes: mib},
			ok:   true,
		},
		{
			name: "colours of a terminal",
			line: "\x1b[K[download] \x1b[0;94m 63.1%\x1b[0m of    4.00MiB at \x1b[0;32m795.27KiB/s\x1b[0m ETA \x1b[0;33m00:01\x1b[0m",
			want: progress.Update{Percent: 63.1, HasPercent: true, Speed: "795.27KiB/s", ETA: "00:01", Bytes: 2646606, TotalBytes: 4 * mib},
			ok:   true,
		},
		{
			name: "already downloaded",
			line: "[download] /x/y.mp4 has already been downloaded",
			want: progress.Update{Percent: 100, HasPercent: true},
			ok:   true,
		},
		{
			name: "already downloaded, no name",
			line: "[download] The file has already been downloaded",
			want: progress.Update{Percent: 100, HasPercent: true},
			ok:   true,
		},
		{
			name:   "playlist position",
			before: []string{"[download] Downloading playlist: Go In Depth", "[download] Downloading item 3 of 42"},
			line:   "[download]  10.0% of 1.00MiB at 1.00MiB/s ETA 00:01",
			want:   progress.Update{Percent: 10, HasPercent: true, Speed: "1.00MiB/s", ETA: "00:01", Bytes: 104858, TotalBytes: mib, Item: 3, Items: 42},
			ok:     true,
		},
		{name: "bare percent with decimals", line: "  57.5%", want: progress.Update{Percent: 57.5, HasPercent: true}, ok: true},
		{name: "bare percent", line: "57%", want: progress.Update{Percent: 57, HasPercent: true}, ok: true},
		{name: "bare percent and more", line: "100%|##########| 42/42", want: progress.Update{Percent: 100, HasPercent: true}, ok: true},
		{name: "bare percent clamped", line: "150%", want: progress.Update{Percent: 100, HasPercent: true}, ok: true},
		{
			name: "a speed or an ETA far longer than yt-dlp prints is not carried",
			line: "[download]  10.0% of 1.00MiB at " + strings.Repeat("9", 4000) + "MiB/s ETA " + strings.Repeat("1:", 2000) + "1",
			want: progress.Update{Percent: 10, HasPercent: true, Bytes: 104858, TotalBytes: mib},
			ok:   true,
		},
		{
			name: "a size past int64 saturates, never wraps (fuzzing)",
			line: "[download] 99999999999999999999999999.9% of 99999999999999999999EiB",
			want: progress.Update{Percent: 100, HasPercent: true, Bytes: math.MaxInt64, TotalBytes: math.MaxInt64},
			ok:   true,
		},
		{name: "destination", line: "[download] Destination: /x/y.mp4"},
		{name: "destination named like a percent", line: "[download] Destination: /x/57% done.mp4"},
		{name: "playlist item", line: "[download] Downloading item 3 of 42"},
		{name: "retry", line: "[download] Got error: HTTP Error 503: Service Unavailable"},
		{name: "resume", line: "[download] Resuming download at byte 1024"},
		{name: "info", line: "[info] lesson: Downloading 1 format(s): mp4"},
		{name: "extractor", line: "[youtube] dQw4w9WgXcQ: Downloading webpage"},
		{name: "error", line: "ERROR: [generic] None: Unable to download webpage: HTTP Error 404: Not Found"},
		{name: "number without percent", line: "2023-03-04 12:00:00 starting"},
		{name: "percent after a space", line: "57 %"},
		{name: "empty", line: ""},
		{name: "blanks", line: " \t "},
		{name: "download alone", line: "[download]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d progress.Downloader
			for _, l := range tt.before {
				d.Parse([]byte(l))
			}
			got, ok := d.Parse([]byte(tt.line))
			if ok != tt.ok || got != tt.want {
				t.Errorf("Parse(%q)\n got %+v, %v\nwant %+v, %v", tt.line, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestDownloaderDestinationStartsAFile(t *testing.T) {
	var d progress.Downloader
	steps := []struct {
		line    string
		files   int
		percent float64 // -1: no update
	}{
		{"[download] Destination: /x/01.mp4", 1, -1},
		{"[download]  80.0% of 1.00MiB at 1.00MiB/s ETA 00:00", 1, 80},
		{"[download] 100% of 1.00MiB in 00:00:01 at 1.00MiB/s", 1, 100},
		{"[download] Destination: /x/02.mp4", 2, -1},
		{"[download]   0.0% of 2.00MiB at Unknown B/s ETA Unknown", 2, 0},
	}
	for _, s := range steps {
		u, ok := d.Parse([]byte(s.line))
		if got := d.Files(); got != s.files {
			t.Errorf("after %q: Files() = %d, want %d", s.line, got, s.files)
		}
		if s.percent < 0 {
			if ok {
				t.Errorf("Parse(%q) = %+v, want no update", s.line, u)
			}
			continue
		}
		if !ok || !u.HasPercent || u.Percent != s.percent {
			t.Errorf("Parse(%q) = %+v, %v; want percent %v", s.line, u, ok, s.percent)
		}
	}
}

// TestParseNonProgressDoesNotAllocate holds Parse to its promise: the lines that are
// most of yt-dlp's output cost no garbage.
func TestParseNonProgressDoesNotAllocate(t *testing.T) {
	var d progress.Downloader
	for _, line := range nonProgressLines {
		b := []byte(line)
		if n := testing.AllocsPerRun(100, func() { d.Parse(b) }); n != 0 {
			t.Errorf("Parse(%q): %v allocations, want 0", line, n)
		}
	}
}

// nonProgressLines are lines of real yt-dlp output (testdata/ytdlp) that say nothing
// about progress.
var nonProgressLines = []string{
	"[generic] Extracting URL: http://127.0.0.1:36603/lesson.mp4",
	"[generic] lesson: Downloading webpage",
	"[info] lesson: Downloading 1 format(s): mp4",
	"[download] Destination: /tmp/x/lesson.mp4",
	"[hlsnative] Total fragments: 8",
	"ERROR: [generic] None: Unable to download webpage: HTTP Error 404: Not Found (caused by <HTTPError 404: 'Not Found'>)",
	"\x1b[K[download] \x1b[0;94m  N/A%\x1b[0m at \x1b[0;32m Unknown B/s\x1b[0m ETA \x1b[0;33mUnknown\x1b[0m",
}
