package intake_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/coursedl/worker/internal/intake"
	"github.com/coursedl/worker/internal/lifecycle"
	"github.com/coursedl/worker/internal/rdb"
	"github.com/coursedl/worker/internal/staging"
	"github.com/coursedl/worker/internal/testutil"
)

// line is one lifecycle line an Intake wrote.
type line struct {
	event  string
	taskID int64
	fields []lifecycle.Field
}

// lines is a Lifecycle that keeps what it is given. A fake: the point is which
// events and fields, not the file format (package lifecycle tests that).
type lines struct {
	mu  sync.Mutex
	got []line
}

func (l *lines) Write(event string, taskID int64, fields ...lifecycle.Field) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.got = append(l.got, line{event, taskID, fields})
	return nil
}

func (l *lines) all() []line {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]line(nil), l.got...)
}

// of returns the lines of event.
func (l *lines) of(event string) []line {
	var out []line
	for _, x := range l.all() {
		if x.event == event {
			out = append(out, x)
		}
	}
	return out
}

// field returns the value of key in x, and whether it is there.
func (x line) field(key string) (string, bool) {
	for _, f := range x.fields {
		if f.Key == key {
			return f.Value, true
		}
	}
	return "", false
}

const worker = "dl-test-1"

// setup is an Intake of worker on a Redis database of the test's own, with a
// staging folder that has room, and a tool's door to the same Redis for an
// operator's pauses.
type setup struct {
	in    *intake.Intake
	rc    *redis.Client
	tool  *rdb.Client
	lines *lines
}

func newSetup(t *testing.T, p intake.Params) *setup {
	t.Helper()
	rc := testutil.Redis(t)
	s := &setup{rc: rc, tool: rdb.New(rc, rdb.Options{Queue: "queue:downloads"}), lines: &lines{}}
	p.Redis = rdb.New(rc, rdb.Options{Queue: "queue:downloads", Worker: worker})
	if p.StagingDir == "" {
		p.StagingDir = t.TempDir()
	}
	p.Lifecycle = s.lines
	s.in = intake.New(p)
	return s
}

func (s *setup) look(t *testing.T) {
	t.Helper()
	if err := s.in.Look(context.Background()); err != nil {
		t.Fatalf("Look: %v", err)
	}
}

func (s *setup) pause(t *testing.T, who, why string) {
	t.Helper()
	if _, err := s.tool.Pause(context.Background(), who, why); err != nil {
		t.Fatal(err)
	}
}

func (s *setup) resume(t *testing.T, who ...string) {
	t.Helper()
	if _, err := s.tool.Resume(context.Background(), who...); err != nil {
		t.Fatal(err)
	}
}

// paused returns the reason of Closed when it is a *intake.PausedError.
func paused(t *testing.T, in *intake.Intake) string {
	t.Helper()
	var pe *intake.PausedError
	if err := in.Closed(); !errors.As(err, &pe) {
		t.Fatalf("Closed() = %v, want a *intake.PausedError", err)
	}
	return pe.Reason
}

// waiting starts Wait on a goroutine; the channel gets its result.
func waiting(ctx context.Context, in *intake.Intake) <-chan error {
	done := make(chan error, 1)
	go func() { done <- in.Wait(ctx) }()
	return done
}

// stillBlocked fails the test if done delivers within a short while.
func stillBlocked(t *testing.T, done <-chan error) {
	t.Helper()
	select {
	case err := <-done:
		t.Fatalf("Wait returned %v while intake is closed", err)
	case <-time.After(150 * time.Millisecond):
	}
}

// returns waits for done to deliver and returns what it delivered.
func returns(t *testing.T, done <-chan error) error {
	t.Helper()
	var err error
	got := false
	testutil.Eventually(t, 5*time.Second, func() bool {
		select {
		case err = <-done:
			got = true
		default:
		}
		return got
	}, "Wait did not return after intake opened")
	return err
}

