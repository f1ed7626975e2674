package staging

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"
	"golang.org/x/sys/unix"

	"github.com/coursedl/worker/internal/store"
	"github.com/coursedl/worker/internal/testutil"
)

// fakeRows answers from one statuses map, only for the ids asked, and records
// each call. A real MariaDB cannot hold a row that is gone and a folder at once
// in a way worth the set-up; store's own test covers the query.
type fakeRows struct {
	mu       sync.Mutex
	statuses map[int64]string
	err      error
	calls    [][]int64
}

func (f *fakeRows) Statuses(_ context.Context, ids []int64) (map[int64]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, slices.Clone(ids))
	if f.err != nil {
		return nil, f.err
	}
	out := map[int64]string{}
	for _, id := range ids {
		if s, ok := f.statuses[id]; ok {
			out[id] = s
		}
	}
	return out, nil
}

// An ent is one thing a case puts on disk, its path relative to the test's
// root (which holds staging/, logs/ and outside/).
type ent struct {
	path string
	kind byte          // 'd' a folder holding a 1000-byte file, 'f' a 100-byte file, 'l' a link to target
	to   string        // the link's target, relative to root
	age  time.Duration // how long ago its mtime is set to; zero leaves it now
}

func dir(path string, age time.Duration) ent  { return ent{path: path, kind: 'd', age: age} }
func file(path string, age time.Duration) ent { return ent{path: path, kind: 'f', age: age} }
func link(path, to string, age time.Duration) ent {
	return ent{path: path, kind: 'l', to: to, age: age}
}

