package console

import (
	"bytes"
	"sync"
)

// lineEvents is the io.Writer that ctl.Tool.Tail writes its JSON lines to: it
// sends each complete line as one event of the stream. A failed send (the
// page has gone) cancels the tail.
type lineEvents struct {
	s      *eventStream
	mask   bool // mask e-mail addresses
	cancel func()
	mu     sync.Mutex // Tail writes, keepStreamAlive comments
	buf    []byte
	err    error
}

// Write sends the complete lines of p and keeps the rest for later.
func (l *lineEvents) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return 0, l.err
	}
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		line := l.buf[:i]
		if l.mask {
			line = maskEmails(line)
		}
		if err := l.s.send("", line); err != nil {
			l.fail(err)
			return 0, err
		}
		l.buf = l.buf[i+1:]
	}
}

// flush sends a last line without its line break.
func (l *lineEvents) flush() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil || len(bytes.TrimSpace(l.buf)) == 0 {
		return l.err
	}
	line := l.buf
	if l.mask {
		line = maskEmails(line)
	}
	l.buf = nil
	return l.s.send("", line)
}

// keepAlive sends a comment between lines.
func (l *lineEvents) keepAlive() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err == nil {
		if err := l.s.comment(); err != nil {
			l.fail(err)
		}
	}
}

func (l *lineEvents) fail(err error) {
	l.err = err
	l.cancel()
}
