package rdb_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/coursedl/worker/internal/rdb"
	"github.com/coursedl/worker/internal/testutil"
)

// outboxDue stages event id of taskID with body and releases it, due now by
// Redis's clock, as a task does.
func outboxDue(t *testing.T, r *rdb.Client, id string, taskID int64, body string) {
	t.Helper()
	ctx := context.Background()
	if err := r.StageEvent(ctx, id, taskID, "task.completed", []byte(body)); err != nil {
		t.Fatal(err)
	}
	if err := r.ReleaseEvent(ctx, id, taskID); err != nil {
		t.Fatal(err)
	}
}

// pastDue waits until Redis's clock is past the due time of the outbox event
// id: events are claimed once due strictly before Redis's now.
func pastDue(t *testing.T, rc *redis.Client, id string) {
	t.Helper()
	due := rc.ZScore(context.Background(), rdb.OutboxKey, id).Val()
	testutil.Eventually(t, 5*time.Second, func() bool {
		return float64(redisNow(t, rc).UnixMilli()) > due
	}, "Redis's clock past the due time of %s", id)
}

// redisNow reads Redis's clock.
func redisNow(t *testing.T, rc *redis.Client) time.Time {
	t.Helper()
	now, err := rc.Time(context.Background()).Result()
	if err != nil {
		t.Fatal(err)
	}
	return now
}

// scoreWithin checks that the score of member in key is, in Unix ms, between
// from and to (Redis's clock read before and after the write, plus what the
// write added).
func scoreWithin(t *testing.T, rc *redis.Client, key, member string, from, to time.Time) {
	t.Helper()
	at, err := rc.ZScore(context.Background(), key, member).Result()
	if err != nil || int64(at) < from.UnixMilli() || int64(at) > to.UnixMilli() {
		t.Fatalf("%s in %s at %v, %v; want between %d and %d", member, key, at, err, from.UnixMilli(), to.UnixMilli())
	}
}

// ClaimEvents returns each due event whole, and drops an id whose event is gone.
func TestClaimEventsReturnsEvents(t *testing.T) {
	ctx := context.Background()
	rc := testutil.Redis(t)
	r := rdb.New(rc, rdb.Options{})
	before := redisNow(t, rc)
	body := `{"type":"task.completed","taskId":5}`
	outboxDue(t, r, "msg_e", 5, body)
	if err := r.RetryEvent(ctx, "msg_e", 2, "503 Service Unavailable", 0); err != nil {
		t.Fatal(err)
	}
	rc.ZAdd(ctx, rdb.OutboxKey, redis.Z{Score: float64(before.UnixMilli()), Member: "msg_gone"})
	pastDue(t, rc, "msg_e")
	got, next, err := r.ClaimEvents(ctx, time.Minute, 10)
	if err != nil || len(got) != 1 {
		t.Fatalf("ClaimEvents = %+v, %v", got, err)
	}
	// The one event left is the one claimed, due again when its lease ends.
	if next <= time.Minute-time.Second || next > time.Minute {
		t.Fatalf("next due in %v, want the end of the lease, a minute", next)
	}
	e := got[0]
	if e.ID != "msg_e" || e.TaskID != 5 || e.Type != "task.completed" || e.Attempts != 2 ||
		e.LastError != "503 Service Unavailable" || !bytes.Equal(e.Body, []byte(body)) {
		t.Fatalf("claimed %+v", e)
	}
	if rc.ZScore(ctx, rdb.OutboxKey, "msg_gone").Err() == nil {
		t.Fatal("an id without its event stays due")
	}
	if again, _, _ := r.ClaimEvents(ctx, time.Minute, 10); len(again) != 0 {
		t.Fatalf("claimed twice within the lease: %+v", again)
	}
	if err := r.EventDelivered(ctx, "msg_e"); err != nil {
		t.Fatal(err)
	}
	if _, next, err := r.ClaimEvents(ctx, time.Minute, 10); err != nil || next != 0 {
		t.Fatalf("empty outbox: next due %v, %v; want none", next, err)
	}
}

