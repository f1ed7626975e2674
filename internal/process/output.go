package process

import (
	"fmt"
	"runtime/debug"
	"sync"
	"unicode/utf8"
)

// output serializes the lines of both streams into the caller's callback and
// keeps the stderr tail.
type output struct {
	mu      sync.Mutex
	onLine  func(Stream, []byte)
	onLines func(Stream, [][]byte) // instead of onLine when set
	tail    *tail
	stop    func() // stops the child after the callback panicked

	panicked error // the callback's panic; the callbacks are nil from then on
}

// line handles one line of stream s.
func (o *output) line(s Stream, line []byte) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if s == Stderr {
		o.tail.add(line)
	}
	if o.onLine != nil {
		o.call(s, line)
	}
}

// lines handles the lines of one read of stream s (Spec.OnLines).
func (o *output) lines(s Stream, lines [][]byte) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if s == Stderr {
		for _, line := range lines {
			o.tail.add(line)
		}
	}
	if o.onLines != nil {
		defer o.recover("OnLines")
		o.onLines(s, lines)
	}
}

// call runs the callback, turning a panic into o.panicked: it would otherwise
// crash the worker from a goroutine no caller can recover in. Run panics again
// with it in the caller's goroutine.
func (o *output) call(s Stream, line []byte) {
	defer o.recover("OnLine")
	o.onLine(s, line)
}

// recover, deferred around a callback, turns its panic into o.panicked, drops
// the callbacks and stops the child.
func (o *output) recover(name string) {
	if v := recover(); v != nil {
		o.panicked = fmt.Errorf("process: %s panicked: %v\n\n%s", name, v, debug.Stack())
		o.onLine, o.onLines = nil, nil
		o.stop()
	}
}

// rethrow panics in the caller's goroutine if the callback panicked. It must
// only be called once the readers have finished.
func (o *output) rethrow() {
	if o.panicked != nil {
		panic(o.panicked)
	}
}

// maxTailLine caps each line kept in a stderr tail, in bytes.
const maxTailLine = 512

// tail keeps the last lines given to add, each cut to maxTailLine bytes. It
// reuses its buffers, so adding a line does not allocate once it is warm.
type tail struct {
	lines [][]byte // ring buffer
	next  int      // slot of the next line
	n     int      // lines held
}

func newTail(n int) *tail {
	return &tail{lines: make([][]byte, max(n, 0))}
}

func (t *tail) add(line []byte) {
	if len(t.lines) == 0 {
		return
	}
	if len(line) > maxTailLine {
		cut := maxTailLine
		for cut > 0 && !utf8.RuneStart(line[cut]) {
			cut--
		}
		line = line[:cut]
	}
	slot := t.lines[t.next]
	if slot == nil {
		slot = make([]byte, 0, maxTailLine)
	}
	t.lines[t.next] = append(slot[:0], line...)
	t.next = (t.next + 1) % len(t.lines)
	t.n = min(t.n+1, len(t.lines))
}

// strings returns the lines held, oldest first, or nil if there are none.
func (t *tail) strings() []string {
	if t.n == 0 {
		return nil
	}
	out := make([]string, 0, t.n)
	first := (t.next - t.n + len(t.lines)) % len(t.lines)
	for i := range t.n {
		out = append(out, string(t.lines[(first+i)%len(t.lines)]))
	}
	return out
}
