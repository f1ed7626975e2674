//go:build !race

package tasklog

import "testing"

// The race detector changes allocation counts, so this runs without it.
func TestLineDoesNotAllocate(t *testing.T) {
	l, _ := openLog(t, Options{MaxSizeMB: 10}, 1)
	if n := testing.AllocsPerRun(10000, func() { l.Line(SourceDownload, benchLine) }); n != 0 {
		t.Fatalf("Line makes %.2f allocations per call, want 0", n)
	}
}

func TestLinesDoesNotAllocate(t *testing.T) {
	l, _ := openLog(t, Options{MaxSizeMB: 10}, 1)
	batch := make([][]byte, 650)
	for i := range batch {
		batch[i] = benchLine
	}
	if n := testing.AllocsPerRun(1000, func() { l.Lines(SourceDownload, batch) }); n != 0 {
		t.Fatalf("Lines makes %.2f allocations per call, want 0", n)
	}
}
