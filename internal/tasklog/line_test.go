package tasklog

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestLineFormat(t *testing.T) {
	at := time.Date(2026, 11, 28, 21, 0, 0, 123_456_789, time.FixedZone("CET", 3600))
	const stamp = "2026-11-28T20:00:00.123Z"
	tests := []struct {
		name   string
		source string
		text   string
		want   string
	}{
		{"download", SourceDownload, "[download]  42.3% of ~1.23GiB", stamp + " [download] [download]  42.3% of ~1.23GiB"},
		{"stderr tag", SourceRcloneStderr, "ERROR : quota", stamp + " [rclone:stderr] ERROR : quota"},
		{"trailing newline", SourceDownload, "done\n", stamp + " [download] done"},
		{"trailing crlf", SourceDownload, "done\r\n\r\n", stamp + " [download] done"},
		{"carriage returns inside", SourceDownload, "1%\r2%\r3%", stamp + ` [download] 1%\r2%\r3%`},
		{"newline inside", SourceWorker, "a\nb", stamp + ` [worker] a\nb`},
		{"colours and nul", SourceDownload, "\x1b[0;32mok\x1b[0m\x00\x7f", stamp + ` [download] \x1b[0;32mok\x1b[0m\x00\x7f`},
		{"tab kept", SourceDownload, "a\tb", stamp + " [download] a\tb"},
		{"utf-8 kept", SourceDownload, "Go In Depth – café", stamp + " [download] Go In Depth – café"},
		{"empty", SourceDownload, "", stamp + " [download] "},
		{"too long", SourceDownload, strings.Repeat("x", maxText+10), stamp + " [download] " + strings.Repeat("x", maxText) + " [cut 10 bytes]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, path := openLog(t, Options{Now: fixed(at)}, 17)
			l.Line(tt.source, []byte(tt.text))
			closeLog(t, l)
			got := lines(t, path)
			if len(got) != 1 || got[0] != tt.want {
				t.Fatalf("file = %.200q\nwant one line %.200q", got, tt.want)
			}
		})
	}
}

func TestPrintfMatchesContract(t *testing.T) {
	l, path := openLog(t, Options{}, 3)
	l.Printf("task %d: starting %s\n", 3, "download")
	closeLog(t, l)
	got := lines(t, path)
	re := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \[worker\] task 3: starting download$`)
	if len(got) != 1 || !re.MatchString(got[0]) {
		t.Fatalf("file = %q, want one line matching %s", got, re)
	}
}

func TestStampFollowsClock(t *testing.T) {
	base := time.Date(2026, 11, 28, 23, 59, 59, 0, time.UTC)
	times := []time.Duration{
		1 * time.Millisecond,
		999*time.Millisecond + 999*time.Microsecond, // truncated, not rounded
		1000 * time.Millisecond,                     // next second, next day
		1005 * time.Millisecond,
		500 * time.Millisecond, // clock stepped back
		-86400 * time.Second,
	}
	var i int
	now := func() time.Time { return base.Add(times[i]) }
	l, path := openLog(t, Options{Now: now}, 1)
	for i = range times {
		l.Line(SourceWorker, []byte("x"))
	}
	closeLog(t, l)
	var want []string
	for _, d := range times {
		want = append(want, base.Add(d).Format("2006-01-02T15:04:05.000Z")+" [worker] x")
	}
	if got := lines(t, path); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("lines\n%q\nwant\n%q", got, want)
	}
}

func TestCleanPrefixMatchesByteLoop(t *testing.T) {
	naive := func(b []byte) int {
		for i, c := range b {
			if (c < 0x20 && c != '\t') || c == 0x7f {
				return i
			}
		}
		return len(b)
	}
	// Every byte value at every position of a 17-byte text (two words and a
	// tail), over fillers near the edges of the tested ranges.
	for _, filler := range []byte{'a', ' ', '~', 0x80, 0x9f, 0xa0, 0xff, '\t'} {
		for pos := range 17 {
			for v := range 256 {
				text := []byte(strings.Repeat(string([]byte{filler}), 17))
				text[pos] = byte(v)
				if got, want := cleanPrefix(text), naive(text); got != want {
					t.Fatalf("cleanPrefix(%q) = %d, want %d", text, got, want)
				}
			}
		}
	}
}

// mayNeedEscape answers true whenever a byte is to be escaped, whatever the
// length of the text and the place of the byte (words, the 32-byte steps and
// the overlapping tail).
func TestMayNeedEscape(t *testing.T) {
	for n := range 70 {
		text := []byte(strings.Repeat("é", n)[:n]) // bytes >= 0x80 are text
		if mayNeedEscape(text) {
			t.Fatalf("mayNeedEscape(%q) = true, want false", text)
		}
		for pos := range n {
			for _, c := range []byte{0, '\n', '\r', 0x1b, 0x1f, 0x7f} {
				dirty := bytes.Clone(text)
				dirty[pos] = c
				if !mayNeedEscape(dirty) {
					t.Fatalf("mayNeedEscape(%q) = false, want true", dirty)
				}
			}
		}
	}
}

func FuzzAppendClean(f *testing.F) {
	f.Add([]byte("[download]  42.3%\r\x1b[0m\tok\x7f"))
	f.Fuzz(func(t *testing.T, text []byte) {
		out := appendClean(nil, text)
		for _, c := range out {
			if (c < 0x20 && c != '\t') || c == 0x7f {
				t.Fatalf("appendClean(%q) = %q keeps control byte %#x", text, out, c)
			}
		}
	})
}

// Lines writes each line as Line would, all with one stamp, however many
// buffers they fill.
func TestLinesFormat(t *testing.T) {
	at := time.Date(2026, 11, 28, 21, 0, 0, 123_456_789, time.FixedZone("CET", 3600))
	calls := 0
	clock := func() time.Time { calls++; return at }
	l, path := openLog(t, Options{Now: clock}, 17)
	batch := [][]byte{[]byte("a\r\n"), []byte("\x1b[0mb"), []byte(strings.Repeat("x", maxText+1))}
	for i := range 1000 { // well past flushSize
		batch = append(batch, fmt.Appendf(nil, "line %d", i))
	}
	l.Lines(SourceDownloadStderr, batch)
	l.Lines(SourceDownload, nil)
	closeLog(t, l)
	l.Lines(SourceDownload, [][]byte{[]byte("after close")})
	if calls != 1 {
		t.Errorf("the clock was read %d times for one batch", calls)
	}
	const prefix = "2026-11-28T20:00:00.123Z [download:stderr] "
	want := []string{prefix + "a", prefix + `\x1b[0mb`, prefix + strings.Repeat("x", maxText) + " [cut 1 bytes]"}
	for i := range 1000 {
		want = append(want, fmt.Sprintf("%sline %d", prefix, i))
	}
	got := lines(t, path)
	if len(got) != len(want) {
		t.Fatalf("%d lines, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("line %d = %.100q, want %.100q", i, got[i], want[i])
		}
	}
}
