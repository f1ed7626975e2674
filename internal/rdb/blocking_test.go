package rdb_test

import (
	"context"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/coursedl/worker/internal/rdb"
	"github.com/coursedl/worker/internal/testutil"
)

// With BlockOn, a stop cuts a long blocking fetch short, before it began or
// while it waits, and the fetch it cut takes no job: one pushed after it stays
// in the queue. A job pushed during the wait is fetched as without BlockOn.
func TestBlockingFetchStopsAtOnce(t *testing.T) {
	rc := testutil.Redis(t)
	r := rdb.New(rc, rdb.Options{Queue: "q", Worker: "w1"})
	fetchRC := r.BlockOn(rc.Options())
	defer func() { _ = fetchRC.Close() }()

	wait := fetchAsync(t, context.Background(), r)
	waitBlocked(t, rc, r, true)
	rc.LPush(context.Background(), "q", "job")
	if p, err := wait(); p != "job" || err != nil {
		t.Fatalf("Fetch = %q, %v; want the job pushed during the wait", p, err)
	}

	for _, when := range []string{"during", "before"} {
		ctx, cancel := context.WithCancel(context.Background())
		if when == "before" {
			cancel()
		}
		wait := fetchAsync(t, ctx, r)
		if when == "during" {
			waitBlocked(t, rc, r, true)
			cancel()
		}
		p, err := wait()
		cancel()
		if p != "" || err != nil {
			t.Fatalf("stop %s the wait: Fetch = %q, %v; want nothing", when, p, err)
		}
	}
	// Fetch has returned, so Redis holds no BLMOVE of it that could take a job.
	waitBlocked(t, rc, r, false)
	rc.LPush(context.Background(), "q", "later")
	if n := rc.LLen(context.Background(), "q").Val(); n != 1 {
		t.Fatalf("%d jobs in the queue, want the one pushed after the stop", n)
	}
	if n := rc.LLen(context.Background(), rdb.ProcessingKey("w1")).Val(); n != 1 {
		t.Fatalf("%d jobs in processing, want only the one fetched", n)
	}
}

// fetchAsync runs a 30 s Fetch in the background; the function it returns
// gives its result, failing the test if it takes more than 15 s.
func fetchAsync(t *testing.T, ctx context.Context, r *rdb.Client) func() (string, error) {
	type result struct {
		payload string
		err     error
	}
	done := make(chan result, 1)
	go func() {
		p, err := r.Fetch(ctx, 30*time.Second)
		done <- result{p, err}
	}()
	return func() (string, error) {
		t.Helper()
		select {
		case res := <-done:
			return res.payload, res.err
		case <-time.After(15 * time.Second):
			t.Fatal("Fetch did not return within 15 s of its 30 s block")
			return "", nil
		}
	}
}

// waitBlocked waits until Redis says r's fetch connection is (or is not)
// blocked in a BLMOVE.
func waitBlocked(t *testing.T, rc *redis.Client, r *rdb.Client, blocked bool) {
	t.Helper()
	testutil.Eventually(t, 10*time.Second, func() bool {
		id := r.BlockingID()
		if id == 0 {
			return false
		}
		info, err := rc.Do(context.Background(), "CLIENT", "LIST", "ID", id).Text()
		// flags=b: blocked now (cmd= names the last command, waiting or not).
		return err == nil && strings.Contains(info, " flags=b ") == blocked
	}, "fetch connection blocked: want %v", blocked)
}

// A Redis user without the CLIENT commands (an ACL) still fetches through
// BlockOn; only its stops wait for the block to run out.
func TestBlockingFetchWithoutClientCommands(t *testing.T) {
	ctx := context.Background()
	rc := testutil.Redis(t)
	user := "fetch-" + strings.ToLower(rand.Text()[:8])
	if err := rc.Do(ctx, "ACL", "SETUSER", user, "on", ">pw", "~*", "&*", "+@all", "-client").Err(); err != nil {
		t.Fatal(err)
	}
	defer rc.Do(ctx, "ACL", "DELUSER", user)
	opts := *rc.Options()
	opts.Username, opts.Password = user, "pw"
	r := rdb.New(rc, rdb.Options{Queue: "q", Worker: "w1"})
	fetchRC := r.BlockOn(&opts)
	defer func() { _ = fetchRC.Close() }()
	if err := fetchRC.ClientID(ctx).Err(); err == nil {
		t.Fatal("the restricted user may run CLIENT ID: the test proves nothing")
	}
	rc.LPush(ctx, "q", "job")
	if p, err := r.Fetch(ctx, time.Second); p != "job" || err != nil {
		t.Fatalf("Fetch = %q, %v; want the job", p, err)
	}
	stopped, cancel := context.WithCancel(ctx)
	cancel()
	if p, err := r.Fetch(stopped, time.Second); p != "" || err != nil {
		t.Fatalf("stopped Fetch = %q, %v; want nothing once the block ran out", p, err)
	}
}
