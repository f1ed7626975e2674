package process

import (
	"errors"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// chunkReader returns one chunk per Read, then err (io.EOF if nil).
type chunkReader struct {
	chunks []string
	err    error
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.chunks) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		return 0, io.EOF
	}
	n := copy(p, r.chunks[0])
	r.chunks[0] = r.chunks[0][n:]
	if r.chunks[0] == "" {
		r.chunks = r.chunks[1:]
	}
	return n, nil
}

// split runs a lineReader over chunks and returns the lines it emitted.
func split(t *testing.T, maxLine int, chunks ...string) []string {
	t.Helper()
	var got []string
	lr := newLineReader(maxLine, func(line []byte) { got = append(got, string(line)) })
	if err := lr.readFrom(&chunkReader{chunks: chunks}); err != nil {
		t.Fatalf("readFrom: %v", err)
	}
	return got
}

func TestLineReader(t *testing.T) {
	tests := []struct {
		name    string
		maxLine int
		chunks  []string
		want    []string
	}{
		{"lf", 100, []string{"a\nb\n"}, []string{"a", "b"}},
		{"cr redraws", 100, []string{"10%\r20%\r30%\n"}, []string{"10%", "20%", "30%"}},
		{"crlf", 100, []string{"a\r\nb\r\n"}, []string{"a", "b"}},
		{"crlf across reads", 100, []string{"a\r", "\nb"}, []string{"a", "b"}},
		{"empty lines dropped", 100, []string{"\n\n x \r\r\n\n"}, []string{" x "}},
		{"last line without break", 100, []string{"a\nbc"}, []string{"a", "bc"}},
		{"line across reads", 100, []string{"ab", "cd\ne", "f"}, []string{"abcd", "ef"}},
		{"nothing", 100, nil, nil},
		{"long line chunked", 4, []string{"abcdefghij\nk"}, []string{"abcd", "efgh", "ij", "k"}},
		{"long line across reads", 4, []string{"abc", "defgh", "ij"}, []string{"abcd", "efgh", "ij"}},
		{"exactly max then break", 3, []string{"abc\ndef\r"}, []string{"abc", "def"}},
		{"utf-8 kept", 100, []string{"é\rü\n"}, []string{"é", "ü"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := split(t, tt.maxLine, tt.chunks...)
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// TestLineReaderRandom feeds generated text in random chunks, so lines cross
// reads and the buffer fills and compacts, and compares with a plain split.
func TestLineReaderRandom(t *testing.T) {
	for _, maxLine := range []int{1, 7, 100, 5000, 64 << 10} {
		rng := rand.New(rand.NewPCG(1, uint64(maxLine)))
		var text strings.Builder
		for text.Len() < 1<<20 {
			text.WriteString(strings.Repeat("x", rng.IntN(300)))
			text.WriteByte("\n\r"[rng.IntN(2)])
			if rng.IntN(100) == 0 {
				text.WriteString(strings.Repeat("y", rng.IntN(200_000)))
			}
		}
		var chunks []string
		for rest := text.String(); rest != ""; {
			n := min(1+rng.IntN(20_000), len(rest))
			chunks, rest = append(chunks, rest[:n]), rest[n:]
		}
		got := split(t, maxLine, chunks...)
		if want := reference(text.String(), maxLine); !slices.Equal(got, want) {
			t.Fatalf("maxLine %d: %d lines differ from the %d expected", maxLine, len(got), len(want))
		}
	}
}

// reference splits s the way lineReader should, the simple way.
func reference(s string, maxLine int) []string {
	var out []string
	for _, line := range strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' }) {
		for len(line) > maxLine {
			out, line = append(out, line[:maxLine]), line[maxLine:]
		}
		out = append(out, line)
	}
	return out
}

func TestLineReaderError(t *testing.T) {
	boom := errors.New("boom")
	var got []string
	lr := newLineReader(100, func(line []byte) { got = append(got, string(line)) })
	err := lr.readFrom(&chunkReader{chunks: []string{"a\nbc"}, err: boom})
	if !errors.Is(err, boom) {
		t.Errorf("err = %v, want boom", err)
	}
	if want := []string{"a", "bc"}; !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestTail(t *testing.T) {
	long := strings.Repeat("a", maxTailLine-1) + "é" // the cut falls inside é
	tests := []struct {
		name string
		n    int
		add  []string
		want []string
	}{
		{"empty", 3, nil, nil},
		{"fewer than n", 3, []string{"a", "b"}, []string{"a", "b"}},
		{"last n", 3, []string{"a", "b", "c", "d", "e"}, []string{"c", "d", "e"}},
		{"none kept", -1, []string{"a"}, nil},
		{"cut on a rune boundary", 2, []string{long}, []string{long[:maxTailLine-1]}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tl := newTail(tt.n)
			for _, line := range tt.add {
				tl.add([]byte(line))
			}
			if got := tl.strings(); !slices.Equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestTailAllocs(t *testing.T) {
	tl := newTail(4)
	line := []byte(strings.Repeat("x", 2*maxTailLine))
	for range 4 {
		tl.add(line) // warm every slot
	}
	if n := testing.AllocsPerRun(100, func() { tl.add(line) }); n != 0 {
		t.Errorf("add allocates %v times per line", n)
	}
}

// The batch hook follows the lines of each read, before the buffer is reused.
func TestLineReaderBatches(t *testing.T) {
	var batches [][]string
	var cur []string
	lr := newLineReader(100, func(line []byte) { cur = append(cur, string(line)) })
	lr.batch = func() {
		if len(cur) > 0 {
			batches = append(batches, cur)
			cur = nil
		}
	}
	if err := lr.readFrom(&chunkReader{chunks: []string{"a\nb\n", "c", "d\ne\nf"}}); err != nil {
		t.Fatal(err)
	}
	want := [][]string{{"a", "b"}, {"cd", "e"}, {"f"}}
	if !slices.EqualFunc(batches, want, slices.Equal) {
		t.Errorf("batches %q, want %q", batches, want)
	}
}
