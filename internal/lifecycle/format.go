package lifecycle

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// appendLine appends one line to dst, without the trailing newline: t in RFC
// 3339 UTC to the second, the event in brackets, "[TaskId: N]" when taskID is
// not 0, then the fields. Event, keys and values are escaped (appendEscaped).
func appendLine(dst []byte, t time.Time, event string, taskID int64, fields []Field) []byte {
	dst = t.UTC().AppendFormat(dst, time.RFC3339)
	dst = append(dst, " ["...)
	dst = appendEscaped(dst, event)
	dst = append(dst, ']')
	if taskID != 0 {
		dst = append(dst, " [TaskId: "...)
		dst = strconv.AppendInt(dst, taskID, 10)
		dst = append(dst, ']')
	}
	for _, f := range fields {
		dst = append(dst, " ["...)
		dst = appendEscaped(dst, f.Key)
		dst = append(dst, ": "...)
		dst = appendEscaped(dst, f.Value)
		dst = append(dst, ']')
	}
	return dst
}

// appendEscaped appends v to dst, made safe inside brackets on one line: `\`
// becomes `\\`, `]` becomes `\]`, a line feed `\n`, a carriage return `\r`, a
// tab `\t`; any other control character is written `\xNN` (`\uNNNN` above
// U+00FF, for the Unicode line and paragraph separators), and so is a byte that
// is not UTF-8.
func appendEscaped(dst []byte, v string) []byte {
	const hex = "0123456789abcdef"
	for i := 0; i < len(v); {
		c := v[i]
		if c >= 0x20 && c < 0x7f {
			if c == '\\' || c == ']' {
				dst = append(dst, '\\')
			}
			dst = append(dst, c)
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(v[i:])
		switch {
		case c == '\n':
			dst = append(dst, `\n`...)
		case c == '\r':
			dst = append(dst, `\r`...)
		case c == '\t':
			dst = append(dst, `\t`...)
		case r == utf8.RuneError && size == 1, r < 0x20, r >= 0x7f && r <= 0x9f:
			if r != utf8.RuneError {
				c = byte(r) //nolint:gosec // G115: r is below 0xa0 in this case
			}
			dst = append(dst, '\\', 'x', hex[c>>4], hex[c&0xf])
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			dst = append(dst, v[i:i+size]...)
		}
		i += size
	}
	return dst
}
