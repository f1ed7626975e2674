package progress_test

import (
	"bytes"
	"math"
	"strings"
	"testing"

	"github.com/coursedl/worker/internal/progress"
)

// addCaptureSeeds adds the first lines of a real capture as seeds.
func addCaptureSeeds(f *testing.F, rel string, n int) {
	lines := captureLines(f, rel)
	for _, l := range lines[:min(n, len(lines))] {
		f.Add(l)
	}
}

// FuzzDownloaderParse gives one Downloader the lines of an arbitrary output
// (split at '\n', as the process package would) and checks every update it
// reports. A downloader's output is not trusted: it may print anything.
// Seeds: testdata/fuzz/FuzzDownloaderParse, and lines of the yt-dlp captures.
func FuzzDownloaderParse(f *testing.F) {
	addCaptureSeeds(f, "ytdlp/newline.txt", 20)
	addCaptureSeeds(f, "ytdlp/tty.txt", 10)
	addCaptureSeeds(f, "ytdlp/hls-newline.txt", 10)
	f.Add([]byte("[download] Downloading item 3 of 2\n[download] 1e309% of ~1e309EiB at 1e400EiB/s ETA 99:99:99"))
	f.Fuzz(func(t *testing.T, out []byte) {
		var d progress.Downloader
		files := 0
		for _, line := range bytes.Split(out, []byte("\n")) {
			u, ok := d.Parse(line)
			if d.Files() < files {
				t.Fatalf("Files went down from %d to %d", files, d.Files())
			}
			files = d.Files()
			if !ok {
				if u != (progress.Update{}) {
					t.Fatalf("Parse(%q) = %+v with ok false", line, u)
				}
				continue
			}
			checkUpdate(t, line, u)
			if u.Item < 0 || u.Items < 0 || u.Item > u.Items {
				t.Fatalf("Parse(%q): item %d of %d", line, u.Item, u.Items)
			}
			// Parse keeps nothing of line: overwriting it changes no update.
			speed, eta := u.Speed, u.ETA
			for i := range line {
				line[i] = 'X'
			}
			if u.Speed != speed || u.ETA != eta {
				t.Fatalf("update shares memory with the line")
			}
		}
	})
}

// FuzzParseRclone checks ParseRclone on arbitrary lines. Seeds:
// testdata/fuzz/FuzzParseRclone, and lines of the rclone captures.
func FuzzParseRclone(f *testing.F) {
	addCaptureSeeds(f, "rclone/move-json.txt", 20)
	addCaptureSeeds(f, "rclone/move-rename-json.txt", 10)
	f.Add([]byte(`{"stats":{"bytes":-5,"totalBytes":-1,"speed":-1e308,"eta":-1}}`))
	f.Add([]byte(`{"stats":{"bytes":9223372036854775807,"totalBytes":1,"speed":1e308,"eta":1e300}}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		u, ok := progress.ParseRclone(line)
		if !ok {
			if u != (progress.Update{}) {
				t.Fatalf("ParseRclone(%q) = %+v with ok false", line, u)
			}
			return
		}
		if !bytes.Contains(line, []byte(`"stats"`)) {
			t.Fatalf("ParseRclone(%q) found stats in a line without them", line)
		}
		checkUpdate(t, line, u)
	})
}

// checkUpdate fails unless u is an update a progress event can carry.
func checkUpdate(t *testing.T, line []byte, u progress.Update) {
	t.Helper()
	if math.IsNaN(u.Percent) || u.Percent < 0 || u.Percent > 100 || (!u.HasPercent && u.Percent != 0) {
		t.Fatalf("Parse(%q): percent %v (known %v)", line, u.Percent, u.HasPercent)
	}
	if u.Bytes < 0 || u.TotalBytes < 0 {
		t.Fatalf("Parse(%q): bytes %d of %d", line, u.Bytes, u.TotalBytes)
	}
	if u.Speed != "" && (!strings.HasSuffix(u.Speed, "/s") || len(u.Speed) > 24 || strings.ContainsAny(u.Speed, " \x1b\"")) {
		t.Fatalf("Parse(%q): speed %q", line, u.Speed)
	}
	if u.ETA != "" && (len(u.ETA) > 16 || strings.Trim(u.ETA, "0123456789:") != "") {
		t.Fatalf("Parse(%q): ETA %q", line, u.ETA)
	}
}
