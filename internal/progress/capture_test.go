package progress_test

import (
	"bytes"
	"regexp"
	"testing"

	"github.com/coursedl/worker/internal/progress"
)

// ansi matches the escape sequences of yt-dlp's colours.
var ansi = regexp.MustCompile("\x1b\\[[0-9;]*[A-Za-z]")

// parsed is one update read from a capture, with the line it came from and the
// number of the file (Destination) it belongs to.
type parsed struct {
	line []byte
	file int
	u    progress.Update
}

// parseCapture feeds every line of a capture to one Downloader.
func parseCapture(t *testing.T, rel string) (ups []parsed, d *progress.Downloader, lines [][]byte) {
	t.Helper()
	d = new(progress.Downloader)
	lines = captureLines(t, rel)
	for _, l := range lines {
		if u, ok := d.Parse(l); ok {
			ups = append(ups, parsed{line: l, file: d.Files(), u: u})
		}
	}
	return ups, d, lines
}

// TestDownloaderCaptures replays real yt-dlp 2023.03.04 output (see
// testdata/ytdlp/README.md for how it was made).
func TestDownloaderCaptures(t *testing.T) {
	tests := []struct {
		capture    string
		minUpdates int // updates parsed, at least; 0: none at all
		check      func(*testing.T, []parsed)
	}{
		{capture: "ytdlp/newline.txt", minUpdates: 32, check: checkPercents},
		{capture: "ytdlp/carriage-return.txt", minUpdates: 96, check: checkPercents},
		{capture: "ytdlp/hls-newline.txt", minUpdates: 81, check: checkPercents},
		{capture: "ytdlp/tty.txt", minUpdates: 15, check: checkPercents},
		{capture: "ytdlp/no-length-newline.txt", minUpdates: 13, check: checkBytes},
		{capture: "ytdlp/error.txt"},
	}
	for _, tt := range tests {
		t.Run(tt.capture, func(t *testing.T) {
			ups, d, lines := parseCapture(t, tt.capture)
			t.Logf("%d lines, %d updates", len(lines), len(ups))
			if len(ups) < tt.minUpdates || (tt.minUpdates == 0 && len(ups) > 0) {
				t.Fatalf("%d updates parsed, want at least %d (and none when 0)", len(ups), tt.minUpdates)
			}
			destinations := 0
			for _, l := range lines {
				plain := ansi.ReplaceAll(l, nil)
				if bytes.HasPrefix(plain, []byte("[download] Destination:")) {
					destinations++
				} else if _, ok := new(progress.Downloader).Parse(l); bytes.HasPrefix(plain, []byte("[download]")) && !ok {
					t.Errorf("no update from %q", l)
				}
			}
			if d.Files() != destinations {
				t.Errorf("Files() = %d, want %d (Destination lines)", d.Files(), destinations)
			}
			if tt.check != nil {
				tt.check(t, ups)
			}
		})
	}
}

// checkPercents: within one file percents never go down and end at 100, and a line
// in the middle of a download gives speed and ETA unless it says they are unknown.
func checkPercents(t *testing.T, ups []parsed) {
	t.Helper()
	last := map[int]float64{} // file -> last percent
	mid := 0
	for _, p := range ups {
		u := p.u
		if !u.HasPercent {
			t.Errorf("no percent in %q: %+v", p.line, u)
			continue
		}
		if prev, ok := last[p.file]; ok && u.Percent < prev {
			t.Errorf("file %d: percent went down from %v to %v at %q", p.file, prev, u.Percent, p.line)
		}
		last[p.file] = u.Percent
		if u.TotalBytes < 0 || u.Bytes < 0 || u.Bytes > u.TotalBytes {
			t.Errorf("bytes %d of %d at %q", u.Bytes, u.TotalBytes, p.line)
		}
		if bytes.Contains(p.line, []byte(" of ")) && u.TotalBytes == 0 {
			t.Errorf("no total size from %q", p.line)
		}
		unknown := bytes.Contains(p.line, []byte("Unknown")) || bytes.Contains(p.line, []byte("N/A"))
		if u.Percent > 0 && u.Percent < 100 && !unknown {
			mid++
			if u.Speed == "" || u.ETA == "" {
				t.Errorf("mid-download line %q: speed %q, eta %q", p.line, u.Speed, u.ETA)
			}
		}
	}
	if mid < 5 {
		t.Errorf("%d mid-download lines with speed and ETA, want at least 5", mid)
	}
	for file, p := range last {
		if p != 100 {
			t.Errorf("file %d: last percent %v, want 100", file, p)
		}
	}
}

// checkBytes: a download of unknown size gives rising byte counts and no percent
// until its "100% of" line.
func checkBytes(t *testing.T, ups []parsed) {
	t.Helper()
	var prev int64
	for i, p := range ups {
		u := p.u
		if u.Bytes < prev {
			t.Errorf("bytes went down from %d to %d at %q", prev, u.Bytes, p.line)
		}
		prev = u.Bytes
		if final := i == len(ups)-1; u.HasPercent != final {
			t.Errorf("percent %v (%v) at %q; only the last line has one", u.Percent, u.HasPercent, p.line)
		}
		if !bytes.Contains(p.line, []byte("Unknown")) && u.Speed == "" {
			t.Errorf("no speed from %q", p.line)
		}
	}
	if last := ups[len(ups)-1].u; last.Percent != 100 || last.Bytes == 0 || last.Bytes != last.TotalBytes {
		t.Errorf("last update %+v, want 100%% of a known size", last)
	}
}
