package ctl_test

import (
	"context"
	"fmt"
	"regexp"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/coursedl/worker/internal/ctl"
	"github.com/coursedl/worker/internal/rdb"
)

func TestStats(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()

	r := w.run("stats").ok(t)
	hasLines(t, r.stdout,
		"queue queue:downloads 0", "delayed retries 0", "dead letters 0", "webhooks waiting 0", "webhooks dead 0",
		"no workers: none has a heartbeat or jobs in hand")

	now := time.Now()
	w.rc.LPush(ctx, "queue:downloads", "j1", "j2", "j3")
	w.rc.ZAdd(ctx, rdb.DelayedKey, redis.Z{Score: 1, Member: "j4"})
	w.rc.LPush(ctx, rdb.DeadKey, "d1", "d2")
	w.rc.ZAdd(ctx, rdb.OutboxKey, redis.Z{Score: 1, Member: "e1"})
	w.rc.LPush(ctx, rdb.OutboxDeadKey, "e2", "e3")
	// A live worker with one job in hand, one whose heartbeat is past the lease,
	// and a processing list whose worker has no heartbeat at all.
	w.rc.ZAdd(ctx, rdb.WorkersKey,
		redis.Z{Score: float64(now.Add(-2 * time.Second).UnixMilli()), Member: "host-a"},
		redis.Z{Score: float64(now.Add(-95 * time.Second).UnixMilli()), Member: "host-b"})
	w.rc.HSet(ctx, rdb.WorkerInfoPrefix+"host-a", "host", "dl-1", "pid", 4242, "concurrency", 2, "started", "2026-11-28T19:00:00Z",
		"version", "v1.4.0")
	w.rc.LPush(ctx, rdb.ProcessingKey("host-a"), "j5")
	w.rc.LPush(ctx, rdb.ProcessingKey("host-c"), "j6", "j7")

	r = w.run("stats").ok(t)
	hasLines(t, r.stdout,
		"queue queue:downloads 3", "delayed retries 1", "dead letters 2", "webhooks waiting 1", "webhooks dead 2",
		"WORKER STATE HEARTBEAT IN HAND HOST PID STARTED VERSION",
		"host-c no-heartbeat - 2 - - - -")
	for _, re := range []string{
		`(?m)^host-a +live +[2-9]s ago +1/2 +dl-1 +4242 +2026-11-28T19:00:00Z +v1.4.0$`,
		`(?m)^host-b +stale +1m3[5-9]s ago +0 +- +- +- +-$`,
	} {
		if !regexp.MustCompile(re).MatchString(r.stdout) {
			t.Errorf("no line matching %s in:\n%s", re, r.stdout)
		}
	}

	var s ctl.Stats
	w.run("stats", "--json").ok(t).decode(t, &s)
	if s.Queue.Key != "queue:downloads" || s.Queue.Depth != 3 || s.Delayed != 1 || s.Dead != 2 ||
		s.Outbox.Waiting != 1 || s.Outbox.Dead != 2 || len(s.Workers) != 3 {
		t.Fatalf("stats --json: %+v", s)
	}
	a, b, c := s.Workers[0], s.Workers[1], s.Workers[2]
	if a.ID != "host-a" || a.State != ctl.WorkerLive || a.InHand != 1 || a.Host != "dl-1" || a.PID != 4242 || a.Concurrency != 2 || a.Version != "v1.4.0" ||
		a.HeartbeatAgeSeconds == nil || *a.HeartbeatAgeSeconds < 1.5 || *a.HeartbeatAgeSeconds > 20 {
		t.Errorf("host-a: %+v", a)
	}
	if b.ID != "host-b" || b.State != ctl.WorkerStale || b.InHand != 0 || b.LastHeartbeat == nil ||
		b.LastHeartbeat.UnixMilli() != now.Add(-95*time.Second).UnixMilli() {
		t.Errorf("host-b: %+v", b)
	}
	if c.ID != "host-c" || c.State != ctl.WorkerNoHeartbeat || c.InHand != 2 || c.HeartbeatAgeSeconds != nil {
		t.Errorf("host-c: %+v", c)
	}
}

func TestStatsNeedsNoMySQL(t *testing.T) {
	w := newWorld(t)
	// No --env-file: no DSN, no webhook secret. stats reads Redis only.
	r := w.runEnv(false, nil, "--env-file", "", "stats")
	if r.code != 0 {
		t.Fatalf("stats without mysql.dsn: exit %d %s", r.code, r.stderr)
	}
	// A command that reads rows says what is missing.
	r = w.runEnv(false, nil, "--env-file", "", "enqueue", "1")
	if r.code != ctl.ExitError || !regexp.MustCompile(`set mysql\.dsn`).MatchString(r.stderr) {
		t.Fatalf("enqueue without mysql.dsn: exit %d %q", r.code, r.stderr)
	}
	// The process environment wins over the file, and a bad key is named.
	r = w.runEnv(false, []string{"WORKER_REDIS_DB=99"}, "stats")
	if r.code != ctl.ExitError || !regexp.MustCompile(`redis\.db: must be 0 to 15`).MatchString(r.stderr) {
		t.Fatalf("bad redis.db: exit %d %q", r.code, r.stderr)
	}
	r = w.runEnv(false, []string{fmt.Sprintf("WORKERCTL_CONFIG=%s", w.config)}, "stats", "--json")
	if r.code != 0 {
		t.Fatalf("WORKERCTL_CONFIG: exit %d %s", r.code, r.stderr)
	}
}

func TestUsageErrors(t *testing.T) {
	w := newWorld(t)
	for _, args := range [][]string{
		{"bogus"},
		{"task"},
		{"enqueue", "1", "2"},
		{"stats", "--nope"},
	} {
		if r := w.run(args...); r.code != ctl.ExitUsage || r.stderr == "" {
			t.Errorf("%v: exit %d stderr %q, want %d", args, r.code, r.stderr, ctl.ExitUsage)
		}
	}
	for _, args := range [][]string{
		{"task", "seventeen"},
		{"enqueue", "0"},
		{"dead", "requeue"},
		{"dead", "requeue", "1", "--all"},
	} {
		if r := w.run(args...); r.code != ctl.ExitError || r.stderr == "" {
			t.Errorf("%v: exit %d stderr %q, want %d", args, r.code, r.stderr, ctl.ExitError)
		}
	}
}
