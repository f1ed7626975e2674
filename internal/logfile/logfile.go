// Package logfile reads the end of a log file, and what is appended to it,
// through rotations (the file renamed and made anew, as lumberjack does) and
// truncations. workerctl (task, tail) and the console's task page read the task
// logs and the lifecycle files with it; it never writes.
package logfile

import (
	"bytes"
	"errors"
	"io"
	"os"
	"strings"
)

// Last returns the last n complete lines of f, whose size is size, oldest
// first, and the offset just past the last line break: where following the file
// goes on. A last line without its break yet is left for the follower. It reads
// from the end in blocks, so a large log costs only what is shown.
func Last(f *os.File, size int64, n int) ([]string, int64, error) {
	const block = 64 << 10
	var buf []byte // the tail of the file read so far
	pos := size
	for pos > 0 {
		step := min(int64(block), pos)
		pos -= step
		chunk := make([]byte, step)
		if _, err := f.ReadAt(chunk, pos); err != nil && !errors.Is(err, io.EOF) {
			return nil, 0, err
		}
		buf = append(chunk, buf...)
		if n > 0 && bytes.Count(buf, []byte{'\n'}) > n {
			break
		}
		if n <= 0 && bytes.IndexByte(buf, '\n') >= 0 {
			break
		}
	}
	end := bytes.LastIndexByte(buf, '\n')
	if end < 0 {
		if pos == 0 {
			return nil, 0, nil // no complete line in the file
		}
		return nil, pos, nil
	}
	next := pos + int64(end) + 1
	if n <= 0 {
		return nil, next, nil
	}
	lines := strings.Split(string(buf[:end]), "\n")
	if pos > 0 { // the first piece may be the end of an older line
		lines = lines[1:]
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return lines, next, nil
}

// Follower reads what is appended to a log file, line by line, and follows it
// when it is rotated (renamed and made anew, as lumberjack does) or truncated.
// One goroutine uses it at a time.
type Follower struct {
	path    string
	f       *os.File
	off     int64
	partial []byte // a line whose break has not been written yet
}

// NewFollower returns a follower of the file at path, which need not exist yet.
func NewFollower(path string) *Follower { return &Follower{path: path} }

// Start opens the file, if it exists, and returns its last n lines; following
// goes on from there. A file that does not exist yet is picked up by Poll.
func (fl *Follower) Start(n int) ([]string, error) {
	f, err := os.Open(fl.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		_ = f.Close() // only read from
		return nil, err
	}
	lines, next, err := Last(f, st.Size(), n)
	if err != nil {
		_ = f.Close() // only read from
		return nil, err
	}
	fl.f, fl.off = f, next
	return lines, nil
}

// Poll returns the complete lines appended since the last call.
func (fl *Follower) Poll() ([]string, error) {
	if fl.f == nil {
		f, err := os.Open(fl.path)
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		fl.f, fl.off, fl.partial = f, 0, nil
	}
	var lines []string
	cur, err := os.Stat(fl.path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	open, err := fl.f.Stat()
	if err != nil {
		return nil, err
	}
	if cur != nil && !os.SameFile(cur, open) {
		// Rotated: finish the old file, then take the new one from its start.
		lines, err = fl.read()
		if err != nil {
			return lines, err
		}
		if len(fl.partial) > 0 {
			lines = append(lines, string(fl.partial))
		}
		_ = fl.f.Close() // only read from: a failed close loses nothing
		fl.f = nil
		more, err := fl.Poll()
		return append(lines, more...), err
	}
	if open.Size() < fl.off { // truncated in place
		fl.off, fl.partial = 0, nil
	}
	more, err := fl.read()
	return append(lines, more...), err
}

// read reads from off to the end of the open file.
func (fl *Follower) read() ([]string, error) {
	var lines []string
	buf := make([]byte, 64<<10)
	for {
		n, err := fl.f.ReadAt(buf, fl.off)
		fl.off += int64(n)
		data := append(fl.partial, buf[:n]...)
		for {
			i := bytes.IndexByte(data, '\n')
			if i < 0 {
				break
			}
			lines = append(lines, string(data[:i]))
			data = data[i+1:]
		}
		fl.partial = append([]byte(nil), data...)
		if errors.Is(err, io.EOF) || n == 0 {
			return lines, nil
		}
		if err != nil {
			return lines, err
		}
	}
}

// Close releases the file. It was only read from, so a failed close loses
// nothing and is not reported.
func (fl *Follower) Close() {
	if fl.f != nil {
		_ = fl.f.Close()
		fl.f = nil
	}
}
