package progress_test

import (
	"bytes"
	"context"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/coursedl/worker/internal/progress"
	"github.com/coursedl/worker/internal/rdb"
	"github.com/coursedl/worker/internal/testutil"
	"github.com/redis/go-redis/v9"
)

// captureLines reads a capture under the repository's testdata folder and splits it
// as the process package does: at '\n' and at '\r', dropping empty lines.
func captureLines(t testing.TB, rel string) [][]byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(testutil.Root(t), "testdata", rel))
	if err != nil {
		t.Fatalf("read capture: %v", err)
	}
	var lines [][]byte
	for _, l := range bytes.FieldsFunc(data, func(r rune) bool { return r == '\n' || r == '\r' }) {
		if len(l) > 0 {
			lines = append(lines, l)
		}
	}
	if len(lines) == 0 {
		t.Fatalf("capture %s is empty", rel)
	}
	return lines
}

// newTaskID returns a task id no other test uses: pub/sub channels are shared by
// every Redis database and tests of other packages publish at the same time.
func newTaskID() int64 { return 1_000_000_000 + rand.Int64N(1<<40) }

// received is one event a subscriber got: its raw JSON and its decoded form.
type received struct {
	raw []byte
	ev  progress.Event
}

// subscriber collects the events published on rdb.ProgressChannel for some task ids.
type subscriber struct {
	mu     sync.Mutex
	ids    map[int64]bool
	events []received
}

// subscribe listens on rdb.ProgressChannel, keeping the events of ids only, and returns
// once the subscription is active. It stops when the test ends.
func subscribe(t *testing.T, rc *redis.Client, ids ...int64) *subscriber {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ps := rc.Subscribe(ctx, rdb.ProgressChannel)
	if _, err := ps.Receive(ctx); err != nil { // the subscription's confirmation
		t.Fatalf("subscribe %s: %v", rdb.ProgressChannel, err)
	}
	s := &subscriber{ids: map[int64]bool{}}
	for _, id := range ids {
		s.ids[id] = true
	}
	ch := ps.Channel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for msg := range ch {
			var ev progress.Event
			if err := json.Unmarshal([]byte(msg.Payload), &ev); err != nil {
				continue
			}
			s.mu.Lock()
			if s.ids[ev.TaskID] { // else not ours: other tests publish on the same channel
				s.events = append(s.events, received{raw: []byte(msg.Payload), ev: ev})
			}
			s.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = ps.Close()
		<-done
	})
	return s
}

// all returns the events received so far for id, in order.
func (s *subscriber) all(id int64) []received {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []received
	for _, r := range s.events {
		if r.ev.TaskID == id {
			out = append(out, r)
		}
	}
	return out
}

// waitFor waits until an event of id satisfying cond has been received and returns
// the events of id received until then.
func (s *subscriber) waitFor(t *testing.T, id int64, what string, cond func(progress.Event) bool) []received {
	t.Helper()
	var got []received
	testutil.Eventually(t, 5*time.Second, func() bool {
		got = s.all(id)
		for _, r := range got {
			if cond(r.ev) {
				return true
			}
		}
		return false
	}, "no event of task %d with %s", id, what)
	return got
}

// barrier publishes an event for a task of its own (registered with s) and waits
// for it: every event published before it has then been received, since Redis
// delivers a channel's messages in the order it executed the publishes.
func (s *subscriber) barrier(t *testing.T, p *progress.Publisher) {
	t.Helper()
	id := newTaskID()
	s.mu.Lock()
	s.ids[id] = true
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.Publish(ctx, progress.Event{TaskID: id, Stage: progress.StageNotifying}); err != nil {
		t.Fatalf("publish barrier: %v", err)
	}
	s.waitFor(t, id, "the barrier", func(progress.Event) bool { return true })
}

// percentOf returns an event's percent, or -1 when it has none.
func percentOf(ev progress.Event) float64 {
	if ev.Percent == nil {
		return -1
	}
	return *ev.Percent
}
