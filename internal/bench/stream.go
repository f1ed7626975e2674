package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/coursedl/worker/internal/process"
	"github.com/coursedl/worker/internal/tasklog"
)

// Stream figures: a downloader printing a flood of 100-byte lines through the
// worker into the task log, against io.Copy of the same child's output into a
// file. Both rates are the bytes over the child's run time (process.Result.
// Duration), which the reader's pace sets: a pipe holds 64 KiB.

// streamPass runs one flood task on w and returns MiB/s and the worker's RSS
// growth in KiB (its peak during the task over its RSS just before).
func (b *Bench) streamPass(ctx context.Context, w *workerProc, hook *hookServer, size int64) (float64, int64, error) {
	tasks, err := b.newTasks(ctx, 1)
	if err != nil {
		return 0, 0, err
	}
	base, err := rssKiB(w.pid())
	if err != nil {
		return 0, 0, err
	}
	rss := sampleRSS(w.pid(), 10*time.Millisecond)
	if err := b.push(ctx, tasks...); err != nil {
		rss.Peak()
		return 0, 0, err
	}
	err = await(ctx, w, hook, tasks...)
	peak, rssErr := rss.Peak()
	if err != nil {
		return 0, 0, err
	}
	if rssErr != nil {
		return 0, 0, rssErr
	}
	logs := filepath.Join(w.dir, "logs")
	d, err := downloadTime(tasklog.Path(logs, tasks[0].id))
	for deadline := time.Now().Add(5 * time.Second); err != nil && time.Now().Before(deadline); {
		// The task log is flushed when the task ends, just after its webhook is
		// released.
		time.Sleep(20 * time.Millisecond)
		d, err = downloadTime(tasklog.Path(logs, tasks[0].id))
	}
	if err != nil {
		return 0, 0, err
	}
	// The task log and its rotated parts hold the flood: free the disk.
	old, _ := filepath.Glob(filepath.Join(logs, "tasks", fmt.Sprintf("task-%d*", tasks[0].id)))
	for _, f := range old {
		_ = os.Remove(f)
	}
	return float64(size) / (1 << 20) / d.Seconds(), peak - base, nil
}

// downloadTime reads the worker's "download finished in D" line, near the end of
// a task log.
func downloadTime(path string) (time.Duration, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	const tail = 64 << 10
	buf := make([]byte, min(fi.Size(), tail))
	if _, err := f.ReadAt(buf, fi.Size()-int64(len(buf))); err != nil && err != io.EOF {
		return 0, err
	}
	const marker = "] download finished in "
	i := bytes.LastIndex(buf, []byte(marker))
	if i < 0 {
		return 0, fmt.Errorf("%s: no %q line at its end", path, marker)
	}
	rest := buf[i+len(marker):]
	if j := bytes.IndexByte(rest, '\n'); j >= 0 {
		rest = rest[:j]
	}
	return time.ParseDuration(string(rest))
}

// copyPass is the reference: the same child floods a pipe (a FIFO, as only
// package process starts programs) and this process io.Copies it into a file.
// It returns MiB/s.
func (b *Bench) copyPass(ctx context.Context, size int64) (float64, error) {
	dir, err := os.MkdirTemp(b.dir, "copy-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	fifo := filepath.Join(dir, "out.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		return 0, fmt.Errorf("mkfifo: %w", err)
	}
	out, err := os.Create(filepath.Join(dir, "out.log"))
	if err != nil {
		return 0, err
	}
	defer out.Close()
	p, err := process.Start(ctx, process.Spec{
		Path: b.opts.Self,
		Args: []string{ChildArg, "flood", strconv.FormatInt(size, 10), dir, fifo},
		Env:  process.MinimalEnv(nil),
	})
	if err != nil {
		return 0, err
	}
	in, err := os.Open(fifo) // returns once the child has opened its end
	if err != nil {
		_, _ = p.Wait()
		return 0, err
	}
	n, copyErr := io.Copy(out, in)
	in.Close()
	res, err := p.Wait()
	switch {
	case err != nil:
		return 0, fmt.Errorf("flood child: %w", err)
	case copyErr != nil:
		return 0, copyErr
	case n != size/int64(len(floodLine))*int64(len(floodLine)):
		return 0, fmt.Errorf("copied %d bytes of %d", n, size)
	}
	return float64(size) / (1 << 20) / res.Duration.Seconds(), nil
}
