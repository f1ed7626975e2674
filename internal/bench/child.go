package bench

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// ChildArg is the first argument that runs the bench program as a child: the
// downloader of a benchmark task (see Child).
const ChildArg = "child"

// floodLine is one line of a flood: 100 bytes with its line break, a yt-dlp
// progress line as `yt-dlp --newline` prints one for every fragment (the output
// that floods in practice, and the dearest to handle: parsed and published).
var floodLine = func() []byte {
	b := []byte("[download]  42.3% of ~  1.23GiB at    1.23MiB/s ETA 00:07 (frag 12/345) Go In Depth - lecture 7.mp4")
	for len(b) < 99 {
		b = append(b, '.')
	}
	return append(b[:99], '\n')
}()

// Child runs one child mode with its arguments and returns the exit status:
//
//	flood BYTES DIR [OUT]  BYTES/100 lines of 100 bytes to stdout (or to the file
//	                       OUT), then DIR/Course/a.txt
//	progress SECONDS DIR   a yt-dlp progress line every 100 ms for SECONDS, then
//	                       DIR/Course/a.txt
func Child(args []string) int {
	if len(args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: bench child flood BYTES DIR [OUT] | progress SECONDS DIR")
		return 2
	}
	n, err := strconv.ParseInt(args[1], 10, 64)
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench child: %v\n", err)
		return 2
	}
	dir := args[2]
	switch args[0] {
	case "flood":
		out := io.Writer(os.Stdout)
		if len(args) > 3 {
			f, err := os.OpenFile(args[3], os.O_WRONLY, 0)
			if err != nil {
				fmt.Fprintf(os.Stderr, "bench child: %v\n", err)
				return 1
			}
			defer func() { _ = f.Close() }() // unbuffered: every write has returned already
			out = f
		}
		if err := flood(out, n); err != nil {
			fmt.Fprintf(os.Stderr, "bench child: %v\n", err)
			return 1
		}
	case "progress":
		for i := range n * 10 {
			pct := float64(i) / float64(n*10) * 100
			fmt.Printf("[download] %5.1f%% of ~ 512.00MiB at    2.00MiB/s ETA %02d:%02d (frag %d/%d)\n",
				pct, (n*10-i)/600, (n*10-i)/10%60, i, n*10)
			time.Sleep(100 * time.Millisecond)
		}
	default:
		fmt.Fprintf(os.Stderr, "bench child: unknown mode %q\n", args[0])
		return 2
	}
	if err := lesson(dir); err != nil {
		fmt.Fprintf(os.Stderr, "bench child: %v\n", err)
		return 1
	}
	return 0
}

// flood writes size bytes of floodLine (whole lines) to w.
func flood(w io.Writer, size int64) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	for range size / int64(len(floodLine)) {
		if _, err := bw.Write(floodLine); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// lesson leaves the one file a download makes: dir/Course/a.txt.
func lesson(dir string) error {
	if err := os.MkdirAll(filepath.Join(dir, "Course"), 0o750); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "Course", "a.txt"), []byte("lesson\n"), 0o640)
}
