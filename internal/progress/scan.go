package progress

import (
	"math"
	"strconv"
)

// fields splits a line into blank-separated tokens without allocating. Spaces, tabs
// and ANSI escape sequences (yt-dlp colours its fields when it writes to a terminal,
// "\x1b[0;94m  42.3%\x1b[0m") all count as blanks.
type fields struct {
	b []byte
	i int
}

// next returns the next token, or nil at the end of the line.
func (f *fields) next() []byte {
	f.skipBlanks()
	start := f.i
	for f.i < len(f.b) && !isBlank(f.b[f.i]) && f.b[f.i] != 0x1b {
		f.i++
	}
	if start == f.i {
		return nil
	}
	return f.b[start:f.i]
}

// rest returns what is left of the line after the blanks at the current position.
func (f *fields) rest() []byte {
	f.skipBlanks()
	return f.b[f.i:]
}

func (f *fields) skipBlanks() {
	for f.i < len(f.b) {
		switch c := f.b[f.i]; {
		case isBlank(c):
			f.i++
		case c == 0x1b:
			f.skipEscape()
		default:
			return
		}
	}
}

// skipEscape steps over one escape sequence at f.i: a CSI sequence ("\x1b[" then
// parameter bytes up to a final byte in 0x40..0x7e) or a lone ESC with one byte.
func (f *fields) skipEscape() {
	f.i++ // ESC
	if f.i >= len(f.b) {
		return
	}
	if f.b[f.i] != '[' {
		f.i++
		return
	}
	for f.i++; f.i < len(f.b); f.i++ {
		if c := f.b[f.i]; c >= 0x40 && c <= 0x7e {
			f.i++
			return
		}
	}
}

func isBlank(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// number reads a decimal number ("42", "42.3", "1023.00") at the start of b and
// returns its value and length; n is 0 when b does not start with a digit. The
// conversion of the short prefix does not allocate (it does not escape).
func number(b []byte) (v float64, n int) {
	for n < len(b) && isDigit(b[n]) {
		n++
	}
	if n == 0 {
		return 0, 0
	}
	if n+1 < len(b) && b[n] == '.' && isDigit(b[n+1]) {
		for n++; n < len(b) && isDigit(b[n]); n++ {
		}
	}
	// Only a range error is possible; then v is +Inf, which callers clamp.
	v, _ = strconv.ParseFloat(string(b[:n]), 64)
	return v, n
}

// percentToken reads a token such as "42.3%" or "100%".
func percentToken(tok []byte) (float64, bool) {
	v, n := number(tok)
	if n == 0 || n != len(tok)-1 || tok[n] != '%' {
		return 0, false
	}
	return clampPercent(v), true
}

// binaryUnits are the suffixes yt-dlp's format_bytes writes, 1024-based.
var binaryUnits = [...]string{"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}

// size reads a token such as "10.00MiB" or "512.00B" as a byte count.
func size(tok []byte) (int64, bool) {
	v, n := number(tok)
	if n == 0 {
		return 0, false
	}
	unit := tok[n:]
	mult := 1.0
	for _, u := range binaryUnits {
		if string(unit) == u {
			return byteCount(v * mult), true
		}
		mult *= 1024
	}
	return 0, false
}

// Longest tokens taken as a speed or an ETA. yt-dlp prints at most about a dozen
// characters for either; a longer token comes from a program that prints
// anything, and is not carried into progress events.
const (
	maxSpeedToken = 24
	maxETAToken   = 16
)

// byteCount rounds b to a whole number of bytes, saturating at math.MaxInt64
// (float64(math.MaxInt64) is 2^63, which int64 cannot hold: converting it would
// give a negative count).
func byteCount(b float64) int64 {
	if b >= math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(math.Round(b))
}

// isSpeed reports whether tok is a speed such as "1.23MiB/s".
func isSpeed(tok []byte) bool {
	n := len(tok)
	if n < 3 || n > maxSpeedToken || tok[n-2] != '/' || tok[n-1] != 's' {
		return false
	}
	_, ok := size(tok[:n-2])
	return ok
}

// isDuration reports whether tok looks like "00:07" or "01:02:03".
func isDuration(tok []byte) bool {
	if len(tok) == 0 || len(tok) > maxETAToken || !isDigit(tok[0]) {
		return false
	}
	colon := false
	for _, c := range tok {
		switch {
		case c == ':':
			colon = true
		case !isDigit(c):
			return false
		}
	}
	return colon
}

// formatSpeed renders bytes per second as yt-dlp does ("1.23MiB/s", "512.00B/s").
// It returns "" for a speed that is not positive, which tools print while they do
// not know it yet, and for one past 1024 EiB/s, which no transfer reaches.
func formatSpeed(bps float64) string {
	if !(bps > 0) || bps >= 1<<70 {
		return ""
	}
	i := 0
	for bps >= 1024 && i < len(binaryUnits)-1 {
		bps /= 1024
		i++
	}
	return strconv.FormatFloat(bps, 'f', 2, 64) + binaryUnits[i] + "/s"
}

// formatETA renders seconds as "mm:ss", or "h:mm:ss" past an hour; "" when negative.
func formatETA(seconds float64) string {
	if !(seconds >= 0) || seconds > 1e9 {
		return ""
	}
	s := int64(math.Round(seconds))
	h, m, sec := s/3600, s/60%60, s%60
	b := make([]byte, 0, 12)
	if h > 0 {
		b = strconv.AppendInt(b, h, 10)
		b = append(b, ':')
	}
	b = append(b, byte('0'+m/10), byte('0'+m%10), ':', byte('0'+sec/10), byte('0'+sec%10))
	return string(b)
}
