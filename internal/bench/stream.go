package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/coursedl/worker/internal/job"
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
	rss, err := watchPeak(w.pid())
	if err != nil {
		return 0, 0, err
	}
	if err := b.push(ctx, tasks...); err != nil {
		return 0, 0, err
	}
	if err := await(ctx, w, hook, tasks...); err != nil {
		return 0, 0, err
	}
	peak, err := rss.KiB()
	if err != nil {
		return 0, 0, err
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
	old, _ := filepath.Glob(filepath.Join(logs, "tasks", job.Name(tasks[0].id)+"*"))
	for _, f := range old {
		_ = os.Remove(f)
	}
	return float64(size) / (1 << 20) / d.Seconds(), peak - base, nil
}

// downloadTime reads the worker's "download finished in D" line, near the end of
// a task log.
func downloadTime(path string) (time.Duration, error) {
	f, err := os.Open(path) //nolint:gosec // G304: a task log of the bench's own worker
	if err != nil {
		return 0, err
	}
	defer func() { _ = f.Close() }() // read only
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
	return b.fifoPass(ctx, size, func(out io.Writer, in io.Reader) (int64, error) { return io.Copy(out, in) })
}

// stampPass is the ceiling of any worker: the copy of copyPass with the least a
// task log must add, each line split off and given the contract's 25-byte time,
// the file written from a second goroutine. No escaping, no progress parsing, one
// time for the whole run. It returns MiB/s.
func (b *Bench) stampPass(ctx context.Context, size int64) (float64, error) {
	return b.fifoPass(ctx, size, stampCopy)
}

// fifoPass runs the flood child into a FIFO that move reads into a file, and
// returns MiB/s over the child's run time.
func (b *Bench) fifoPass(ctx context.Context, size int64, move func(out io.Writer, in io.Reader) (int64, error)) (float64, error) {
	dir, err := os.MkdirTemp(b.dir, "copy-")
	if err != nil {
		return 0, err
	}
	defer func() { _ = os.RemoveAll(dir) }() // inside the scratch folder, which Run removes too
	fifo := filepath.Join(dir, "out.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		return 0, fmt.Errorf("mkfifo: %w", err)
	}
	out, err := os.Create(filepath.Join(dir, "out.log")) //nolint:gosec // G304: in the bench's scratch folder
	if err != nil {
		return 0, err
	}
	defer func() { _ = out.Close() }() // a scratch copy, removed with dir
	p, err := process.Start(ctx, process.Spec{
		Path: b.opts.Self,
		Args: []string{ChildArg, "flood", strconv.FormatInt(size, 10), dir, fifo},
		Env:  process.MinimalEnv(nil),
	})
	if err != nil {
		return 0, err
	}
	in, err := os.Open(fifo) //nolint:gosec // G304: the FIFO made above; Open returns once the child has opened its end
	if err != nil {
		_, _ = p.Wait()
		return 0, err
	}
	_, copyErr := move(out, in)
	_ = in.Close() // read to the end or failed: copyErr says which
	res, err := p.Wait()
	switch {
	case err != nil:
		return 0, fmt.Errorf("flood child: %w", err)
	case copyErr != nil:
		return 0, copyErr
	}
	fi, err := out.Stat()
	if err != nil {
		return 0, err
	}
	if lines := size / int64(len(floodLine)); fi.Size() < lines*int64(len(floodLine)) {
		return 0, fmt.Errorf("wrote %d bytes of %d lines of %d", fi.Size(), lines, len(floodLine))
	}
	return float64(size) / (1 << 20) / res.Duration.Seconds(), nil
}

// stampCopy copies in to out line by line, each line after a 25-byte time,
// "2026-11-28T20:00:00.123Z ", through four 512 KiB buffers that a second
// goroutine writes in 64 KiB pieces, as package tasklog writes.
func stampCopy(out io.Writer, in io.Reader) (int64, error) {
	stamp := time.Now().UTC().AppendFormat(nil, "2006-01-02T15:04:05.000Z ")
	const bufSize, buffers, piece = 512 << 10, 4, 64 << 10
	full, free := make(chan []byte, buffers), make(chan []byte, buffers)
	for range buffers {
		free <- make([]byte, 0, bufSize+4<<10)
	}
	var written int64
	var writeErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		for buf := range full {
			for off := 0; off < len(buf) && writeErr == nil; off += piece {
				var n int
				n, writeErr = out.Write(buf[off:min(len(buf), off+piece)])
				written += int64(n)
			}
			free <- buf[:0]
		}
	}()
	rb := make([]byte, 256<<10)
	buf := <-free
	end := 0
	var readErr error
	for readErr == nil {
		var n int
		n, readErr = in.Read(rb[end:])
		end += n
		start := 0
		for {
			i := bytes.IndexByte(rb[start:end], '\n')
			if i < 0 {
				break
			}
			buf = append(buf, stamp...)
			buf = append(buf, rb[start:start+i+1]...)
			start += i + 1
		}
		if start == 0 && end == len(rb) || readErr != nil && start < end {
			// A line as long as the buffer is cut into lines, as the task
			// log cuts one; the last line needs no break to be written.
			buf = append(append(append(buf, stamp...), rb[start:end]...), '\n')
			start = end
		}
		end = copy(rb, rb[start:end])
		if len(buf) >= bufSize || readErr != nil {
			full <- buf
			buf = <-free
		}
	}
	close(full)
	<-done
	if errors.Is(readErr, io.EOF) {
		readErr = nil
	}
	return written, errors.Join(readErr, writeErr)
}
