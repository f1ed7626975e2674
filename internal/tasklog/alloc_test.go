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
