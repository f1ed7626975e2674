package tasklog

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"time"
)

// Line adds one line of text from source (one of the Source constants).
// Trailing line breaks are removed and any other control character except
// tab is written escaped (`\r`, `\n`, `\x1b`), so one call is one physical
// line; text beyond 64 KiB is cut off. Line never fails: see Close.
func (l *Log) Line(source string, text []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	l.prefixLocked(source)
	l.appendLocked(text)
	if len(l.buf) >= flushSize {
		l.handOffLocked()
	}
	l.armLocked()
}

// Lines adds lines from source, each as Line does, all stamped with one reading
// of the clock: they came in together (one read of a child's output, see
// process.Spec.OnLines). A flood of output costs a lock and a clock reading a
// batch, not a line.
func (l *Log) Lines(source string, lines [][]byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed || len(lines) == 0 {
		return
	}
	l.prefixLocked(source)
	for _, text := range lines {
		l.appendLocked(text)
		if len(l.buf) >= flushSize {
			l.handOffLocked()
		}
	}
	if len(l.buf) > 0 {
		l.armLocked()
	}
}

// prefixLocked renders the start of the next lines, "<time> [<source>] ", with
// the time now; l.mu is held.
func (l *Log) prefixLocked(source string) {
	l.prefix = l.appendStamp(l.prefix[:0], l.now())
	l.prefix = append(l.prefix, " ["...)
	l.prefix = appendTag(l.prefix, source)
	l.prefix = append(l.prefix, "] "...)
}

// appendLocked appends one line: the prefix, then text cleaned; l.mu is held.
func (l *Log) appendLocked(text []byte) {
	for n := len(text); n > 0 && (text[n-1] == '\n' || text[n-1] == '\r'); n-- {
		text = text[:n-1]
	}
	cut := 0
	if len(text) > maxText {
		cut = len(text) - maxText
		text = text[:maxText]
	}
	l.buf = append(l.buf, l.prefix...)
	l.buf = appendClean(l.buf, text)
	if cut > 0 {
		l.buf = append(l.buf, " [cut "...)
		l.buf = strconv.AppendInt(l.buf, int64(cut), 10)
		l.buf = append(l.buf, " bytes]"...)
	}
	l.buf = append(l.buf, '\n')
}

// Printf adds a line of the worker's own (source "worker").
func (l *Log) Printf(format string, args ...any) {
	l.Line(SourceWorker, fmt.Appendf(nil, format, args...))
}

// appendStamp appends t to dst as "2006-01-02T15:04:05.000Z" in UTC, rendering
// the date and time only when the second changes; l.mu is held.
func (l *Log) appendStamp(dst []byte, t time.Time) []byte {
	t = t.UTC()
	if sec := t.Unix(); sec != l.sec || len(l.secText) == 0 {
		l.secText = t.AppendFormat(l.secText[:0], "2006-01-02T15:04:05")
		l.sec = sec
	}
	ms := t.Nanosecond() / int(time.Millisecond)
	dst = append(dst, l.secText...)
	return append(dst, '.', byte('0'+ms/100), byte('0'+ms/10%10), byte('0'+ms%10), 'Z') //nolint:gosec // G115: ms is 0-999, so each digit is 0-9
}

// appendClean appends text with every control character but tab escaped:
// `\n`, `\r`, else `\xNN`.
func appendClean(dst, text []byte) []byte {
	if !mayNeedEscape(text) {
		return append(dst, text...) // the common case: one scan, one copy
	}
	for {
		n := cleanPrefix(text)
		dst = append(dst, text[:n]...)
		if n == len(text) {
			return dst
		}
		dst = appendEscape(dst, text[n])
		text = text[n+1:]
	}
}

// appendTag is appendClean for a source tag, which is nearly always clean.
func appendTag(dst []byte, tag string) []byte {
	for i := 0; i < len(tag); i++ {
		if isControl(tag[i]) {
			return appendClean(dst, []byte(tag))
		}
	}
	return append(dst, tag...)
}

// appendEscape appends the escaped form of the control byte c.
func appendEscape(dst []byte, c byte) []byte {
	const hex = "0123456789abcdef"
	switch c {
	case '\n':
		return append(dst, '\\', 'n')
	case '\r':
		return append(dst, '\\', 'r')
	default:
		return append(dst, '\\', 'x', hex[c>>4], hex[c&0xf])
	}
}

// isControl reports whether c must be escaped.
func isControl(c byte) bool { return (c < 0x20 && c != '\t') || c == 0x7f }

// cleanPrefix returns the length of the longest prefix of text without a byte
// to escape. It tests eight bytes at a time: downloader output is long and
// almost always clean.
func cleanPrefix(text []byte) int {
	i := 0
	for i < len(text) {
		if i+8 <= len(text) && !wordNeedsLook(binary.LittleEndian.Uint64(text[i:])) {
			i += 8
			continue
		}
		if isControl(text[i]) {
			return i
		}
		i++
	}
	return i
}

// mayNeedEscape reports whether text may hold a byte to escape; false means it
// holds none. A tab may answer true as well. It tests 32 bytes a step without a
// branch per word: a line of output is scanned at a few bytes a cycle.
func mayNeedEscape(text []byte) bool {
	var acc uint64 // only its high bits count, and only at the end
	i := 0
	for ; i+32 <= len(text); i += 32 {
		w := text[i : i+32 : i+32]
		acc |= lookBits(binary.LittleEndian.Uint64(w[0:])) |
			lookBits(binary.LittleEndian.Uint64(w[8:])) |
			lookBits(binary.LittleEndian.Uint64(w[16:])) |
			lookBits(binary.LittleEndian.Uint64(w[24:]))
	}
	for ; i+8 <= len(text); i += 8 {
		acc |= lookBits(binary.LittleEndian.Uint64(text[i:]))
	}
	if i < len(text) {
		if len(text) >= 8 {
			// The last eight bytes, overlapping what was tested.
			acc |= lookBits(binary.LittleEndian.Uint64(text[len(text)-8:]))
		} else {
			for _, c := range text[i:] {
				if isControl(c) {
					return true
				}
			}
		}
	}
	return acc&highs != 0
}

// wordNeedsLook reports whether one of the eight bytes of w is below 0x20 or
// is 0x7f (a tab, which is kept, also answers true). These are the
// "has less than" and "has zero byte" tests of Bit Twiddling Hacks.
func wordNeedsLook(w uint64) bool { return lookMask(w) != 0 }

// lookMask is not zero when one of the eight bytes of w is below 0x20 or is 0x7f.
func lookMask(w uint64) uint64 { return lookBits(w) & highs }

// lookBits is lookMask before its last step: of its bits, only the high bit of
// each byte means anything.
func lookBits(w uint64) uint64 {
	const ones = 0x0101010101010101
	x := w ^ (ones * 0x7f)
	return (w-ones*0x20)&^w | (x-ones)&^x
}

// highs has the high bit of each byte of a word.
const highs = 0x8080808080808080