// A task run again stages and releases its event again: its attempts and its
// next attempt stay as they were.
func TestStageAndReleaseAgainKeepTheSchedule(t *testing.T) {
	ctx := context.Background()
	rc := testutil.Redis(t)
	r := rdb.New(rc, rdb.Options{})
	outboxDue(t, r, "msg_d", 4, `{"taskId":4}`)
	before := redisNow(t, rc)
	if err := r.RetryEvent(ctx, "msg_d", 2, "503", time.Hour); err != nil {
		t.Fatal(err)
	}
	after := redisNow(t, rc)
	outboxDue(t, r, "msg_d", 4, `{"taskId":4}`)
	e, err := r.Event(ctx, "msg_d")
	if err != nil || e.Attempts != 2 || e.LastError != "503" {
		t.Fatalf("a second stage and release reset the event: %+v, %v", e, err)
	}
	scoreWithin(t, rc, rdb.OutboxKey, "msg_d", before.Add(time.Hour), after.Add(time.Hour))
}

// ReleaseClaimed releases a staged event claimed by the caller and returns it
// whole; a second release, or one of an id without its event, returns nothing
// and leaves the outbox as it was.
func TestReleaseClaimed(t *testing.T) {
	ctx := context.Background()
	rc := testutil.Redis(t)
	r := rdb.New(rc, rdb.Options{})
	if err := r.StageEvent(ctx, "msg_c", 6, "task.failed", []byte(`{"taskId":6}`)); err != nil {
		t.Fatal(err)
	}
	before := redisNow(t, rc)
	e, ok, err := r.ReleaseClaimed(ctx, "msg_c", 6, time.Minute)
	after := redisNow(t, rc)
	if err != nil || !ok || e.ID != "msg_c" || e.TaskID != 6 || e.Type != "task.failed" || e.Attempts != 0 ||
		string(e.Body) != `{"taskId":6}` {
		t.Fatalf("ReleaseClaimed = %+v, %v, %v", e, ok, err)
	}
	if rc.HExists(ctx, rdb.OutboxStagedKey, "6").Val() {
		t.Fatal("still marked staged after the release")
	}
	scoreWithin(t, rc, rdb.OutboxKey, "msg_c", before.Add(time.Minute), after.Add(time.Minute))
	lease := rc.ZScore(ctx, rdb.OutboxKey, "msg_c").Val()
	if got, _, err := r.ClaimEvents(ctx, time.Minute, 10); err != nil || len(got) != 0 {
		t.Fatalf("claimed by another within the claim: %+v, %v", got, err)
	}
	if _, ok, err := r.ReleaseClaimed(ctx, "msg_c", 6, time.Hour); ok || err != nil {
		t.Fatalf("second ReleaseClaimed = %v, %v", ok, err)
	}
	if at := rc.ZScore(ctx, rdb.OutboxKey, "msg_c").Val(); at != lease {
		t.Fatalf("a second release moved the event to %v, want %v", at, lease)
	}
	if _, ok, err := r.ReleaseClaimed(ctx, "msg_none", 7, time.Minute); ok || err != nil {
		t.Fatalf("ReleaseClaimed of no event = %v, %v", ok, err)
	}
	if rc.ZScore(ctx, rdb.OutboxKey, "msg_none").Err() == nil {
		t.Fatal("an id without its event made due")
	}
}

