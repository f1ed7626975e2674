package lifecycle

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// ErrClosed is returned by Write after Close.
var ErrClosed = errors.New("lifecycle: log is closed")

// Log appends lines to the file of the current UTC day. It is safe for
// concurrent use, and several processes may append to the same files: each
// line is one write to a file opened with O_APPEND.
type Log struct {
	dir string
	now func() time.Time

	mu     sync.Mutex
	f      *os.File
	day    string // UTC date of f, "2006-01-02"
	buf    []byte // the line being written, reused
	closed bool
}

// Path returns the file that holds the lines of t's UTC day.
func Path(dir string, t time.Time) string {
	return filepath.Join(dir, "lifecycle-"+t.UTC().Format(time.DateOnly)+".log")
}

// Open prepares a Log in dir, creating dir (mode 0750) and today's file
// (0640) if needed so that a permission problem shows at once. now gives the
// time of each line; nil means time.Now.
func Open(dir string, now func() time.Time) (*Log, error) {
	if dir == "" {
		return nil, errors.New("lifecycle: no directory given")
	}
	if now == nil {
		now = time.Now
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("lifecycle: %w", err)
	}
	l := &Log{dir: dir, now: now}
	if err := l.switchDay(now().UTC()); err != nil {
		return nil, err
	}
	return l, nil
}

// Write appends one line for event, to the file of the UTC date of now().
// taskID 0 means the event concerns no task.
func (l *Log) Write(event string, taskID int64, fields ...Field) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	t := l.now().UTC()
	if err := l.switchDay(t); err != nil {
		return err
	}
	l.buf = append(appendLine(l.buf[:0], t, event, taskID, fields), '\n')
	if _, err := l.f.Write(l.buf); err != nil {
		return fmt.Errorf("lifecycle: %w", err)
	}
	return nil
}

// switchDay makes f the file of t's day; l.mu is held or l is not shared yet.
// If the new file cannot be opened the old one stays, and the next Write
// tries again.
func (l *Log) switchDay(t time.Time) error {
	day := t.Format(time.DateOnly)
	if l.f != nil && day == l.day {
		return nil
	}
	f, err := os.OpenFile(Path(l.dir, t), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("lifecycle: %w", err)
	}
	if l.f != nil {
		_ = l.f.Close() // nothing is buffered: every line is already written
	}
	l.f, l.day = f, day
	return nil
}

// Close closes the current file. Later calls to Write return ErrClosed;
// calling Close again returns nil.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	err := l.f.Close()
	l.f = nil
	if err != nil {
		return fmt.Errorf("lifecycle: %w", err)
	}
	return nil
}
