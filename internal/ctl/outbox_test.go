package ctl_test

import (
	"context"
	"testing"

	"github.com/coursedl/worker/internal/ctl"
	"github.com/coursedl/worker/internal/rdb"
)

// givenUp puts event id of task in the outbox's dead list, as a deliverer does
// once the web app refused it past the schedule.
func (w *world) givenUp(id string, task int64, reason string) {
	w.t.Helper()
	ctx := context.Background()
	r := w.door("host-a")
	if err := r.StageEvent(ctx, id, task, "task.completed", []byte(`{"type":"task.completed"}`)); err != nil {
		w.t.Fatal(err)
	}
	if err := r.ReleaseEvent(ctx, id, task); err != nil {
		w.t.Fatal(err)
	}
	if err := r.BuryEvent(ctx, id, 10, reason); err != nil {
		w.t.Fatal(err)
	}
}

func TestOutboxListAndRedeliver(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	if r := w.run("outbox", "list").ok(t); r.stdout != "webhook events waiting: 0\nnone given up\n" {
		t.Fatalf("empty outbox:\n%s", r.stdout)
	}
	w.givenUp("msg_task7_completed", 7, "webhook: answered 410 Gone")
	w.givenUp("msg_task8_completed", 8, "webhook: no answer")

	var l ctl.OutboxList
	w.run("outbox", "list", "--json").ok(t).decode(t, &l)
	if len(l.GivenUp) != 2 || l.GivenUp[0].ID != "msg_task8_completed" || l.GivenUp[1].TaskID != 7 ||
		l.GivenUp[1].Attempts != 10 || l.GivenUp[1].LastError != "webhook: answered 410 Gone" {
		t.Fatalf("list = %+v", l)
	}
	hasLines(t, w.run("outbox", "list").ok(t).stdout,
		"msg_task7_completed 7 task.completed 10 webhook: answered 410 Gone")

	// An id that is not given up: refused, nothing redelivered.
	if r := w.run("outbox", "redeliver", "msg_task7_completed", "msg_nope"); r.code != ctl.ExitError {
		t.Fatalf("redeliver of an unknown id: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if n := w.rc.ZCard(ctx, rdb.OutboxKey).Val(); n != 0 {
		t.Fatalf("%d events made due by a refused redeliver", n)
	}
	hasLines(t, w.run("outbox", "redeliver", "msg_task7_completed").ok(t).stdout,
		"redelivering msg_task7_completed: due now, attempts reset")
	if w.rc.ZScore(ctx, rdb.OutboxKey, "msg_task7_completed").Err() != nil {
		t.Fatal("the redelivered event is not due in the outbox")
	}
	if e, err := w.door("").Event(ctx, "msg_task7_completed"); err != nil || e.Attempts != 0 {
		t.Fatalf("redelivered event %+v, %v: want its attempts reset", e, err)
	}
	var red ctl.Redelivered
	w.run("outbox", "redeliver", "--all", "--json").ok(t).decode(t, &red)
	if len(red.Redelivered) != 1 || red.Redelivered[0] != "msg_task8_completed" {
		t.Fatalf("--all redelivered %v, want the one left", red.Redelivered)
	}
	if n := w.rc.LLen(ctx, rdb.OutboxDeadKey).Val(); n != 0 {
		t.Fatalf("%d events left given up", n)
	}
	w.run("outbox", "list", "--json").ok(t).decode(t, &l)
	if l.Waiting != 2 || len(l.GivenUp) != 0 {
		t.Fatalf("after redelivery: %+v", l)
	}
}
