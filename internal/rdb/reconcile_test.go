package rdb_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/coursedl/worker/internal/rdb"
	"github.com/coursedl/worker/internal/testutil"
)

// taskOf reads the payloads of these tests: "job-<task id>".
func taskOf(p string) int64 {
	id, _ := strconv.ParseInt(strings.TrimPrefix(p, "job-"), 10, 64)
	return id
}

func TestJobsInRedisFindsEveryList(t *testing.T) {
	ctx := context.Background()
	rc := testutil.Redis(t)
	r := rdb.New(rc, rdb.Options{Queue: "q", Worker: "w1"})
	// More than a chunk in the queue, so that it is read in several.
	for i := 1; i <= 2500; i++ {
		rc.LPush(ctx, "q", fmt.Sprintf("job-%d", i))
	}
	rc.LPush(ctx, rdb.ProcessingKey("w1"), "job-3001")
	rc.LPush(ctx, rdb.ProcessingKey("w2"), "job-3002", "not a job")
	rc.ZAdd(ctx, rdb.DelayedKey, redis.Z{Score: 1, Member: "job-3003"})
	if err := r.DeadLetter(ctx, "job-3004", "rejected", time.Now()); err != nil {
		t.Fatal(err)
	}
	rc.LPush(ctx, rdb.DeadKey, "not json")
	rc.Set(ctx, rdb.LockKey(3005), "w1/x", 0) // a lock is not a job

	found, err := r.JobsInRedis(ctx, taskOf)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []int64{1, 1000, 1001, 2500, 3001, 3002, 3003, 3004} {
		if !found[id] {
			t.Errorf("task %d not found", id)
		}
	}
	if len(found) != 2504 || found[3005] || found[0] {
		t.Fatalf("found %d tasks (3005: %v, 0: %v), want 2504", len(found), found[3005], found[0])
	}
}

func TestEpochInitAndSwap(t *testing.T) {
	ctx := context.Background()
	rc := testutil.Redis(t)
	r := rdb.New(rc, rdb.Options{Queue: "q", Worker: "w1"})
	if v, err := r.Epoch(ctx); err != nil || v != "" {
		t.Fatalf("no epoch yet: %q, %v", v, err)
	}
	v, fresh, err := r.InitEpoch(ctx, "a")
	if err != nil || v != "a" || !fresh {
		t.Fatalf("first init: %q %v %v", v, fresh, err)
	}
	v, fresh, err = r.InitEpoch(ctx, "b")
	if err != nil || v != "a" || fresh {
		t.Fatalf("second init keeps the first: %q %v %v", v, fresh, err)
	}
	if ok, err := r.SwapEpoch(ctx, "b", "c"); err != nil || ok {
		t.Fatalf("swap from the wrong value: %v %v", ok, err)
	}
	if ok, err := r.SwapEpoch(ctx, "a", "c"); err != nil || !ok {
		t.Fatalf("swap: %v %v", ok, err)
	}
	rc.Del(ctx, rdb.EpochKey)
	if ok, err := r.SwapEpoch(ctx, "", "d"); err != nil || !ok || rc.Get(ctx, rdb.EpochKey).Val() != "d" {
		t.Fatalf("swap from missing: %v %v", ok, err)
	}
}

