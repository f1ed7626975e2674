package ctl_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/coursedl/worker/internal/ctl"
	"github.com/coursedl/worker/internal/job"
)

func TestEnqueuePushesTheWebAppsJob(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	const course = "https://www.udemy.com/course/go-in-depth/?couponCode=A&b=<c>"
	res := w.db.MustExec("INSERT INTO orders (email, amount, status) VALUES ('buyer@example.com', 19.99, 'paid')")
	orderID, _ := res.LastInsertId()
	withOrder := w.task(orderID, "buyer@example.com", course, true)
	noOrder := w.task(nil, "buyer+x@example.com", "https://www.udemy.com/course/x/", false)

	r := w.run("enqueue", fmt.Sprint(withOrder)).ok(t)
	want := fmt.Sprintf(`{"taskId":%d,"email":"buyer@example.com","courseUrl":%q,"orderId":%d}`, withOrder, course, orderID)
	if r.stdout != fmt.Sprintf("task %d (status pending) pushed onto queue:downloads, 1 waiting:\n%s\n", withOrder, want) {
		t.Fatalf("enqueue output:\n%s\nwant payload %s", r.stdout, want)
	}
	got, err := w.rc.LRange(ctx, "queue:downloads", 0, -1).Result()
	if err != nil || len(got) != 1 || got[0] != want {
		t.Fatalf("queue holds %q, %v; want exactly %s", got, err, want)
	}
	// The worker's own decoder takes it, and it matches its row.
	j, err := job.Decode([]byte(got[0]), []string{"www.udemy.com"})
	if err != nil {
		t.Fatalf("the worker rejects the pushed job: %v", err)
	}
	if err := job.Match(j, job.Row{Email: "buyer@example.com", CourseURL: course, OrderID: &orderID}); err != nil {
		t.Fatalf("pushed job does not match its row: %v", err)
	}

	var e ctl.Enqueued
	w.run("enqueue", fmt.Sprint(noOrder), "--json").ok(t).decode(t, &e)
	wantNoOrder := fmt.Sprintf(`{"taskId":%d,"email":"buyer+x@example.com","courseUrl":"https://www.udemy.com/course/x/"}`, noOrder)
	if e.TaskID != noOrder || e.Payload != wantNoOrder || e.Queue != "queue:downloads" || e.QueueDepth != 2 ||
		e.Status != "pending" || !strings.Contains(e.Note, "is_enrolled is 0") {
		t.Fatalf("enqueue --json: %+v\nwant payload %s", e, wantNoOrder)
	}
	// LPUSH, as the web app: the newest job is at the left, taken last.
	if head, _ := w.rc.LIndex(ctx, "queue:downloads", 0).Result(); head != wantNoOrder {
		t.Fatalf("queue head %q", head)
	}

	w.db.MustExec("UPDATE download_tasks SET status = 'completed' WHERE id = ?", withOrder)
	r = w.run("enqueue", fmt.Sprint(withOrder)).ok(t)
	hasLines(t, r.stdout, "note: the task is completed: a worker will acknowledge the job and skip it")

	r = w.run("enqueue", fmt.Sprint(noOrder+1000))
	if r.code != ctl.ExitError || !strings.Contains(r.stderr, "no download_tasks row") || r.stdout != "" {
		t.Fatalf("missing row: exit %d %q %q", r.code, r.stdout, r.stderr)
	}
	if n, _ := w.rc.LLen(ctx, "queue:downloads").Result(); n != 3 {
		t.Fatalf("queue length %d after a refused enqueue", n)
	}
}
