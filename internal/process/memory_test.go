package process

import (
	"bytes"
	"context"
	"runtime"
	"testing"
)

// TestRunLongLineMemory: 200 MiB without a newline arrive in chunks of at
// most MaxLine, and the worker's memory does not grow with them. Not
// parallel, so that other tests do not allocate meanwhile.
func TestRunLongLineMemory(t *testing.T) {
	const (
		size  = 200 << 20
		limit = 32 << 20 // bytes of heap growth and of allocation allowed
	)
	spec, _ := fakeDownloader(t, "longline", map[string]string{"FAKE_LONGLINE_MB": "200"})
	var total, longest, chunks int
	var peak uint64
	var ms runtime.MemStats
	spec.OnLine = func(s Stream, line []byte) {
		if s != Stdout || bytes.Count(line, []byte("a")) != len(line) {
			t.Errorf("unexpected %v chunk of %d bytes", s, len(line))
		}
		total += len(line)
		longest = max(longest, len(line))
		if chunks%256 == 0 {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
		}
		chunks++
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	if _, err := Run(context.Background(), spec); err != nil {
		t.Fatalf("Run: %v", err)
	}
	runtime.ReadMemStats(&after)

	if total != size || longest != DefaultMaxLine {
		t.Errorf("got %d bytes in chunks of at most %d, want %d in chunks of %d", total, longest, size, DefaultMaxLine)
	}
	if grew := int64(max(peak, after.HeapInuse)) - int64(before.HeapInuse); grew > limit {
		t.Errorf("heap in use grew by %d MiB", grew>>20)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > limit {
		t.Errorf("Run allocated %d MiB", alloc>>20)
	}
	t.Logf("%d chunks; heap in use %d -> peak %d KiB; allocated %d KiB",
		chunks, before.HeapInuse>>10, peak>>10, (after.TotalAlloc-before.TotalAlloc)>>10)
}