func TestReconcileLockIsOneHolderAtATime(t *testing.T) {
	ctx := context.Background()
	rc := testutil.Redis(t)
	r := rdb.New(rc, rdb.Options{Queue: "q"})
	hold := func(token string) bool {
		t.Helper()
		ok, err := r.HoldReconcile(ctx, token, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !hold("a") || hold("b") || !hold("a") {
		t.Fatal("a takes, b waits, a extends")
	}
	if err := r.DropReconcile(ctx, "b"); err != nil || !hold("a") {
		t.Fatalf("b freed a's lock: %v", err)
	}
	if err := r.DropReconcile(ctx, "a"); err != nil || !hold("b") {
		t.Fatalf("free, then b takes it: %v", err)
	}
	if ttl := rc.PTTL(ctx, rdb.ReconcileLockKey).Val(); ttl <= 0 || ttl > time.Minute {
		t.Fatalf("ttl %s", ttl)
	}
}

func TestPushUnlocked(t *testing.T) {
	ctx := context.Background()
	rc := testutil.Redis(t)
	r := rdb.New(rc, rdb.Options{Queue: "q"})
	rc.Set(ctx, rdb.EpochKey, "e1", 0)
	if ok, err := r.PushUnlocked(ctx, 7, "job-7", "e1"); err != nil || !ok {
		t.Fatalf("push: %v %v", ok, err)
	}
	rc.Set(ctx, rdb.LockKey(8), "w1/x", time.Minute)
	if ok, err := r.PushUnlocked(ctx, 8, "job-8", "e1"); err != nil || ok {
		t.Fatalf("push of a locked task: %v %v", ok, err)
	}
	if _, err := r.PushUnlocked(ctx, 9, "job-9", "e0"); !errors.Is(err, rdb.ErrEpochChanged) {
		t.Fatalf("push under another epoch: %v", err)
	}
	rc.Del(ctx, rdb.EpochKey)
	if _, err := r.PushUnlocked(ctx, 9, "job-9", "e1"); !errors.Is(err, rdb.ErrEpochChanged) {
		t.Fatalf("push with the epoch gone: %v", err)
	}
	if got := rc.LRange(ctx, "q", 0, -1).Val(); len(got) != 1 || got[0] != "job-7" {
		t.Fatalf("queue %q", got)
	}
}

func TestRestoreLocksKeepsAnotherHolder(t *testing.T) {
	ctx := context.Background()
	rc := testutil.Redis(t)
	r := rdb.New(rc, rdb.Options{Queue: "q", Worker: "w1"})
	rc.Set(ctx, rdb.LockKey(2), "w2/y", time.Minute)
	n, err := r.RestoreLocks(ctx, map[int64]string{1: "w1/a", 2: "w1/b"}, time.Minute)
	if err != nil || n != 1 {
		t.Fatalf("restored %d, %v", n, err)
	}
	if a, b := rc.Get(ctx, rdb.LockKey(1)).Val(), rc.Get(ctx, rdb.LockKey(2)).Val(); a != "w1/a" || b != "w2/y" {
		t.Fatalf("locks %q %q", a, b)
	}
	if held, err := r.RenewLock(ctx, 1, "w1/a", time.Minute); err != nil || !held {
		t.Fatalf("the restored lock is the holder's own: %v %v", held, err)
	}
}

func TestResendEventOnlyWhenAbsent(t *testing.T) {
	ctx := context.Background()
	rc := testutil.Redis(t)
	r := rdb.New(rc, rdb.Options{Queue: "q", Worker: "w1"})
	if ok, err := r.ResendEvent(ctx, "msg_1", 1, "task.completed", []byte(`{"a":1}`)); err != nil || !ok {
		t.Fatalf("resend: %v %v", ok, err)
	}
	events, _, err := r.ClaimEvents(ctx, time.Minute, 10)
	if err != nil || len(events) != 1 || events[0].ID != "msg_1" || string(events[0].Body) != `{"a":1}` || events[0].TaskID != 1 {
		t.Fatalf("claimed %+v, %v", events, err)
	}
	// Staged by a run, or waiting in the outbox: its own body stays.
	if err := r.StageEvent(ctx, "msg_2", 2, "task.completed", []byte(`{"run":true}`)); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"msg_1", "msg_2"} {
		if ok, err := r.ResendEvent(ctx, id, 2, "task.completed", []byte(`{"rebuilt":true}`)); err != nil || ok {
			t.Fatalf("resend of %s, which is there: %v %v", id, ok, err)
		}
	}
	if e, err := r.Event(ctx, "msg_2"); err != nil || string(e.Body) != `{"run":true}` {
		t.Fatalf("staged event now %+v, %v", e, err)
	}
}
