package progress_test

import (
	"testing"

	"github.com/coursedl/worker/internal/progress"
)

// BenchmarkParseNonProgress parses the lines of yt-dlp's output that say nothing
// about progress; they must not allocate.
func BenchmarkParseNonProgress(b *testing.B) {
	lines := make([][]byte, len(nonProgressLines))
	for i, l := range nonProgressLines {
		lines[i] = []byte(l)
	}
	var d progress.Downloader
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, ok := d.Parse(lines[i%len(lines)]); ok {
			b.Fatalf("update from %q", lines[i%len(lines)])
		}
		i++
	}
}

// BenchmarkParseProgress parses the progress lines of real yt-dlp downloads
// (testdata/ytdlp/hls-newline.txt), in order.
func BenchmarkParseProgress(b *testing.B) {
	var lines [][]byte
	var probe progress.Downloader
	for _, l := range captureLines(b, "ytdlp/hls-newline.txt") {
		if _, ok := probe.Parse(l); ok {
			lines = append(lines, l)
		}
	}
	var d progress.Downloader
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, ok := d.Parse(lines[i%len(lines)]); !ok {
			b.Fatalf("no update from %q", lines[i%len(lines)])
		}
		i++
	}
}

// BenchmarkParseRclone parses the lines of a real rclone move, stats or not.
func BenchmarkParseRclone(b *testing.B) {
	lines := captureLines(b, "rclone/move-json.txt")
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		progress.ParseRclone(lines[i%len(lines)])
		i++
	}
}