func TestOperatorPause(t *testing.T) {
	for _, who := range []string{worker, rdb.AllWorkers} {
		t.Run(who, func(t *testing.T) {
			s := newSetup(t, intake.Params{})
			s.look(t)
			if err := s.in.Closed(); err != nil {
				t.Fatalf("Closed() before any pause = %v", err)
			}
			if err := s.in.Wait(context.Background()); err != nil {
				t.Fatalf("Wait on open intake = %v", err)
			}

			s.pause(t, who, "operator: maintenance")
			if err := s.in.Closed(); err != nil {
				t.Fatalf("Closed() = %v before the next look, want the last state (open)", err)
			}
			s.look(t)
			if got := paused(t, s.in); got != "operator: maintenance" {
				t.Errorf("reason %q, want %q", got, "operator: maintenance")
			}
			if msg := s.in.Closed().Error(); !strings.Contains(msg, "operator: maintenance") {
				t.Errorf("error %q does not say why", msg)
			}

			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := waiting(ctx, s.in)
			stillBlocked(t, done)
			s.look(t) // the same pause again: still closed, no new line
			stillBlocked(t, done)

			s.resume(t)
			s.look(t)
			if err := returns(t, done); err != nil {
				t.Fatalf("Wait after resume = %v", err)
			}
			if err := s.in.Closed(); err != nil {
				t.Fatalf("Closed() after resume = %v", err)
			}
			s.look(t)

			p, r := s.lines.of(lifecycle.IntakePaused), s.lines.of(lifecycle.IntakeResumed)
			if len(p) != 1 || len(r) != 1 || len(s.lines.all()) != 2 {
				t.Fatalf("lines %+v, want one INTAKE_PAUSED and one INTAKE_RESUMED", s.lines.all())
			}
			if v, ok := p[0].field("Reason"); !ok || v != "operator: maintenance" || p[0].taskID != 0 {
				t.Errorf("INTAKE_PAUSED %+v, want [Reason: operator: maintenance], task id 0", p[0])
			}
			if _, ok := r[0].field("Reason"); !ok || r[0].taskID != 0 {
				t.Errorf("INTAKE_RESUMED %+v, want a [Reason] and task id 0", r[0])
			}
			if v, _ := r[0].field("Was"); v != "operator: maintenance" {
				t.Errorf("INTAKE_RESUMED [Was: %s], want the pause lifted", v)
			}
		})
	}
}

func TestWaitEndsWithContext(t *testing.T) {
	s := newSetup(t, intake.Params{})
	s.pause(t, worker, "operator")
	s.look(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := waiting(ctx, s.in)
	stillBlocked(t, done)
	cancel()
	if err := returns(t, done); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait after its context ended = %v, want context.Canceled", err)
	}
}

func TestOwnPauseBeforeEveryWorkers(t *testing.T) {
	s := newSetup(t, intake.Params{})
	s.pause(t, rdb.AllWorkers, "operator: all")
	s.pause(t, worker, "operator: this one")
	s.look(t)
	if got := paused(t, s.in); got != "operator: this one" {
		t.Errorf("reason %q, want this worker's own pause", got)
	}
	s.resume(t, worker)
	s.look(t)
	if got := paused(t, s.in); got != "operator: all" {
		t.Errorf("after lifting its own pause: reason %q, want every worker's", got)
	}
	s.resume(t)
	s.look(t)
	if err := s.in.Closed(); err != nil {
		t.Fatalf("Closed() after resume = %v", err)
	}
	if n := len(s.lines.of(lifecycle.IntakePaused)); n != 2 {
		t.Errorf("%d INTAKE_PAUSED lines, want 2 (one per reason): %+v", n, s.lines.all())
	}
	if n := len(s.lines.of(lifecycle.IntakeResumed)); n != 1 {
		t.Errorf("%d INTAKE_RESUMED lines, want 1: %+v", n, s.lines.all())
	}
}

func TestPauseOfAnotherWorker(t *testing.T) {
	s := newSetup(t, intake.Params{})
	s.pause(t, "dl-test-2", "operator: not you")
	s.look(t)
	if err := s.in.Closed(); err != nil {
		t.Fatalf("Closed() = %v, want open: the pause is another worker's", err)
	}
	if err := s.in.Wait(context.Background()); err != nil {
		t.Fatalf("Wait = %v", err)
	}
	if got := s.lines.all(); len(got) != 0 {
		t.Errorf("lines %+v, want none", got)
	}
}

func TestRun(t *testing.T) {
	const every = 20 * time.Millisecond
	s := newSetup(t, intake.Params{Every: every})
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- s.in.Run(ctx) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-ran:
			if err != nil {
				t.Errorf("Run returned %v after its context ended, want nil", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Run did not return after its context ended")
		}
	}
	t.Cleanup(stop)

	// Run looks at once: the disk's figure appears.
	testutil.Eventually(t, 2*time.Second, func() bool { return s.in.Free() > 0 }, "Run did not read the staging disk")

	s.pause(t, rdb.AllWorkers, "operator: by run")
	// A few periods, with room for a slow machine under -race.
	testutil.Eventually(t, 50*every+time.Second, func() bool { return s.in.Closed() != nil },
		"Run did not see the pause")
	if got := paused(t, s.in); got != "operator: by run" {
		t.Errorf("reason %q", got)
	}
	done := waiting(context.Background(), s.in)
	s.resume(t)
	if err := returns(t, done); err != nil {
		t.Fatalf("Wait = %v", err)
	}
	stop()
	if n, m := len(s.lines.of(lifecycle.IntakePaused)), len(s.lines.of(lifecycle.IntakeResumed)); n != 1 || m != 1 {
		t.Errorf("lines %+v, want one INTAKE_PAUSED and one INTAKE_RESUMED", s.lines.all())
	}
}

