package queue

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/coursedl/worker/internal/testutil"
)

func TestFIFOAndAck(t *testing.T) {
	ctx := context.Background()
	rdb := testutil.Redis(t)
	q := New(rdb, "queue:downloads", "w1")
	for _, j := range []string{"a", "b", "c"} {
		rdb.LPush(ctx, "queue:downloads", j) // as the web app does
	}
	var got []string
	for range 3 {
		p, err := q.Fetch(ctx, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, p)
	}
	if !reflect.DeepEqual(got, []string{"a", "b", "c"}) {
		t.Fatalf("order %v, want FIFO", got)
	}
	if n := rdb.LLen(ctx, q.Processing()).Val(); n != 3 {
		t.Fatalf("processing holds %d, want 3 until acked", n)
	}
	if err := q.Ack(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	if l := rdb.LRange(ctx, q.Processing(), 0, -1).Val(); !reflect.DeepEqual(l, []string{"c", "a"}) {
		t.Fatalf("processing after ack = %v", l)
	}
}

func TestFetchTimesOutEmpty(t *testing.T) {
	q := New(testutil.Redis(t), "queue:downloads", "w1")
	p, err := q.Fetch(context.Background(), 100*time.Millisecond)
	if err != nil || p != "" {
		t.Fatalf("empty queue: %q, %v", p, err)
	}
}

func TestFetchSeesCancel(t *testing.T) {
	rdb := testutil.Redis(t)
	q := New(rdb, "queue:downloads", "w1")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := q.Fetch(ctx, time.Second) // the consumer's block
		done <- err
	}()
	// Cancel while the BLMOVE is blocked in Redis, not before it was sent.
	testutil.Eventually(t, 5*time.Second, func() bool {
		info := rdb.Info(context.Background(), "clients").Val()
		return strings.Contains(info, "blocked_clients:1")
	}, "the fetch blocked in Redis")
	cancel()
	select {
	case <-done:
		// It returns an error (canceled) or, if the block ran out first, no job:
		// either way within the block, so a stop is seen within a second.
	case <-time.After(3 * time.Second):
		t.Fatal("fetch did not return within its block after cancel")
	}
}

func TestRequeueGoesFirst(t *testing.T) {
	ctx := context.Background()
	rdb := testutil.Redis(t)
	q := New(rdb, "q", "w1")
	rdb.LPush(ctx, "q", "a", "b")
	a, _ := q.Fetch(ctx, time.Second)
	if err := q.Requeue(ctx, a); err != nil {
		t.Fatal(err)
	}
	if n := rdb.LLen(ctx, q.Processing()).Val(); n != 0 {
		t.Fatalf("processing holds %d after requeue", n)
	}
	if p, _ := q.Fetch(ctx, time.Second); p != "a" {
		t.Fatalf("next = %q, want the requeued a", p)
	}
}

func TestDeadLetter(t *testing.T) {
	ctx := context.Background()
	rdb := testutil.Redis(t)
	q := New(rdb, "q", "w7")
	rdb.LPush(ctx, "q", `{"taskId": "x"}`)
	p, _ := q.Fetch(ctx, time.Second)
	at := time.Date(2026, 11, 28, 20, 0, 0, 0, time.UTC)
	if err := q.DeadLetter(ctx, p, "taskId: not a number", at); err != nil {
		t.Fatal(err)
	}
	dead, err := DeadEntries(ctx, rdb, 10)
	if err != nil {
		t.Fatal(err)
	}
	want := []Dead{{Payload: `{"taskId": "x"}`, Reason: "taskId: not a number", At: "2026-11-28T20:00:00Z", Worker: "w7"}}
	if !reflect.DeepEqual(dead, want) {
		t.Fatalf("dead = %+v", dead)
	}
	if n := rdb.LLen(ctx, q.Processing()).Val(); n != 0 {
		t.Fatalf("processing holds %d after dead letter", n)
	}
}

func TestRecoverOwnKeepsOrder(t *testing.T) {
	ctx := context.Background()
	rdb := testutil.Redis(t)
	q := New(rdb, "q", "w1")
	rdb.LPush(ctx, "q", "a", "b", "c", "d")
	for range 3 { // a, b, c taken, then the worker dies
		if _, err := q.Fetch(ctx, time.Second); err != nil {
			t.Fatal(err)
		}
	}
	moved, err := New(rdb, "q", "w1").RecoverOwn(ctx)
	if err != nil || len(moved) != 3 {
		t.Fatalf("recovered %v, %v", moved, err)
	}
	var order []string
	for {
		p, _ := q.Fetch(ctx, 10*time.Millisecond)
		if p == "" {
			break
		}
		order = append(order, p)
	}
	if !reflect.DeepEqual(order, []string{"a", "b", "c", "d"}) {
		t.Fatalf("after recovery the order is %v", order)
	}
}

func redisZ(t time.Time, member string) redis.Z {
	return redis.Z{Score: float64(t.UnixMilli()), Member: member}
}

func TestAckFetch(t *testing.T) {
	ctx := context.Background()
	rdb := testutil.Redis(t)
	q := New(rdb, "q", "w1")
	rdb.LPush(ctx, "q", "a", "b")
	a, _ := q.Fetch(ctx, time.Second)
	b, err := q.AckFetch(ctx, a)
	if err != nil || b != "b" {
		t.Fatalf("AckFetch(a) = %q, %v; want b", b, err)
	}
	if l := rdb.LRange(ctx, q.Processing(), 0, -1).Val(); !reflect.DeepEqual(l, []string{"b"}) {
		t.Fatalf("processing after AckFetch = %v, want [b]", l)
	}
	// An empty queue: the ack is done all the same.
	next, err := q.AckFetch(ctx, b)
	if err != nil || next != "" {
		t.Fatalf("AckFetch on an empty queue = %q, %v", next, err)
	}
	if n := rdb.LLen(ctx, q.Processing()).Val(); n != 0 {
		t.Fatalf("processing holds %d after the last ack", n)
	}
}

func TestDeadLetterOfAGiantJobIsBounded(t *testing.T) {
	ctx := context.Background()
	rdb := testutil.Redis(t)
	q := New(rdb, "q", "w1")
	giant := `{"taskId": 1, "pad": "` + strings.Repeat("\x01", 1<<20) + `"}`
	rdb.LPush(ctx, "q", giant)
	p, _ := q.Fetch(ctx, time.Second)
	if err := q.DeadLetter(ctx, p, "payload too large", time.Now()); err != nil {
		t.Fatal(err)
	}
	raw := rdb.LIndex(ctx, DeadKey, 0).Val()
	if len(raw) > 8*MaxDeadPayload {
		t.Fatalf("dead entry of %d bytes for a giant job", len(raw))
	}
	d, _ := DeadEntries(ctx, rdb, 1)
	if !d[0].Truncated || d[0].Size != len(giant) || len(d[0].SHA256) != 64 || !strings.HasPrefix(giant, d[0].Payload) {
		t.Fatalf("entry = truncated %v size %d sha %q", d[0].Truncated, d[0].Size, d[0].SHA256)
	}
	if rdb.LLen(ctx, q.Processing()).Val() != 0 {
		t.Fatal("giant job left in the processing list")
	}
}
