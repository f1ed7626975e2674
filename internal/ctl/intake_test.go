package ctl_test

import (
	"context"
	"maps"
	"strings"
	"testing"

	"github.com/coursedl/worker/internal/ctl"
)

// pausedNow is the "paused" of `workerctl stats --json`.
func (w *world) pausedNow(t *testing.T) map[string]string {
	t.Helper()
	var s ctl.Stats
	w.run("stats", "--json").ok(t).decode(t, &s)
	return s.Paused
}

// wantPauses fails the test unless got holds exactly want.
func wantPauses(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	if len(got) != len(want) || !maps.Equal(got, want) {
		t.Errorf("%s: pauses %v, want %v", what, got, want)
	}
}

// pausedFor is why the worker id's intake is paused, as that worker reads it.
func (w *world) pausedFor(t *testing.T, id string) string {
	t.Helper()
	why, err := w.door(id).Paused(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return why
}

func TestPauseResume(t *testing.T) {
	w := newWorld(t)

	// Nothing paused: stats says so in JSON as an empty object, not null.
	r := w.run("stats", "--json").ok(t)
	if !strings.Contains(r.stdout, `"paused": {}`) {
		t.Errorf("stats --json with nothing paused has no \"paused\": {}:\n%s", r.stdout)
	}
	if r := w.run("stats").ok(t); strings.Contains(r.stdout, "intake paused") {
		t.Errorf("stats with nothing paused names a pause:\n%s", r.stdout)
	}

	// Every worker.
	r = w.run("pause", "--reason", "maintenance").ok(t)
	hasLines(t, r.stdout,
		"paused every worker: no new job is taken; running tasks finish",
		"paused now:",
		"every worker: operator: maintenance",
		"Resume with `workerctl resume` (all) or `workerctl resume WORKER`.")
	wantPauses(t, "after pause", w.pausedNow(t), map[string]string{"*": "operator: maintenance"})
	hasLines(t, w.run("stats").ok(t).stdout, "intake paused (every worker) operator: maintenance")
	for _, id := range []string{"w1", "w2"} {
		if got := w.pausedFor(t, id); got != "operator: maintenance" {
			t.Errorf("worker %s reads its pause as %q, want every worker's", id, got)
		}
	}

	// One worker, in JSON.
	var in ctl.Intake
	w.run("pause", "--worker", "w1", "--json").ok(t).decode(t, &in)
	if in.Setting != "w1" || len(in.Lifted) != 0 {
		t.Errorf("pause --worker w1 --json: %+v", in)
	}
	both := map[string]string{"*": "operator: maintenance", "w1": "operator"}
	wantPauses(t, "pause --worker w1 --json", in.Paused, both)
	wantPauses(t, "stats after pause --worker w1", w.pausedNow(t), both)
	hasLines(t, w.run("stats").ok(t).stdout,
		"intake paused (every worker) operator: maintenance",
		"intake paused (worker w1) operator")
	if got := w.pausedFor(t, "w1"); got != "operator" {
		t.Errorf("w1 reads its pause as %q, want its own", got)
	}

	// Lift only w1's.
	r = w.run("resume", "w1").ok(t)
	hasLines(t, r.stdout,
		"resumed worker w1 (was paused: operator)",
		"paused now:",
		"every worker: operator: maintenance")
	if strings.Contains(r.stdout, "paused worker") || strings.Contains(r.stdout, "worker w1:") {
		t.Errorf("resume w1 still shows w1 paused:\n%s", r.stdout)
	}
	wantPauses(t, "after resume w1", w.pausedNow(t), map[string]string{"*": "operator: maintenance"})
	if got := w.pausedFor(t, "w1"); got != "operator: maintenance" {
		t.Errorf("w1 reads its pause as %q after its own was lifted, want every worker's", got)
	}

	// Lift them all, in JSON.
	w.run("pause", "--worker", "w2", "--reason", "disk swap").ok(t)
	var all ctl.Intake // a fresh one: decoding into in would merge its maps
	w.run("resume", "--json").ok(t).decode(t, &all)
	if all.Setting != "" || len(all.Paused) != 0 {
		t.Errorf("resume --json: %+v", all)
	}
	wantPauses(t, "resume --json lifted", all.Lifted, map[string]string{"*": "operator: maintenance", "w2": "operator: disk swap"})
	wantPauses(t, "after resume", w.pausedNow(t), map[string]string{})
	if got := w.pausedFor(t, "w2"); got != "" {
		t.Errorf("w2 still reads a pause %q", got)
	}

	// Nothing left to resume.
	r = w.run("resume").ok(t)
	hasLines(t, r.stdout, "intake: every worker takes jobs")
	if strings.Contains(r.stdout, "resumed") {
		t.Errorf("resume with nothing paused claims to have resumed something:\n%s", r.stdout)
	}
	var none ctl.Intake
	r = w.run("resume", "--json").ok(t)
	r.decode(t, &none)
	if len(none.Lifted) != 0 || len(none.Paused) != 0 || none.Setting != "" ||
		!strings.Contains(r.stdout, `"lifted": {}`) || !strings.Contains(r.stdout, `"paused": {}`) {
		t.Errorf("resume --json with nothing paused: %+v\n%s", none, r.stdout)
	}
}

func TestResumeLiftsBreaker(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	// A breaker's pause is written by the worker itself, under its id.
	const why = "5 tasks in a row failed in the downloader: HTTP 403 (check download.cookies_file); resume with `workerctl resume`"
	if _, err := w.door("dl-1").Pause(ctx, "dl-1", why); err != nil {
		t.Fatal(err)
	}
	hasLines(t, w.run("stats").ok(t).stdout, "intake paused (worker dl-1) "+why)
	r := w.run("resume").ok(t)
	hasLines(t, r.stdout, "resumed worker dl-1 (was paused: "+why+")", "intake: every worker takes jobs")
	if got := w.pausedFor(t, "dl-1"); got != "" {
		t.Errorf("dl-1 still paused: %q", got)
	}
}

func TestPauseTakesNoArguments(t *testing.T) {
	w := newWorld(t)
	r := w.run("pause", "w1")
	if r.code == 0 {
		t.Fatalf("pause w1 (the worker as an argument, not --worker) exited 0:\n%s", r.stdout)
	}
	if got, err := w.door("").Pauses(context.Background()); err != nil || len(got) != 0 {
		t.Errorf("pauses after a refused pause: %v %v", got, err)
	}
}
