package rdb_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/coursedl/worker/internal/rdb"
	"github.com/coursedl/worker/internal/testutil"
)

// Whereabouts finds a task's job in the queue (its place, 1 taken next), in
// a worker's hands and in the delayed set.
func TestWhereabouts(t *testing.T) {
	ctx := context.Background()
	rc := testutil.Redis(t)
	r := rdb.New(rc, rdb.Options{Queue: "q"})
	rc.LPush(ctx, "q", "job-1", "job-2", "job-3") // task-1 is taken next
	rc.LPush(ctx, rdb.ProcessingKey("w1"), "job-4")
	rc.ZAdd(ctx, rdb.DelayedKey, redis.Z{Score: 1_800_000_000_000, Member: "job-5"})
	for _, c := range []struct {
		task    int64
		queued  int
		inHand  []string
		retryAt int64
	}{{1, 1, nil, 0}, {3, 3, nil, 0}, {4, 0, []string{"w1"}, 0}, {5, 0, nil, 1_800_000_000_000}, {6, 0, nil, 0}} {
		w, err := r.Whereabouts(ctx, c.task, taskOf)
		if err != nil {
			t.Fatal(err)
		}
		var retry int64
		if !w.RetryAt.IsZero() {
			retry = w.RetryAt.UnixMilli()
		}
		if w.Queued != c.queued || !slices.Equal(w.InHandOf, c.inHand) && len(c.inHand)+len(w.InHandOf) > 0 || retry != c.retryAt {
			t.Errorf("task %d: %+v, want queued %d, in hand of %v, retry at %d", c.task, w, c.queued, c.inHand, c.retryAt)
		}
	}
}

// RunNow moves a delayed job to the head of the queue once; a second try
// finds it gone and pushes nothing.
func TestRunNow(t *testing.T) {
	ctx := context.Background()
	rc := testutil.Redis(t)
	r := rdb.New(rc, rdb.Options{Queue: "q"})
	rc.LPush(ctx, "q", "waiting")
	rc.ZAdd(ctx, rdb.DelayedKey, redis.Z{Score: 1_800_000_000_000, Member: "job-5"})
	if ok, err := r.RunNow(ctx, "job-5"); err != nil || !ok {
		t.Fatalf("RunNow = %v %v", ok, err)
	}
	if ok, err := r.RunNow(ctx, "job-5"); err != nil || ok {
		t.Fatalf("RunNow again = %v %v, want false", ok, err)
	}
	if q := rc.LRange(ctx, "q", 0, -1).Val(); !slices.Equal(q, []string{"waiting", "job-5"}) {
		t.Fatalf("queue %q: the job must be taken next, once", q)
	}
	if n := rc.ZCard(ctx, rdb.DelayedKey).Val(); n != 0 {
		t.Fatalf("%d delayed left", n)
	}
}

// TaskEvents finds a task's webhook events wherever the outbox holds them.
func TestTaskEvents(t *testing.T) {
	ctx := context.Background()
	rc := testutil.Redis(t)
	r := rdb.New(rc, rdb.Options{Queue: "q"})
	outboxDue(t, r, "msg_a", 7, `{"a":1}`)
	outboxDue(t, r, "msg_b", 7, `{"b":1}`)
	outboxDue(t, r, "msg_other", 8, `{}`)
	if err := r.BuryEvent(ctx, "msg_b", 9, "HTTP 410"); err != nil {
		t.Fatal(err)
	}
	if err := r.StageEvent(ctx, "msg_c", 7, "task.failed", []byte(`{"c":1}`)); err != nil {
		t.Fatal(err)
	}
	events, err := r.TaskEvents(ctx, 7)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]rdb.EventState{}
	for _, e := range events {
		got[e.ID] = e
	}
	now := redisNow(t, rc)
	if a := got["msg_a"]; len(got) != 3 || a.State != rdb.EventWaiting || a.Due.After(now) || a.Due.Before(now.Add(-time.Minute)) || string(a.Body) != `{"a":1}` {
		t.Fatalf("events of task 7: %+v", events)
	}
	if b := got["msg_b"]; b.State != rdb.EventGivenUp || b.Attempts != 9 || b.LastError != "HTTP 410" || !b.Due.IsZero() {
		t.Errorf("given up: %+v", b)
	}
	if c := got["msg_c"]; c.State != rdb.EventStaged || c.Type != "task.failed" {
		t.Errorf("staged: %+v", c)
	}
}