func TestBreaker(t *testing.T) {
	ctx := context.Background()
	s := newSetup(t, intake.Params{BreakerFailures: 3})
	s.look(t)
	const k = "course site refused: HTTP 401"
	const l = "course site refused: HTTP 403"

	fail := func(kind string, want bool) {
		t.Helper()
		if got := s.in.DownloadFailed(ctx, kind); got != want {
			t.Fatalf("DownloadFailed(%q) tripped = %v, want %v", kind, got, want)
		}
	}
	open := func() {
		t.Helper()
		if err := s.in.Closed(); err != nil {
			t.Fatalf("Closed() = %v, want open", err)
		}
		if m, err := s.tool.Pauses(ctx); err != nil || len(m) != 0 {
			t.Fatalf("pauses in Redis %v %v, want none", m, err)
		}
	}

	// Two of one kind, then another kind: the run starts again.
	fail(k, false)
	fail(k, false)
	fail(l, false)
	open()
	// A success ends a run.
	fail(l, false)
	s.in.DownloadSucceeded()
	fail(l, false)
	fail(l, false)
	open()
	// So does a failure of no kind.
	fail("", false)
	fail(l, false)
	fail(l, false)
	open()
	fail(l, true)

	m, err := s.tool.Pauses(ctx)
	if err != nil {
		t.Fatal(err)
	}
	why := m[worker]
	if len(m) != 1 || !strings.Contains(why, "HTTP 403") || !strings.Contains(why, "3 tasks in a row") {
		t.Fatalf("pauses in Redis %v, want this worker's, naming HTTP 403 and the count", m)
	}
	if got := paused(t, s.in); got != why {
		t.Errorf("Closed() reason %q, want Redis's %q", got, why)
	}
	// The next look keeps it: it is in Redis.
	s.look(t)
	if got := paused(t, s.in); got != why {
		t.Errorf("after Look: reason %q, want %q", got, why)
	}
	// Tasks that were running fail the same way: the breaker does not trip
	// again, nor rewrite the pause, nor write another line.
	fail(l, false)
	fail(l, false)
	if m, _ := s.tool.Pauses(ctx); m[worker] != why {
		t.Errorf("a failure after the trip rewrote the pause: %q", m[worker])
	}
	if p := s.lines.of(lifecycle.IntakePaused); len(p) != 1 {
		t.Fatalf("INTAKE_PAUSED lines %+v, want one", s.lines.all())
	} else if v, _ := p[0].field("Reason"); v != why || p[0].taskID != 0 {
		t.Errorf("INTAKE_PAUSED %+v, want [Reason: %s], task id 0", p[0], why)
	}

	// Lifted, the breaker counts afresh: two more do not trip it, the third does.
	s.resume(t)
	s.look(t)
	open()
	if n := len(s.lines.of(lifecycle.IntakeResumed)); n != 1 {
		t.Errorf("%d INTAKE_RESUMED lines, want 1", n)
	}
	fail(l, false)
	fail(l, false)
	open()
	fail(l, true)
	paused(t, s.in)
}