// A buried event leaves the schedule for the dead list once, keeps its hash,
// and is due again at once with its attempts reset when requeued.
func TestBuryAndRequeueEvent(t *testing.T) {
	ctx := context.Background()
	rc := testutil.Redis(t)
	r := rdb.New(rc, rdb.Options{})
	outboxDue(t, r, "msg_b", 2, `{"taskId":2}`)
	for range 2 { // twice: listed once
		if err := r.BuryEvent(ctx, "msg_b", 4, "400 Bad Request"); err != nil {
			t.Fatal(err)
		}
	}
	d, err := r.Depths(ctx)
	if err != nil || d.Outbox != 0 || d.OutboxDead != 1 {
		t.Fatalf("depths after bury: %+v, %v", d, err)
	}
	if e, err := r.Event(ctx, "msg_b"); err != nil || e.Attempts != 4 || e.LastError != "400 Bad Request" {
		t.Fatalf("buried event: %+v, %v", e, err)
	}
	before := redisNow(t, rc)
	if err := r.RequeueEvent(ctx, "msg_b"); err != nil {
		t.Fatal(err)
	}
	after := redisNow(t, rc)
	d, err = r.Depths(ctx)
	if err != nil || d.Outbox != 1 || d.OutboxDead != 0 {
		t.Fatalf("depths after requeue: %+v, %v", d, err)
	}
	scoreWithin(t, rc, rdb.OutboxKey, "msg_b", before, after)
	if e, _ := r.Event(ctx, "msg_b"); e.Attempts != 0 {
		t.Fatalf("requeued with %d attempts, want 0", e.Attempts)
	}
	if err := r.RequeueEvent(ctx, "msg_none"); err == nil {
		t.Fatal("requeued an event that does not exist")
	}
	if _, err := r.Event(ctx, "msg_none"); !rdb.IsNil(err) {
		t.Fatalf("Event of no event: %v, want nil", err)
	}
}

// A run that staged task.failed and crashed, then a run that completed: the
// failed event, never released, goes; once the completed one is delivered no
// outbox key is left.
func TestNoOutboxKeyLeftBehindAfterDelivery(t *testing.T) {
	ctx := context.Background()
	rc := testutil.Redis(t)
	r := rdb.New(rc, rdb.Options{})
	if err := r.StageEvent(ctx, "msg_task9_failed_x", 9, "task.failed", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	// Staged again under the same id (the same failure, run again): kept.
	if err := r.StageEvent(ctx, "msg_task9_failed_x", 9, "task.failed", []byte(`{"again":1}`)); err != nil {
		t.Fatal(err)
	}
	if n := rc.Exists(ctx, rdb.OutboxEventKey("msg_task9_failed_x")).Val(); n != 1 {
		t.Fatal("restaging one id lost its event")
	}
	outboxDue(t, r, "msg_task9_completed", 9, `{"type":"task.completed"}`)
	pastDue(t, rc, "msg_task9_completed")
	if n := rc.Exists(ctx, rdb.OutboxEventKey("msg_task9_failed_x")).Val(); n != 0 {
		t.Fatal("a staged event never released outlived the next event of its task")
	}
	got, _, err := r.ClaimEvents(ctx, time.Minute, 10)
	if err != nil || len(got) != 1 || got[0].ID != "msg_task9_completed" {
		t.Fatalf("claimed %+v, %v", got, err)
	}
	if err := r.EventDelivered(ctx, got[0].ID); err != nil {
		t.Fatal(err)
	}
	if keys := rc.Keys(ctx, "dl:outbox*").Val(); len(keys) != 0 {
		t.Fatalf("outbox keys left after delivery: %v", keys)
	}
}

// An event staged and released stays when the task stages another one: it is
// due, and a deliverer sends it.
func TestStagingAgainKeepsAReleasedEvent(t *testing.T) {
	ctx := context.Background()
	rc := testutil.Redis(t)
	r := rdb.New(rc, rdb.Options{})
	outboxDue(t, r, "msg_a", 4, `{}`)
	if err := r.StageEvent(ctx, "msg_b", 4, "task.failed", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	if n := rc.Exists(ctx, rdb.OutboxEventKey("msg_a"), rdb.OutboxEventKey("msg_b")).Val(); n != 2 {
		t.Fatalf("%d of the two events kept, want both", n)
	}
}
