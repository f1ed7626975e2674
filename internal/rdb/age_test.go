package rdb_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/coursedl/worker/internal/rdb"
	"github.com/coursedl/worker/internal/testutil"
)

// oldest calls OldestQueued and checks the age is within [from, from+slack]:
// the calls of a test take far less than slack on Redis's clock.
func oldest(t *testing.T, r *rdb.Client, from time.Duration) {
	t.Helper()
	const slack = 5 * time.Second
	age, err := r.OldestQueued(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if age < from || age > from+slack {
		t.Fatalf("oldest queued job %v old, want %v to %v", age, from, from+slack)
	}
}

// marks reads the marks, newest first, as "job" each.
func marks(t *testing.T, rc *redis.Client) []string {
	t.Helper()
	var jobs []string
	for _, m := range rc.LRange(context.Background(), rdb.QueueMarksKey, 0, -1).Val() {
		_, job, _ := strings.Cut(m, " ")
		jobs = append(jobs, job)
	}
	return jobs
}

// backdate moves the mark of job ago into the past, as if the call that made
// it had run then: Redis's clock cannot be wound forward.
func backdate(t *testing.T, rc *redis.Client, job string, ago time.Duration) {
	t.Helper()
	ctx := context.Background()
	for i, m := range rc.LRange(ctx, rdb.QueueMarksKey, 0, -1).Val() {
		if _, j, _ := strings.Cut(m, " "); j == job {
			at := redisNow(t, rc).Add(-ago).UnixMilli()
			rc.LSet(ctx, rdb.QueueMarksKey, int64(i), fmt.Sprintf("%d %s", at, job))
			return
		}
	}
	t.Fatalf("no mark of %s in %v", job, marks(t, rc))
}

// The oldest job's age follows the jobs through the queue: dated by the first
// call that saw the newest job, and by the next mark once the jobs behind the
// first are taken.
func TestOldestQueuedFollowsTheQueue(t *testing.T) {
	ctx := context.Background()
	rc := testutil.Redis(t)
	r := rdb.New(rc, rdb.Options{Queue: "queue:downloads", Worker: "w1"})

	oldest(t, r, 0) // empty
	if n := rc.Exists(ctx, rdb.QueueMarksKey).Val(); n != 0 {
		t.Fatal("marks kept for an empty queue")
	}
	rc.LPush(ctx, "queue:downloads", "a", "b", "c") // as the web app does
	oldest(t, r, 0)
	if m := marks(t, rc); len(m) != 1 || m[0] != "c" {
		t.Fatalf("marks %v, want the newest job c", m)
	}
	// They hold copies of jobs: gone a day after nothing reads the age.
	if ttl := rc.PTTL(ctx, rdb.QueueMarksKey).Val(); ttl < 23*time.Hour || ttl > 24*time.Hour {
		t.Fatalf("marks expire in %v, want a day", ttl)
	}
	backdate(t, rc, "c", 100*time.Second)
	oldest(t, r, 100*time.Second)

	rc.LPush(ctx, "queue:downloads", "d", "e")
	oldest(t, r, 100*time.Second) // a, b, c are still there
	if m := marks(t, rc); len(m) != 2 || m[0] != "e" {
		t.Fatalf("marks %v, want e then c", m)
	}
	oldest(t, r, 100*time.Second) // no new job: no new mark
	if m := marks(t, rc); len(m) != 2 {
		t.Fatalf("marks %v after a call that saw no new job", m)
	}
	backdate(t, rc, "e", 40*time.Second)

	for _, want := range []string{"a", "b"} {
		if p, err := r.Fetch(ctx, 0); err != nil || p != want {
			t.Fatalf("fetch %q, %v; want %s", p, err, want)
		}
	}
	oldest(t, r, 100*time.Second) // c waits still, behind its mark
	if p, err := r.Fetch(ctx, 0); err != nil || p != "c" {
		t.Fatalf("fetch %q, %v", p, err)
	}
	oldest(t, r, 40*time.Second) // d and e came after c's mark, by e's
	if m := marks(t, rc); len(m) != 1 || m[0] != "e" {
		t.Fatalf("marks %v, want only e's", m)
	}
	for range 2 {
		if _, err := r.Fetch(ctx, 0); err != nil {
			t.Fatal(err)
		}
	}
	oldest(t, r, 0)
	if n := rc.Exists(ctx, rdb.QueueMarksKey).Val(); n != 0 {
		t.Fatal("marks kept after the queue emptied")
	}
}

// Many marks passed between two calls (no scrape for a while): the oldest
// mark still queued is found, the passed ones are dropped, and the newer ones
// stay.
func TestOldestQueuedAfterManyMarksPassed(t *testing.T) {
	ctx := context.Background()
	rc := testutil.Redis(t)
	r := rdb.New(rc, rdb.Options{Queue: "queue:downloads", Worker: "w1"})
	const jobs = 40
	for i := range jobs {
		job := fmt.Sprintf("job-%02d", i)
		rc.LPush(ctx, "queue:downloads", job)
		if _, err := r.OldestQueued(ctx); err != nil { // marks job
			t.Fatal(err)
		}
		backdate(t, rc, job, time.Duration(jobs-i)*time.Minute) // job-00 40 min ago ... job-39 1 min ago
	}
	for taken := range 25 { // job-00 .. job-24
		if _, err := r.Fetch(ctx, 0); err != nil {
			t.Fatalf("fetch %d: %v", taken, err)
		}
	}
	oldest(t, r, (jobs-25)*time.Minute) // job-25's mark
	m := marks(t, rc)
	if len(m) != jobs-25 || m[len(m)-1] != "job-25" || m[0] != "job-39" {
		t.Fatalf("marks %v, want job-39 down to job-25", m)
	}
}

// A worker is alive while its heartbeat is younger than the lease on Redis's
// clock, whatever clock wrote it.
func TestLiveWorkers(t *testing.T) {
	ctx := context.Background()
	rc := testutil.Redis(t)
	r := rdb.New(rc, rdb.Options{Queue: "q"})
	if n, err := r.LiveWorkers(ctx, 30*time.Second); err != nil || n != 0 {
		t.Fatalf("no heartbeat: %d, %v", n, err)
	}
	now := redisNow(t, rc)
	rc.ZAdd(ctx, rdb.WorkersKey,
		redis.Z{Score: float64(now.Add(-2 * time.Minute).UnixMilli()), Member: "behind"},
		redis.Z{Score: float64(now.Add(-10 * time.Second).UnixMilli()), Member: "fresh"},
		redis.Z{Score: float64(now.Add(2 * time.Minute).UnixMilli()), Member: "ahead"})
	if n, err := r.LiveWorkers(ctx, 30*time.Second); err != nil || n != 2 {
		t.Fatalf("live workers %d, %v; want fresh and ahead", n, err)
	}
	if n, err := r.LiveWorkers(ctx, 5*time.Minute); err != nil || n != 3 {
		t.Fatalf("live workers within 5 min %d, %v; want 3", n, err)
	}
}
