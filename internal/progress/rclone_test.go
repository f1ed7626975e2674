package progress_test

import (
	"testing"

	"github.com/coursedl/worker/internal/progress"
)

func TestParseRclone(t *testing.T) {
	tests := []struct {
		name string
		// the line: either line, or line number captured (from 1) of the capture file
		line     string
		capture  string
		captured int
		want     progress.Update
		ok       bool
	}{
		{
			name: "first stats: speed and eta not known yet", capture: "rclone/move-json.txt", captured: 3,
			want: progress.Update{Percent: 9.6, HasPercent: true, Bytes: 483328, TotalBytes: 5000000},
			ok:   true,
		},
		{
			name: "stats mid-transfer", capture: "rclone/move-json.txt", captured: 8,
			want: progress.Update{Percent: 51.6, HasPercent: true, Speed: "2.05MiB/s", ETA: "00:01", Bytes: 2580480, TotalBytes: 5000000},
			ok:   true,
		},
		{
			name: "last stats", capture: "rclone/move-json.txt", captured: 18,
			want: progress.Update{Percent: 100, HasPercent: true, Speed: "2.01MiB/s", ETA: "00:00", Bytes: 5000000, TotalBytes: 5000000},
			ok:   true,
		},
		{
			name: "stats of a server-side move: no size", capture: "rclone/move-rename-json.txt", captured: 3,
			want: progress.Update{}, ok: true,
		},
		{name: "bandwidth limiter", capture: "rclone/move-json.txt", captured: 1},
		{name: "config warning", capture: "rclone/move-json.txt", captured: 2},
		{name: "copied", capture: "rclone/move-json.txt", captured: 12},
		{name: "deleted", capture: "rclone/move-json.txt", captured: 13},
		{
			name: "eta past an hour, speed in B/s",
			line: `{"level":"info","msg":"","stats":{"bytes":1,"totalBytes":3,"speed":512,"eta":3723}}`,
			want: progress.Update{Percent: 33.3, HasPercent: true, Speed: "512.00B/s", ETA: "1:02:03", Bytes: 1, TotalBytes: 3},
			ok:   true,
		},
		{
			name: "fractional eta, KiB/s, GiB/s",
			line: `{"stats":{"bytes":2,"totalBytes":3,"speed":1536,"eta":59.6}}`,
			want: progress.Update{Percent: 66.6, HasPercent: true, Speed: "1.50KiB/s", ETA: "01:00", Bytes: 2, TotalBytes: 3},
			ok:   true,
		},
		{
			name: "GiB/s, more bytes than total",
			line: `{"stats":{"bytes":4,"totalBytes":3,"speed":3221225472,"eta":0}}`,
			want: progress.Update{Percent: 100, HasPercent: true, Speed: "3.00GiB/s", ETA: "00:00", Bytes: 4, TotalBytes: 3},
			ok:   true,
		},
		{
			name: "negative counts are unknown (fuzzing)",
			line: `{"stats":{"bytes":-5,"totalBytes":-1,"speed":-1e308,"eta":-1}}`,
			want: progress.Update{}, ok: true,
		},
		{
			name: "absurd speed and eta are unknown (fuzzing)",
			line: `{"stats":{"bytes":9223372036854775807,"totalBytes":1,"speed":1e308,"eta":1e300}}`,
			want: progress.Update{Percent: 100, HasPercent: true, Bytes: 9223372036854775807, TotalBytes: 1},
			ok:   true,
		},
		{name: "stats is null", line: `{"level":"info","stats":null}`},
		{name: "stats in a message only", line: `{"level":"info","msg":"\"stats\" are off"}`},
		{name: "broken JSON", line: `{"stats":{"bytes":1,`},
		{name: "text stats", line: `Transferred:   	    2.461 MiB / 4.768 MiB, 52%, 2.054 MiB/s, ETA 1s`},
		{name: "text log", line: `2026/11/28 22:02:28 NOTICE: "stats" disabled`},
		{name: "empty", line: ``},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			line := []byte(tt.line)
			if tt.capture != "" {
				lines := captureLines(t, tt.capture)
				if tt.captured < 1 || tt.captured > len(lines) {
					t.Fatalf("%s has %d lines, no line %d", tt.capture, len(lines), tt.captured)
				}
				line = lines[tt.captured-1]
			}
			got, ok := progress.ParseRclone(line)
			if ok != tt.ok || got != tt.want {
				t.Errorf("ParseRclone(%.120q)\n got %+v, %v\nwant %+v, %v", line, got, ok, tt.want, tt.ok)
			}
		})
	}
}

// TestParseRcloneCapture replays `rclone move --use-json-log --stats 200ms -v
// --bwlimit 2M` of 5 MB (rclone v1.60.1; testdata/rclone/README.md tells how).
func TestParseRcloneCapture(t *testing.T) {
	lines := captureLines(t, "rclone/move-json.txt")
	var percents []float64
	speeds := 0
	for _, l := range lines {
		u, ok := progress.ParseRclone(l)
		if !ok {
			continue
		}
		if !u.HasPercent {
			t.Errorf("no percent from %.200q", l)
			continue
		}
		percents = append(percents, u.Percent)
		if u.Speed != "" {
			speeds++
		}
		if u.Bytes > u.TotalBytes {
			t.Errorf("bytes %d of %d", u.Bytes, u.TotalBytes)
		}
	}
	if len(percents) < 5 {
		t.Fatalf("%d stats lines, want at least 5: %v", len(percents), percents)
	}
	for i := 1; i < len(percents); i++ {
		if percents[i] < percents[i-1] {
			t.Errorf("percent went down: %v", percents)
			break
		}
	}
	if last := percents[len(percents)-1]; last != 100 {
		t.Errorf("last percent %v, want 100 (all: %v)", last, percents)
	}
	if speeds == 0 {
		t.Errorf("no stats line gave a speed")
	}
}
