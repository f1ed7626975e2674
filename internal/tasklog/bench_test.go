package tasklog

import (
	"bufio"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// benchLine is a typical 100-byte line of downloader output.
var benchLine = func() []byte {
	b := []byte("[download]  42.3% of ~  1.23GiB at    1.23MiB/s ETA 00:07 (frag 12/345) Go In Depth - lecture 7.mp4")
	for len(b) < 100 {
		b = append(b, '.')
	}
	return b[:100]
}()

// BenchmarkLine streams 100-byte lines through Line with the real clock and
// rotation at 10 MB, as a flood of downloader output would.
func BenchmarkLine(b *testing.B) {
	l, _ := openLog(b, Options{MaxSizeMB: 10, MaxBackups: 1}, 1)
	b.SetBytes(int64(len(benchLine)))
	b.ReportAllocs()
	for b.Loop() {
		l.Line(SourceDownload, benchLine)
	}
}

// BenchmarkLines is BenchmarkLine with the lines handed over as the process
// package reads them: about 650 lines of 100 bytes to a 64 KiB read.
func BenchmarkLines(b *testing.B) {
	l, _ := openLog(b, Options{MaxSizeMB: 10, MaxBackups: 1}, 1)
	batch := make([][]byte, (64<<10)/len(benchLine))
	for i := range batch {
		batch[i] = benchLine
	}
	b.SetBytes(int64(len(benchLine) * len(batch)))
	b.ReportAllocs()
	for b.Loop() {
		l.Lines(SourceDownload, batch)
	}
}

// BenchmarkLineParallel is BenchmarkLine with every CPU writing to one log.
func BenchmarkLineParallel(b *testing.B) {
	l, _ := openLog(b, Options{MaxSizeMB: 10, MaxBackups: 1}, 1)
	b.SetBytes(int64(len(benchLine)))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			l.Line(SourceDownload, benchLine)
		}
	})
}

// BenchmarkRawWrite is the floor to compare BenchmarkLine with: the same
// 100-byte lines copied through a 32 KiB buffer into a file, with no
// timestamp, tag, escaping or lock, and the file restarted every 10 MB.
func BenchmarkRawWrite(b *testing.B) {
	f, err := os.Create(filepath.Join(b.TempDir(), "raw.log"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = f.Close() })
	w := bufio.NewWriterSize(f, 32<<10)
	written := 0
	b.SetBytes(int64(len(benchLine)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := w.Write(benchLine); err != nil {
			b.Fatal(err)
		}
		if written += len(benchLine); written >= 10<<20 {
			if err := w.Flush(); err != nil {
				b.Fatal(err)
			}
			if err := f.Truncate(0); err != nil {
				b.Fatal(err)
			}
			if _, err := f.Seek(0, 0); err != nil {
				b.Fatal(err)
			}
			written = 0
		}
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkFormat measures the line format alone, in memory: the prefix, the
// escaping scan and the copy of a 100-byte line, as a flood of output costs.
func BenchmarkFormat(b *testing.B) {
	l := &Log{now: time.Now, buf: make([]byte, 0, flushSize+4<<10)}
	l.prefixLocked(SourceDownload)
	b.SetBytes(int64(len(benchLine)))
	b.ReportAllocs()
	for b.Loop() {
		if len(l.buf) >= flushSize {
			l.buf = l.buf[:0]
		}
		l.appendLocked(benchLine)
	}
}