func TestKind(t *testing.T) {
	for _, c := range []struct {
		name    string
		message string
		stderr  []string
		want    string
	}{
		{"yt-dlp 403", "ERROR: [generic] Unable to download webpage: HTTP Error 403: Forbidden (caused by <HTTPError 403: 'Forbidden'>)", nil,
			"course site refused: HTTP 403"},
		{"yt-dlp 401", "ERROR: [udemy] 12345: Unable to download JSON metadata: HTTP Error 401: Unauthorized", nil,
			"course site refused: HTTP 401"},
		{"bare 401", "HTTP Error 401: Unauthorized", nil, "course site refused: HTTP 401"},
		{"in the stderr tail, last line", "download: exit status 1", []string{
			"[udemy] Downloading login page",
			"[udemy] 12345: Downloading course curriculum",
			"ERROR: [udemy] 12345: Unable to download JSON metadata: HTTP Error 403: Forbidden (caused by <HTTPError 403: 'Forbidden'>)",
		}, "course site refused: HTTP 403"},
		{"other tools: 403 Forbidden", "GET https://www.udemy.com/api: 403 Forbidden", nil, "course site refused: HTTP 403"},
		{"other tools: status 401", "request failed with status 401: token expired", nil, "course site refused: HTTP 401"},
		{"404", "ERROR: [generic] Unable to download webpage: HTTP Error 404: Not Found (caused by <HTTPError 404: 'Not Found'>)", nil, ""},
		{"500", "HTTP Error 500: Internal Server Error", nil, ""},
		{"no status", "ERROR: fake failure", nil, ""},
		{"no status, tail", "exit status 1", []string{"ERROR: fake failure", "Traceback ..."}, ""},
		{"4031", "ERROR: [udemy] 4031: Unable to extract lecture 4031", []string{"fragment 4031 of 9000"}, ""},
		{"port 4030", "ERROR: unable to connect to proxy at 127.0.0.1 port 4030: Connection refused", nil, ""},
		{"14030", "HTTP Error 14030: Nonsense", nil, ""},
		{"empty", "", nil, ""},
		{"a title with 401:", "ERROR: unable to write", []string{"[udemy] Downloading lecture 401: Setting up"}, ""},
		{"a file name with 403:", "[download] Destination: 403: Intro to APIs.mp4", nil, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := intake.Kind(c.message, c.stderr); got != c.want {
				t.Errorf("Kind(%q, %q) = %q, want %q", c.message, c.stderr, got, c.want)
			}
		})
	}
}

func TestDisk(t *testing.T) {
	dir := testutil.Tmpfs(t, 8)
	s := newSetup(t, intake.Params{StagingDir: dir, MinFreeMB: 4})
	s.look(t)
	if err := s.in.Closed(); err != nil {
		t.Fatalf("Closed() on an empty 8 MiB disk with a floor of 4 = %v", err)
	}
	if err := s.in.Room(); err != nil {
		t.Fatalf("Room() = %v", err)
	}
	before := s.in.Free()
	if before < 7*staging.MiB || before > 8*staging.MiB {
		t.Fatalf("Free() = %d, want about 8 MiB", before)
	}

	fill := filepath.Join(dir, "fill")
	if err := os.WriteFile(fill, make([]byte, 6*staging.MiB), 0o600); err != nil {
		t.Fatal(err)
	}
	s.look(t)
	var low *staging.LowError
	if err := s.in.Closed(); !errors.As(err, &low) {
		t.Fatalf("Closed() after filling the disk = %v, want a *staging.LowError", err)
	}
	if !strings.Contains(s.in.Closed().Error(), dir) || low.Dir != dir || low.MinMiB != 4 {
		t.Errorf("LowError %+v (%v) does not name the folder %s and the floor", low, low, dir)
	}
	if err := s.in.Room(); !errors.As(err, &low) {
		t.Fatalf("Room() = %v, want a *staging.LowError", err)
	}
	if free := s.in.Free(); free > before-6*staging.MiB || free >= 4*staging.MiB {
		t.Errorf("Free() = %d after writing 6 MiB of %d", free, before)
	}
	if got := s.lines.all(); len(got) != 0 {
		t.Errorf("lines %+v: a low disk is no pause", got)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := waiting(ctx, s.in)
	stillBlocked(t, done)

	if err := os.Remove(fill); err != nil {
		t.Fatal(err)
	}
	if err := s.in.Room(); err != nil {
		t.Fatalf("Room() after freeing the disk = %v", err)
	}
	if err := returns(t, done); err != nil {
		t.Fatalf("Wait = %v", err)
	}
	if err := s.in.Closed(); err != nil {
		t.Fatalf("Closed() = %v", err)
	}
	if free := s.in.Free(); free < before-staging.MiB/2 {
		t.Errorf("Free() = %d after removing the file, was %d", free, before)
	}
}

// A low disk and a pause at once: intake opens only when both are gone.
func TestDiskAndPause(t *testing.T) {
	dir := testutil.Tmpfs(t, 8)
	s := newSetup(t, intake.Params{StagingDir: dir, MinFreeMB: 4})
	fill := filepath.Join(dir, "fill")
	if err := os.WriteFile(fill, make([]byte, 6*staging.MiB), 0o600); err != nil {
		t.Fatal(err)
	}
	s.pause(t, worker, "operator")
	s.look(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := waiting(ctx, s.in)
	s.resume(t)
	s.look(t)
	var low *staging.LowError
	if err := s.in.Closed(); !errors.As(err, &low) {
		t.Fatalf("Closed() = %v, want the disk's shortage once the pause is lifted", err)
	}
	stillBlocked(t, done)
	if err := os.Remove(fill); err != nil {
		t.Fatal(err)
	}
	s.look(t)
	if err := returns(t, done); err != nil {
		t.Fatalf("Wait = %v", err)
	}
}