// build makes ents under root, then sets their ages (all at the end: making an
// entry changes its folder's mtime, setting a child's time does not).
func build(t *testing.T, root string, ents []ent) {
	t.Helper()
	for _, e := range ents {
		p := filepath.Join(root, e.path)
		if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
			t.Fatal(err)
		}
		var err error
		switch e.kind {
		case 'd':
			if err = os.Mkdir(p, 0o750); err == nil {
				err = os.WriteFile(filepath.Join(p, "video.mp4"), make([]byte, 1000), 0o600)
			}
		case 'f':
			err = os.WriteFile(p, make([]byte, 100), 0o600)
		case 'l':
			err = os.Symlink(filepath.Join(root, e.to), p)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now()
	for _, e := range ents {
		if e.age == 0 {
			continue
		}
		at := unix.NsecToTimeval(now.Add(-e.age).UnixNano())
		// Lutimes: a link's own time, not its target's (os.Chtimes follows links).
		if err := unix.Lutimes(filepath.Join(root, e.path), []unix.Timeval{at, at}); err != nil {
			t.Fatal(err)
		}
	}
}

func exists(t *testing.T, path string) bool {
	t.Helper()
	_, err := os.Lstat(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return err == nil
}

// check fails the test for each path of gone still there and each of kept missing.
func check(t *testing.T, root string, gone, kept []string) {
	t.Helper()
	for _, p := range gone {
		if exists(t, filepath.Join(root, p)) {
			t.Errorf("%s is still there, want it removed", p)
		}
	}
	for _, p := range kept {
		if !exists(t, filepath.Join(root, p)) {
			t.Errorf("%s was removed, want it kept", p)
		}
	}
}

func running(ids ...int64) func(int64) bool {
	return func(id int64) bool { return slices.Contains(ids, id) }
}

const (
	day = 24 * time.Hour
	old = 500 * time.Hour // far past keep_failed
)

// The staging folders: which go, which stay, with keep_failed at its default of
// 72 hours.
func TestPassStagingFolders(t *testing.T) {
	cases := []struct {
		name    string
		ents    []ent
		rows    map[int64]string
		running []int64
		gone    []string
		kept    []string
	}{{
		name: "failed, past keep_failed: removed",
		ents: []ent{dir("staging/task-1", 73*time.Hour)},
		rows: map[int64]string{1: store.StatusFailed},
		gone: []string{"staging/task-1"},
	}, {
		name: "failed, within keep_failed: kept",
		ents: []ent{dir("staging/task-2", 71*time.Hour)},
		rows: map[int64]string{2: store.StatusFailed},
		kept: []string{"staging/task-2/video.mp4"},
	}, {
		name: "completed (on another host): removed at once",
		ents: []ent{dir("staging/task-3", time.Minute)},
		rows: map[int64]string{3: store.StatusCompleted},
		gone: []string{"staging/task-3"},
	}, {
		name:    "completed but running here: kept",
		ents:    []ent{dir("staging/task-4", old)},
		rows:    map[int64]string{4: store.StatusCompleted},
		running: []int64{4},
		kept:    []string{"staging/task-4/video.mp4"},
	}, {
		name: "failed but running here (a retry): kept",
		ents: []ent{dir("staging/task-41", old)}, rows: map[int64]string{41: store.StatusFailed},
		running: []int64{41},
		kept:    []string{"staging/task-41/video.mp4"},
	}, {
		name: "pending, processing, downloading, uploading: kept however old",
		ents: []ent{dir("staging/task-5", old), dir("staging/task-6", old), dir("staging/task-7", old), dir("staging/task-8", old)},
		rows: map[int64]string{5: store.StatusPending, 6: store.StatusProcessing, 7: store.StatusDownloading, 8: store.StatusUploading},
		kept: []string{"staging/task-5", "staging/task-6", "staging/task-7", "staging/task-8"},
	}, {
		name: "no row: kept until keep_failed, then removed",
		ents: []ent{dir("staging/task-9", 71*time.Hour), dir("staging/task-10", 73*time.Hour)},
		gone: []string{"staging/task-10"},
		kept: []string{"staging/task-9/video.mp4"},
	}, {
		name: "anything but a task-<id> folder directly under staging: untouched",
		ents: []ent{
			dir("staging/task-abc", old), dir("staging/task-007", old), dir("staging/task-0", old), dir("staging/task-", old),
			dir("staging/TASK-14", old), dir("staging/tasks", old), dir("staging/other/task-11", old),
			file("staging/task-12", old), file("staging/task-13.part", old),
		},
		// Rows that would remove each of them, were it taken for a task folder.
		rows: map[int64]string{7: store.StatusCompleted, 11: store.StatusCompleted, 12: store.StatusCompleted,
			13: store.StatusCompleted, 14: store.StatusCompleted},
		kept: []string{"staging/task-abc", "staging/task-007", "staging/task-0", "staging/task-", "staging/TASK-14",
			"staging/tasks", "staging/other/task-11/video.mp4", "staging/task-12", "staging/task-13.part"},
	}, {
		name: "a link named like a folder is removed as a link; links inside a folder are not followed",
		ents: []ent{
			dir("outside/course", 0), dir("outside/keep", 0),
			link("staging/task-15", "outside/course", old),
			dir("staging/task-16", old), link("staging/task-16/escape", "outside/keep", 0),
		},
		rows: map[int64]string{15: store.StatusFailed, 16: store.StatusCompleted},
		gone: []string{"staging/task-15", "staging/task-16"},
		kept: []string{"outside/course/video.mp4", "outside/keep/video.mp4"},
	}, {
		name: "task-<id>.<suffix> files go with their folder, and only then",
		ents: []ent{
			dir("staging/task-18", old), file("staging/task-18.lock", 0), file("staging/task-18.cookies.txt", 0),
			dir("staging/task-18.d", old), link("staging/task-18.link", "outside/keep", 0), dir("outside/keep", 0),
			dir("staging/task-19", time.Hour), file("staging/task-19.lock", old),
			file("staging/task-20.marker", old),
		},
		rows: map[int64]string{18: store.StatusFailed, 19: store.StatusFailed, 20: store.StatusCompleted},
		gone: []string{"staging/task-18", "staging/task-18.lock", "staging/task-18.cookies.txt", "staging/task-18.link"},
		kept: []string{"staging/task-18.d/video.mp4", "outside/keep/video.mp4", "staging/task-19", "staging/task-19.lock",
			"staging/task-20.marker"},
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			build(t, root, c.ents)
			rows := &fakeRows{statuses: c.rows}
			j := NewJanitor(JanitorParams{StagingDir: filepath.Join(root, "staging"), Rows: rows,
				Running: running(c.running...), Log: zaptest.NewLogger(t)})
			r, err := j.Pass(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			check(t, root, c.gone, c.kept)
			if len(rows.calls) > 1 {
				t.Errorf("Rows asked %d times in one pass (%v), want once for all ids", len(rows.calls), rows.calls)
			}
			for _, call := range rows.calls {
				for _, id := range c.running {
					if slices.Contains(call, id) {
						t.Errorf("Rows asked for task %d, which runs here", id)
					}
				}
			}
			if folders := countPrefix(c.gone, "staging/task-") - countMarkers(c.gone); r.Folders != folders {
				t.Errorf("Report.Folders = %d, want %d", r.Folders, folders)
			}
		})
	}
}

func countPrefix(paths []string, prefix string) int {
	n := 0
	for _, p := range paths {
		if strings.HasPrefix(p, prefix) {
			n++
		}
	}
	return n
}

func countMarkers(paths []string) int {
	n := 0
	for _, p := range paths {
		if strings.Contains(filepath.Base(p), ".") {
			n++
		}
	}
	return n
}

// The task logs: those unchanged for longer than logs.max_age_days go, each part
// judged by its own mtime, except a running task's; other files stay.
func TestPassTaskLogs(t *testing.T) {
	cases := []struct {
		name    string
		maxAge  time.Duration
		ents    []ent
		running []int64
		gone    []string
		kept    []string
	}{{
		name:   "older than max age: removed, rotated and compressed parts too",
		maxAge: 30 * day,
		ents:   []ent{file("logs/tasks/task-1.log", 31*day), file("logs/tasks/task-1.log.1", 31*day), file("logs/tasks/task-1.log.2.gz", 31*day)},
		gone:   []string{"logs/tasks/task-1.log", "logs/tasks/task-1.log.1", "logs/tasks/task-1.log.2.gz"},
	}, {
		name:   "younger: kept, while an older part goes",
		maxAge: 30 * day,
		ents:   []ent{file("logs/tasks/task-2.log", 29*day), file("logs/tasks/task-2.log.1", 31*day)},
		gone:   []string{"logs/tasks/task-2.log.1"},
		kept:   []string{"logs/tasks/task-2.log"},
	}, {
		name:    "a running task's: kept",
		maxAge:  30 * day,
		ents:    []ent{file("logs/tasks/task-3.log", 40*day), file("logs/tasks/task-3.log.1.gz", 40*day)},
		running: []int64{3},
		kept:    []string{"logs/tasks/task-3.log", "logs/tasks/task-3.log.1.gz"},
	}, {
		name:   "not a task log: untouched",
		maxAge: 30 * day,
		ents: []ent{
			file("logs/tasks/notes.txt", 40*day), file("logs/tasks/task-4.txt", 40*day), file("logs/tasks/task-x.log", 40*day),
			file("logs/tasks/task-05.log", 40*day), file("logs/tasks/task-6.log.gz", 40*day), file("logs/tasks/task-7.logx", 40*day),
			file("logs/tasks/task-8.log.1.zip", 40*day), dir("logs/tasks/task-9.log", 40*day),
			file("outside/task-10.log", 0), link("logs/tasks/task-10.log", "outside/task-10.log", 40*day),
			file("logs/task-11.log", 40*day), file("logs/worker-out.log", 40*day),
		},
		kept: []string{"logs/tasks/notes.txt", "logs/tasks/task-4.txt", "logs/tasks/task-x.log", "logs/tasks/task-05.log",
			"logs/tasks/task-6.log.gz", "logs/tasks/task-7.logx", "logs/tasks/task-8.log.1.zip", "logs/tasks/task-9.log/video.mp4",
			"logs/tasks/task-10.log", "outside/task-10.log", "logs/task-11.log", "logs/worker-out.log"},
	}, {
		name:   "max age zero: kept whatever their age",
		maxAge: 0,
		ents:   []ent{file("logs/tasks/task-12.log", 400*day), file("logs/tasks/task-12.log.3.gz", 400*day)},
		kept:   []string{"logs/tasks/task-12.log", "logs/tasks/task-12.log.3.gz"},
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			build(t, root, c.ents)
			// No staging folder at all: the folder sweep has nothing to do.
			j := NewJanitor(JanitorParams{StagingDir: filepath.Join(root, "staging"), LogsDir: filepath.Join(root, "logs"),
				Rows: &fakeRows{}, Running: running(c.running...), LogMaxAge: c.maxAge, Log: zaptest.NewLogger(t)})
			r, err := j.Pass(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			check(t, root, c.gone, c.kept)
			if r.Logs != len(c.gone) || r.Bytes != 100*int64(len(c.gone)) {
				t.Errorf("Report = %+v, want %d logs of 100 bytes each", r, len(c.gone))
			}
		})
	}
}

// A pass reports what it removed and logs each removal at info with the task
// and the path; the next pass finds nothing to do.
func TestPassReportsAndLogsEachRemoval(t *testing.T) {
	root := t.TempDir()
	build(t, root, []ent{
		dir("staging/task-1", old), file("staging/task-1/parts/a.part", 0), file("staging/task-1.lock", 0),
		file("logs/tasks/task-1.log", 40*day), dir("staging/task-2", time.Hour),
	})
	core, logs := observer.New(zap.InfoLevel)
	rows := &fakeRows{statuses: map[int64]string{1: store.StatusFailed, 2: store.StatusProcessing}}
	j := NewJanitor(JanitorParams{StagingDir: filepath.Join(root, "staging"), LogsDir: filepath.Join(root, "logs"),
		Rows: rows, LogMaxAge: 30 * day, Log: zap.New(core)})

	r, err := j.Pass(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := Report{Folders: 1, Markers: 1, Logs: 1, Bytes: 1000 + 100 + 100 + 100}
	if r != want {
		t.Fatalf("Report = %+v, want %+v", r, want)
	}
	if len(rows.calls) != 1 || !slices.Equal(rows.calls[0], []int64{1, 2}) {
		t.Fatalf("Rows calls = %v, want one for [1 2]", rows.calls)
	}
	wantLines := map[string]string{
		"staging folder removed": filepath.Join(root, "staging/task-1"),
		"staging marker removed": filepath.Join(root, "staging/task-1.lock"),
		"task log removed":       filepath.Join(root, "logs/tasks/task-1.log"),
	}
	if logs.Len() != len(wantLines) {
		t.Errorf("%d log lines, want %d: %v", logs.Len(), len(wantLines), logs.All())
	}
	for _, e := range logs.All() {
		f := e.ContextMap()
		if e.Level != zap.InfoLevel || f["task_id"] != int64(1) || f["path"] != wantLines[e.Message] {
			t.Errorf("log line %q at %s with %v, want info with task_id 1 and path %s", e.Message, e.Level, f, wantLines[e.Message])
		}
	}

	r, err = j.Pass(context.Background())
	if err != nil || r != (Report{}) {
		t.Fatalf("second pass = %+v, %v, want nothing removed", r, err)
	}
}

// When the statuses cannot be read no folder is judged, the logs are still
// swept, and the pass says why it failed.
func TestPassWithoutStatusesKeepsFolders(t *testing.T) {
	root := t.TempDir()
	build(t, root, []ent{dir("staging/task-1", old), file("logs/tasks/task-1.log", 40*day)})
	j := NewJanitor(JanitorParams{StagingDir: filepath.Join(root, "staging"), LogsDir: filepath.Join(root, "logs"),
		Rows: &fakeRows{err: errors.New("mysql away")}, LogMaxAge: 30 * day})
	r, err := j.Pass(context.Background())
	if err == nil || !strings.Contains(err.Error(), "mysql away") {
		t.Fatalf("Pass error = %v, want the Rows error", err)
	}
	check(t, root, []string{"logs/tasks/task-1.log"}, []string{"staging/task-1/video.mp4"})
	if r != (Report{Logs: 1, Bytes: 100}) {
		t.Fatalf("Report = %+v", r)
	}
}

// Run passes at once, without a failure line for a pass that worked, and
// returns nil when its context ends.
func TestRunPassesAtOnce(t *testing.T) {
	root := t.TempDir()
	build(t, root, []ent{dir("staging/task-1", time.Minute), dir("staging/task-2", time.Minute)})
	core, logs := observer.New(zap.InfoLevel)
	rows := &fakeRows{statuses: map[int64]string{1: store.StatusCompleted}}
	j := NewJanitor(JanitorParams{StagingDir: filepath.Join(root, "staging"), Rows: rows, Log: zap.New(core), Every: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- j.Run(ctx) }()
	testutil.Eventually(t, 5*time.Second, func() bool { return !exists(t, filepath.Join(root, "staging/task-1")) },
		"the first pass, due at once, removes a completed task's folder")
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run returned %v after its context ended, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	if n := logs.FilterMessage("staging janitor failing").Len(); n != 0 {
		t.Fatalf("%d failure lines after a pass that worked", n)
	}
	check(t, root, nil, []string{"staging/task-2/video.mp4"})
}
