package process

import (
	"bytes"
	"errors"
	"io"
)

// minReadBuf is the smallest read buffer of a lineReader: a flood of output is
// read in large pieces (the pipe is widened to match, see widenPipe).
const minReadBuf = 256 << 10

// lineReader splits a byte stream into lines with a fixed buffer.
//
// A line ends at '\n' or at '\r' (a progress bar redrawn with '\r' gives one
// line per redraw); "\r\n" is one break because empty lines are dropped. A
// line longer than maxLine is emitted in chunks of maxLine bytes, so memory
// stays at one buffer whatever the stream holds. Lines are emitted straight
// from the buffer, without copying or allocating.
type lineReader struct {
	buf     []byte
	maxLine int
	emit    func(line []byte)
	// batch, if set, is called after the lines of each read (and of the end of
	// the stream) have been emitted, before buf changes: a caller collecting
	// the emitted slices hands them on there.
	batch func()
}

func newLineReader(maxLine int, emit func(line []byte)) *lineReader {
	return &lineReader{
		buf:     make([]byte, max(maxLine, minReadBuf)),
		maxLine: maxLine,
		emit:    emit,
	}
}

// readFrom reads r until EOF or an error and emits every line, the last one
// even without a line break. It returns nil at EOF, else the read error.
func (l *lineReader) readFrom(r io.Reader) error {
	start, end := 0, 0 // buf[start:end] is the current, unfinished line
	for {
		if end == len(l.buf) {
			// The unfinished line is shorter than maxLine (longer parts were
			// emitted), so start > 0: move it to the front to make room.
			end = copy(l.buf, l.buf[start:end])
			start = 0
		}
		n, err := r.Read(l.buf[end:])
		start = l.split(start, end, end+n)
		end += n
		if start == end {
			start, end = 0, 0
		}
		if err != nil {
			l.emitLine(l.buf[start:end])
			l.endBatch()
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		l.endBatch()
	}
}

func (l *lineReader) endBatch() {
	if l.batch != nil {
		l.batch()
	}
}

// split emits the lines ended in buf[from:end] (buf[start:from] holds no
// break), then full chunks of what is left; it returns the new line start.
func (l *lineReader) split(start, from, end int) int {
	// The next '\n' and the next '\r' at or after from (end if none), each
	// looked for again only once passed: output without '\r' costs one scan
	// of a read for it, not one a line.
	nl, cr := -1, -1
	for from < end {
		if nl < from {
			nl = indexFrom(l.buf[:end], from, '\n')
		}
		if cr < from {
			cr = indexFrom(l.buf[:end], from, '\r')
		}
		brk := min(nl, cr)
		if brk == end {
			break
		}
		l.emitLine(l.buf[start:brk])
		start, from = brk+1, brk+1
	}
	for end-start >= l.maxLine {
		l.emit(l.buf[start : start+l.maxLine])
		start += l.maxLine
	}
	return start
}

// indexFrom returns the index of the first c in b at or after from, or len(b).
func indexFrom(b []byte, from int, c byte) int {
	if i := bytes.IndexByte(b[from:], c); i >= 0 {
		return from + i
	}
	return len(b)
}

// emitLine emits line in chunks of at most maxLine bytes; it drops an empty line.
func (l *lineReader) emitLine(line []byte) {
	for len(line) > l.maxLine {
		l.emit(line[:l.maxLine])
		line = line[l.maxLine:]
	}
	if len(line) > 0 {
		l.emit(line)
	}
}
