package process

import (
	"bytes"
	"context"
	"io"
	"strconv"
	"testing"
)

// BenchmarkRunTrue measures starting and reaping a child that does nothing.
func BenchmarkRunTrue(b *testing.B) {
	spec := Spec{Path: "/bin/true"}
	for b.Loop() {
		if _, err := Run(context.Background(), spec); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStream measures output throughput: a child prints 64 MiB of
// 100-byte lines, delivered line by line to a callback that counts them.
func BenchmarkStream(b *testing.B) {
	const size = (64 << 20) / 100 * 100 // whole lines
	spec := childSpec(b, "flood", strconv.Itoa(size))
	var lines, bytes int
	spec.OnLine = func(_ Stream, line []byte) {
		lines++
		bytes += len(line) + 1
	}
	b.SetBytes(size)
	for b.Loop() {
		lines, bytes = 0, 0
		if _, err := Run(context.Background(), spec); err != nil {
			b.Fatal(err)
		}
		if bytes != size {
			b.Fatalf("got %d bytes in %d lines, want %d", bytes, lines, size)
		}
	}
	b.ReportMetric(float64(lines), "lines/op")
}

// BenchmarkLineReader measures line splitting alone, from memory.
func BenchmarkLineReader(b *testing.B) {
	const size = 64 << 20
	block := bytes.Repeat(append(bytes.Repeat([]byte("x"), 99), '\n'), 1<<10)
	n := 0
	lr := newLineReader(DefaultMaxLine, func([]byte) { n++ })
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		if err := lr.readFrom(io.LimitReader(&repeatReader{block: block}, size)); err != nil {
			b.Fatal(err)
		}
	}
}

// repeatReader reads block over and over.
type repeatReader struct {
	block []byte
	off   int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	n := copy(p, r.block[r.off:])
	r.off = (r.off + n) % len(r.block)
	return n, nil
}
