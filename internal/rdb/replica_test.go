package rdb_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/coursedl/worker/internal/rdb"
	"github.com/coursedl/worker/internal/testutil"
)

// masterReplica starts a master and a replica of it, and waits until the
// replica is in sync.
func masterReplica(t *testing.T) (master, replica *redis.Client, stopReplica func()) {
	t.Helper()
	ms, mc := testutil.RedisServer(t, "--repl-diskless-sync-delay", "0")
	host, port, _ := net.SplitHostPort(ms.Addr)
	rs, rc := testutil.RedisServer(t, "--replicaof", host, port)
	// A link up is not yet a replica receiving writes: right after a
	// diskless sync the master may hold the stream back for a while, and a
	// WAIT 1 then times out. The replica is ready once a write reaches it.
	testutil.Eventually(t, 20*time.Second, func() bool {
		ctx := context.Background()
		mc.Set(ctx, "replica-probe", ms.Addr, 0)
		return rc.Get(ctx, "replica-probe").Val() == ms.Addr
	}, "replica receiving the master's writes")
	mc.Del(context.Background(), "replica-probe")
	return mc, rc, func() { _ = rs.Stop() }
}

// With WaitReplica, the ack of a task and its webhook event are on the
// replica when the call returns; a replica that stops answering delays the
// writes without failing them, and is reported once.
func TestWritesWaitForReplica(t *testing.T) {
	ctx := context.Background()
	mc, rc, stopReplica := masterReplica(t)
	var mu sync.Mutex
	var reported []int64
	r := rdb.New(mc, rdb.Options{Queue: "q", Worker: "w1", WaitReplica: 500 * time.Millisecond,
		OnReplicaAck: func(n int64) { mu.Lock(); reported = append(reported, n); mu.Unlock() }})
	if n, err := r.Replicas(ctx); n != 1 || err != nil {
		t.Fatalf("Replicas = %d, %v; want 1", n, err)
	}
	mc.LPush(ctx, "q", "job-1", "job-2")
	if p, err := r.Fetch(ctx, 0); p != "job-1" || err != nil {
		t.Fatalf("Fetch = %q, %v", p, err)
	}
	next, err := r.AckFetch(ctx, "job-1")
	if next != "job-2" || err != nil {
		t.Fatalf("AckFetch = %q, %v", next, err)
	}
	onReplica(t, rc.LRange(ctx, rdb.ProcessingKey("w1"), 0, -1).Val(), []string{"job-2"}, "processing list after AckFetch")
	if next, err := r.AckFetch(ctx, "job-2"); next != "" || err != nil {
		t.Fatalf("AckFetch on an empty queue = %q, %v", next, err)
	}
	onReplica(t, rc.LRange(ctx, rdb.ProcessingKey("w1"), 0, -1).Val(), []string{}, "processing list after the last AckFetch")

	if err := r.StageEvent(ctx, "msg_a", 7, "task.completed", []byte(`{"taskId":7}`)); err != nil {
		t.Fatal(err)
	}
	onReplica(t, rc.HGet(ctx, rdb.OutboxStagedKey, "7").Val(), "msg_a", "staged event")
	if e, ok, err := r.ReleaseClaimed(ctx, "msg_a", 7, time.Minute); !ok || err != nil || e.TaskID != 7 {
		t.Fatalf("ReleaseClaimed = %+v, %v, %v", e, ok, err)
	}
	// The due times are Redis's: the replica holds the master's as soon as the
	// write has returned.
	due := func(id string) float64 { return mc.ZScore(ctx, rdb.OutboxKey, id).Val() }
	onReplica(t, rc.ZScore(ctx, rdb.OutboxKey, "msg_a").Val(), due("msg_a"), "claimed event's due time")
	outboxDue(t, r, "msg_b", 8, `{"taskId":8}`)
	onReplica(t, rc.ZScore(ctx, rdb.OutboxKey, "msg_b").Val(), due("msg_b"), "released event's due time")

	mc.LPush(ctx, rdb.ProcessingKey("w1"), "job-3", "job-4")
	stopReplica()
	testutil.Eventually(t, 10*time.Second, func() bool {
		info, err := mc.Info(ctx, "replication").Result()
		return err == nil && strings.Contains(info, "connected_slaves:0")
	}, "master sees its replica gone")
	for _, job := range []string{"job-3", "job-4"} {
		begin := time.Now()
		if err := r.Ack(ctx, job); err != nil {
			t.Fatalf("Ack without a replica: %v", err)
		}
		if took := time.Since(begin); took < 400*time.Millisecond {
			t.Errorf("Ack took %s: did it wait for the replica?", took)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(reported) != 1 || reported[0] != 0 {
		t.Fatalf("reported %v, want one report of no replica", reported)
	}
}

// onReplica fails the test when what, read from the replica right after the
// write returned, is not want.
func onReplica(t *testing.T, got, want any, what string) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("%s on the replica: %v, want %v", what, got, want)
	}
}

// Without a replica, WaitReplica costs nothing: no write waits.
func TestNoReplicaNoWait(t *testing.T) {
	ctx := context.Background()
	rc := testutil.Redis(t)
	r := rdb.New(rc, rdb.Options{Queue: "q", Worker: "w1", WaitReplica: 5 * time.Second})
	rc.LPush(ctx, rdb.ProcessingKey("w1"), "job")
	begin := time.Now()
	if err := r.Ack(ctx, "job"); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(begin); took > 2*time.Second {
		t.Fatalf("Ack took %s on a master without replicas", took)
	}
}

// IsFailover knows what a failover brings, as Redis and the network give it,
// wrapped or not, and nothing else.
func TestIsFailover(t *testing.T) {
	ctx := context.Background()
	mc, rc, _ := masterReplica(t)
	readonly := rc.Set(ctx, "k", "v", 0).Err()
	// A BLMOVE on a connection of its own, unblocked with an error as Redis
	// does to blocked clients when a master turns replica.
	blocked := make(chan error, 1)
	conn := mc.Conn()
	defer func() { _ = conn.Close() }()
	cid := conn.ClientID(ctx).Val()
	go func() { blocked <- conn.BLMove(ctx, "empty", "other", "RIGHT", "LEFT", 20*time.Second).Err() }()
	testutil.Eventually(t, 10*time.Second, func() bool {
		n, err := mc.ClientUnblockWithError(ctx, cid).Result()
		return err == nil && n == 1
	}, "BLMOVE unblocked")
	unblocked := <-blocked
	mc.Set(ctx, "str", "v", 0)
	wrongType := mc.LPush(ctx, "str", "x").Err()
	nobody := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialerRetries: 1})
	refused := nobody.Ping(ctx).Err()
	_ = nobody.Close()
	for _, c := range []struct {
		name string
		err  error
		want bool
	}{
		{"READONLY", readonly, true},
		{"UNBLOCKED", unblocked, true},
		{"wrapped READONLY", fmt.Errorf("ack: %w", readonly), true},
		{"connection refused", refused, true},
		{"EOF", fmt.Errorf("fetch: %w", io.EOF), true},
		{"nil", nil, false},
		{"redis.Nil", redis.Nil, false},
		{"canceled", context.Canceled, false},
		{"WRONGTYPE", wrongType, false},
	} {
		if got := rdb.IsFailover(c.err); got != c.want {
			t.Errorf("%s (%v): IsFailover = %v, want %v", c.name, c.err, got, c.want)
		}
	}
}
