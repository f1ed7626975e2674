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

// A heartbeat is scored with Redis's TIME, its info says who beat, and the
// token found before the beat is returned.
func TestBeatOnRedisClock(t *testing.T) {
	ctx := context.Background()
	rc := testutil.Redis(t)
	r := rdb.New(rc, rdb.Options{Queue: "q", Worker: "w1"})
	info := rdb.WorkerInfo{Host: "h1", PID: 42, Concurrency: 3, BootID: "boot-1", Token: "tok-a", Started: "2026-01-02T03:04:05Z",
		Version: "v1.4.0"}
	before := redisNow(t, rc)
	prev, err := r.Beat(ctx, info, time.Minute)
	if err != nil || prev != "" {
		t.Fatalf("first Beat = %q, %v", prev, err)
	}
	scoreWithin(t, rc, rdb.WorkersKey, "w1", before, redisNow(t, rc))
	if prev, err := r.Beat(ctx, info, time.Minute); err != nil || prev != "tok-a" {
		t.Fatalf("second Beat = %q, %v; want its own token", prev, err)
	}
	age, got, ok, err := r.LastBeat(ctx, "w1")
	if err != nil || !ok || age < 0 || age > 5*time.Second || got != info {
		t.Fatalf("LastBeat = %v, %+v, %v, %v; want %+v", age, got, ok, err, info)
	}
	other := info
	other.Token, other.PID, other.Started = "tok-b", 43, "2026-02-02T00:00:00Z"
	if prev, err := r.Beat(ctx, other, time.Minute); err != nil || prev != "tok-a" {
		t.Fatalf("Beat of another process = %q, %v; want the first one's token", prev, err)
	}
	if _, got, _, _ := r.LastBeat(ctx, "w1"); got != other {
		t.Fatalf("info %+v after another process beat, want %+v (its start)", got, other)
	}
	if _, _, ok, err := r.LastBeat(ctx, "nobody"); ok || err != nil {
		t.Fatalf("LastBeat of no worker = %v, %v", ok, err)
	}
}

// Suspects and RecoverWorker judge a heartbeat's age on Redis's clock: a
// score written from a host clock minutes behind is dead, one from a clock
// minutes ahead is alive, whatever the caller's clock says.
func TestRecoveryOnRedisClock(t *testing.T) {
	ctx := context.Background()
	rc := testutil.Redis(t)
	now := redisNow(t, rc)
	me := rdb.New(rc, rdb.Options{Queue: "q", Worker: "me"})
	rc.ZAdd(ctx, rdb.WorkersKey,
		redis.Z{Score: float64(now.Add(-2 * time.Minute).UnixMilli()), Member: "behind"},
		redis.Z{Score: float64(now.Add(-10 * time.Second).UnixMilli()), Member: "fresh"},
		redis.Z{Score: float64(now.Add(2 * time.Minute).UnixMilli()), Member: "ahead"})
	for _, w := range []string{"behind", "fresh", "ahead"} {
		rc.LPush(ctx, rdb.ProcessingKey(w), "job-of-"+w)
	}
	sus, err := me.Suspects(ctx, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	// Each has a processing list; the heartbeats decide in RecoverWorker.
	slices.Sort(sus)
	if !slices.Equal(sus, []string{"ahead", "behind", "fresh"}) {
		t.Fatalf("suspects %v", sus)
	}
	for _, w := range sus {
		moved, err := me.RecoverWorker(ctx, w, 30*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if want := w == "behind"; (len(moved) == 1) != want {
			t.Errorf("worker %s: recovered %v, want recovered %v", w, moved, want)
		}
	}
	if age, _, ok, _ := me.LastBeat(ctx, "fresh"); !ok || age < 9*time.Second || age > 15*time.Second {
		t.Fatalf("age of fresh %v, want about 10 s", age)
	}
	rc.Del(ctx, rdb.ProcessingKey("ahead"), rdb.ProcessingKey("fresh"))
	rc.ZAdd(ctx, rdb.WorkersKey, redis.Z{Score: float64(now.Add(-time.Hour).UnixMilli()), Member: "gone"})
	if sus, _ := me.Suspects(ctx, 30*time.Second); !slices.Equal(sus, []string{"gone"}) {
		t.Fatalf("suspects by heartbeat alone %v, want [gone]", sus)
	}
}
