package process

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// batches collects what OnLines receives.
type batches struct {
	t      testing.TB
	inside sync.Mutex // TryLock fails if a call is already running
	calls  int
	most   int
	out    []string
	err    []string
}

func (b *batches) onLines(s Stream, lines [][]byte) {
	if !b.inside.TryLock() {
		b.t.Errorf("OnLines called concurrently")
		return
	}
	defer b.inside.Unlock()
	b.calls++
	b.most = max(b.most, len(lines))
	for _, l := range lines {
		if s == Stdout {
			b.out = append(b.out, string(l))
		} else {
			b.err = append(b.err, string(l))
		}
	}
}

// OnLines gets every line of both streams in order, the tail is kept, and lines
// that came in together come in one call.
func TestRunOnLines(t *testing.T) {
	t.Parallel()
	b := &batches{t: t}
	spec := childSpec(t, "lines", "50", "0")
	spec.OnLines = b.onLines
	res, err := Run(context.Background(), spec)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	wantOut, wantErr := bothStreams(50)
	if !slices.Equal(b.out, wantOut) || !slices.Equal(b.err, wantErr) {
		t.Errorf("stdout %q, stderr %q", b.out, b.err)
	}
	if want := wantErr[30:]; !slices.Equal(res.StderrTail, want) {
		t.Errorf("tail %q, want %q", res.StderrTail, want)
	}

	// A flood: 10,000 lines in a few calls, at most maxBatch lines each.
	b = &batches{t: t}
	spec = childSpec(t, "tiny", "10000")
	spec.OnLines = b.onLines
	if _, err := Run(context.Background(), spec); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if len(b.out) != 10000 || b.out[0] != "0" || b.out[9999] != "9999" {
		t.Fatalf("got %d lines", len(b.out))
	}
	for i, l := range b.out {
		if l != strconv.Itoa(i) {
			t.Fatalf("line %d is %q", i, l)
		}
	}
	if b.most > maxBatch || b.calls > 10000/10 {
		t.Errorf("10,000 lines in %d calls of at most %d lines; want at most %d a call and far fewer calls", b.calls, b.most, maxBatch)
	}
}

func TestRunOnLinesPanic(t *testing.T) {
	t.Parallel()
	spec := childSpec(t, "lines", "5", "0")
	spec.KillGrace = 100 * time.Millisecond
	spec.OnLines = func(Stream, [][]byte) { panic("boom") }
	defer func() {
		err, ok := recover().(error)
		if !ok || !strings.Contains(err.Error(), "OnLines panicked: boom") {
			t.Fatalf("recovered %v, want the callback's panic", err)
		}
	}()
	_, _ = Run(context.Background(), spec)
	t.Fatal("Run returned")
}
