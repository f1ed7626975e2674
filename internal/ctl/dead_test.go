package ctl_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/coursedl/worker/internal/ctl"
	"github.com/coursedl/worker/internal/rdb"
)

// deadLetter rejects a job through the worker's own door into Redis.
func (w *world) deadLetter(payload, reason string, at time.Time) {
	w.t.Helper()
	ctx := context.Background()
	if err := w.rc.LPush(ctx, rdb.ProcessingKey("host-a"), payload).Err(); err != nil {
		w.t.Fatal(err)
	}
	if err := w.door("host-a").DeadLetter(ctx, payload, reason, at); err != nil {
		w.t.Fatal(err)
	}
}

func jobOf(id int64) string {
	return fmt.Sprintf(`{"taskId":%d,"email":"buyer@example.com","courseUrl":"https://www.udemy.com/course/x/"}`, id)
}

func TestDeadListRequeuePurge(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	at := time.Date(2026, 11, 28, 20, 0, 0, 0, time.UTC)
	w.deadLetter(jobOf(101), "email does not match the row", at)
	w.deadLetter(`{"taskId": "oops`, "payload is not JSON:\nunexpected end", at.Add(time.Minute))
	w.deadLetter(jobOf(103), "no download_tasks row with id 103", at.Add(2*time.Minute))
	w.rc.LPush(ctx, rdb.DeadKey, "written by hand")
	w.rc.HSet(ctx, rdb.AttemptsKey, "103", 3)

	r := w.run("dead", "list").ok(t)
	hasLines(t, r.stdout,
		"# TASK AT WORKER REASON",
		"1 101 2026-11-28T20:00:00Z host-a email does not match the row",
		"2 - 2026-11-28T20:01:00Z host-a payload is not JSON: unexpected end",
		"3 103 2026-11-28T20:02:00Z host-a no download_tasks row with id 103",
		"4 - - - (not a dead-letter entry)",
		"4 dead letters.")

	var l ctl.DeadList
	w.run("dead", "list", "--json", "--limit", "2").ok(t).decode(t, &l)
	if l.Total != 4 || len(l.Entries) != 2 || l.Entries[0].Index != 3 || l.Entries[0].TaskID != 103 ||
		l.Entries[0].Payload != jobOf(103) || l.Entries[0].Worker != "host-a" || l.Entries[1].Raw != "written by hand" {
		t.Fatalf("dead list --json --limit 2: %+v", l)
	}

	// A new dead letter arriving meanwhile does not move the numbers shown.
	w.deadLetter(jobOf(105), "course host not allowed", at.Add(3*time.Minute))
	r = w.run("dead", "requeue", "3").ok(t)
	if r.stdout != "requeued #3 (task 103) onto queue:downloads\n" {
		t.Fatalf("requeue 3: %q", r.stdout)
	}
	if q, _ := w.rc.LRange(ctx, "queue:downloads", 0, -1).Result(); len(q) != 1 || q[0] != jobOf(103) {
		t.Fatalf("queue after requeue: %q", q)
	}
	if n, _ := w.rc.HExists(ctx, rdb.AttemptsKey, "103").Result(); n {
		t.Fatal("the requeued task's attempts were not reset")
	}

	// Numbers that do not exist: nothing moves.
	r = w.run("dead", "requeue", "1", "9")
	if r.code != ctl.ExitError || !strings.Contains(r.stderr, "no dead letter #9: the list holds 4") {
		t.Fatalf("requeue 9: exit %d %q", r.code, r.stderr)
	}
	if n, _ := w.rc.LLen(ctx, rdb.DeadKey).Result(); n != 4 {
		t.Fatalf("dead list length %d after a refused requeue", n)
	}

	// By task, as JSON.
	var rq ctl.Requeued
	w.run("dead", "requeue", "--task", "105", "--json").ok(t).decode(t, &rq)
	if len(rq.Requeued) != 1 || rq.Requeued[0].TaskID != 105 || rq.Requeued[0].Index != 4 || len(rq.Skipped) != 0 {
		t.Fatalf("requeue --task 105 --json: %+v", rq)
	}

	// --all requeues what it can, oldest first, and says what it could not.
	r = w.run("dead", "requeue", "--all")
	if r.code != ctl.ExitError {
		t.Fatalf("requeue --all with entries it cannot push: exit %d", r.code)
	}
	hasLines(t, r.stdout,
		"requeued #1 (task 101) onto queue:downloads",
		"skipped #2 (task ?): its payload names no task: the worker would reject it again",
		"skipped #3 (task ?): not a dead-letter entry: no payload to push; remove it with `dead purge`")
	q, _ := w.rc.LRange(ctx, "queue:downloads", 0, -1).Result()
	wantQ := []string{jobOf(101), jobOf(105), jobOf(103)} // LPUSH: newest at the left
	if strings.Join(q, "|") != strings.Join(wantQ, "|") {
		t.Fatalf("queue %q, want %q", q, wantQ)
	}

	r = w.run("dead", "purge")
	if r.code != ctl.ExitError || !strings.Contains(r.stderr, "dead purge deletes 2 dead letters for good; run it again with --yes") {
		t.Fatalf("purge without --yes: exit %d %q", r.code, r.stderr)
	}
	var p ctl.Purged
	w.run("dead", "purge", "--yes", "--json").ok(t).decode(t, &p)
	if p.Purged != 2 {
		t.Fatalf("purged %d", p.Purged)
	}
	r = w.run("dead", "list").ok(t)
	if r.stdout != "no dead letters\n" {
		t.Fatalf("after purge: %q", r.stdout)
	}
	w.run("dead", "purge", "--yes").ok(t)
}
