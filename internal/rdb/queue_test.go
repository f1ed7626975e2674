package rdb_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/coursedl/worker/internal/rdb"
	"github.com/coursedl/worker/internal/testutil"
)

func TestFIFOAndAck(t *testing.T) {
	ctx := context.Background()
	rc := testutil.Redis(t)
	r := rdb.New(rc, rdb.Options{Queue: "queue:downloads", Worker: "w1"})
	for _, j := range []string{"a", "b", "c"} {
		rc.LPush(ctx, "queue:downloads", j) // as the web app does
	}
	var got []string
	for range 3 {
		p, err := r.Fetch(ctx, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, p)
	}
	if !reflect.DeepEqual(got, []string{"a", "b", "c"}) {
		t.Fatalf("order %v, want FIFO", got)
	}
	if n := rc.LLen(ctx, rdb.ProcessingKey("w1")).Val(); n != 3 {
		t.Fatalf("processing holds %d, want 3 until acked", n)
	}
	if err := r.Ack(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	if l := rc.LRange(ctx, rdb.ProcessingKey("w1"), 0, -1).Val(); !reflect.DeepEqual(l, []string{"c", "a"}) {
		t.Fatalf("processing after ack = %v", l)
	}
}

func TestFetchTimesOutEmpty(t *testing.T) {
	r := rdb.New(testutil.Redis(t), rdb.Options{Queue: "queue:downloads", Worker: "w1"})
	p, err := r.Fetch(context.Background(), 100*time.Millisecond)
	if err != nil || p != "" {
		t.Fatalf("empty queue: %q, %v", p, err)
	}
}

func TestFetchSeesCancel(t *testing.T) {
	rc := testutil.Redis(t)
	r := rdb.New(rc, rdb.Options{Queue: "queue:downloads", Worker: "w1"})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := r.Fetch(ctx, time.Second) // the consumer's block
		done <- err
	}()
	// Cancel while the BLMOVE is blocked in Redis, not before it was sent.
	testutil.Eventually(t, 5*time.Second, func() bool { return blockedOn(rc) == 1 }, "the fetch blocked in Redis")
	cancel()
	select {
	case err := <-done:
		// It returns an error (canceled) or, if the block ran out first, no job:
		// either way within the block, so a stop is seen within a second.
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Fatalf("fetch after cancel: %v, want canceled or nothing", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("fetch did not return within its block after cancel")
	}
}

// blockedOn is how many clients of rc's database are blocked in a command now.
// The Redis server is shared with the tests of other packages, running at once;
// its blocked_clients count is not this test's alone.
func blockedOn(rc *redis.Client) int {
	list, err := rc.ClientList(context.Background()).Result()
	if err != nil {
		return -1
	}
	db := fmt.Sprintf(" db=%d ", testutil.RedisDB(rc))
	n := 0
	for _, l := range strings.Split(list, "\n") {
		if strings.Contains(l, db) && strings.Contains(l, " flags=b ") {
			n++
		}
	}
	return n
}

func TestRequeueGoesFirst(t *testing.T) {
	ctx := context.Background()
	rc := testutil.Redis(t)
	r := rdb.New(rc, rdb.Options{Queue: "q", Worker: "w1"})
	rc.LPush(ctx, "q", "a", "b")
	a, _ := r.Fetch(ctx, time.Second)
	if err := r.Requeue(ctx, a); err != nil {
		t.Fatal(err)
	}
	if n := rc.LLen(ctx, rdb.ProcessingKey("w1")).Val(); n != 0 {
		t.Fatalf("processing holds %d after requeue", n)
	}
	if p, _ := r.Fetch(ctx, time.Second); p != "a" {
		t.Fatalf("next = %q, want the requeued a", p)
	}
}

func TestRecoverOwnKeepsOrder(t *testing.T) {
	ctx := context.Background()
	rc := testutil.Redis(t)
	r := rdb.New(rc, rdb.Options{Queue: "q", Worker: "w1"})
	rc.LPush(ctx, "q", "a", "b", "c", "d")
	for range 3 { // a, b, c taken, then the worker dies
		if _, err := r.Fetch(ctx, time.Second); err != nil {
			t.Fatal(err)
		}
	}
	moved, err := rdb.New(rc, rdb.Options{Queue: "q", Worker: "w1"}).RecoverOwn(ctx)
	if err != nil || len(moved) != 3 {
		t.Fatalf("recovered %v, %v", moved, err)
	}
	var order []string
	for {
		p, _ := r.Fetch(ctx, 10*time.Millisecond)
		if p == "" {
			break
		}
		order = append(order, p)
	}
	if !reflect.DeepEqual(order, []string{"a", "b", "c", "d"}) {
		t.Fatalf("after recovery the order is %v", order)
	}
}

func TestAckFetch(t *testing.T) {
	ctx := context.Background()
	rc := testutil.Redis(t)
	r := rdb.New(rc, rdb.Options{Queue: "q", Worker: "w1"})
	rc.LPush(ctx, "q", "a", "b")
	a, _ := r.Fetch(ctx, time.Second)
	b, err := r.AckFetch(ctx, a)
	if err != nil || b != "b" {
		t.Fatalf("AckFetch(a) = %q, %v; want b", b, err)
	}
	if l := rc.LRange(ctx, rdb.ProcessingKey("w1"), 0, -1).Val(); !reflect.DeepEqual(l, []string{"b"}) {
		t.Fatalf("processing after AckFetch = %v, want [b]", l)
	}
	// An empty queue: the ack is done all the same.
	next, err := r.AckFetch(ctx, b)
	if err != nil || next != "" {
		t.Fatalf("AckFetch on an empty queue = %q, %v", next, err)
	}
	if n := rc.LLen(ctx, rdb.ProcessingKey("w1")).Val(); n != 0 {
		t.Fatalf("processing holds %d after the last ack", n)
	}
}

func TestAttempts(t *testing.T) {
	ctx := context.Background()
	r := rdb.New(testutil.Redis(t), rdb.Options{Queue: "q", Worker: "w1"})
	if n, _ := r.NextAttempt(ctx, 9); n != 1 {
		t.Fatal(n)
	}
	if n, _ := r.NextAttempt(ctx, 9); n != 2 {
		t.Fatal(n)
	}
	if n, err := r.Attempts(ctx, 9); n != 2 || err != nil {
		t.Fatalf("Attempts = %d, %v; want 2", n, err)
	}
	if err := r.ForgetAttempts(ctx, 9); err != nil {
		t.Fatal(err)
	}
	if n, _ := r.Attempts(ctx, 9); n != 0 {
		t.Fatal(n)
	}
}
