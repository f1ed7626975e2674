package pipeline

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/coursedl/worker/internal/download"
	"github.com/coursedl/worker/internal/lifecycle"
	"github.com/coursedl/worker/internal/metrics"
	"github.com/coursedl/worker/internal/notify"
	"github.com/coursedl/worker/internal/process"
	"github.com/coursedl/worker/internal/progress"
	"github.com/coursedl/worker/internal/queue"
	"github.com/coursedl/worker/internal/store"
	"github.com/coursedl/worker/internal/upload"
)

// step is one thing a scripted downloader does: write a file (a lesson, as
// yt-dlp does: a ".part" first, then renamed), print a line, or wait.
type step struct {
	write    string // a file to make, relative to the task folder
	keepPart bool   // leave the ".part" of write, not renamed
	say      string // a line to print on stdout; "@" + a relative path prints its absolute path
	link     string // a symlink to make, relative to the task folder, to the file outside
	wait     func(ctx context.Context) error
}

// scripted is a downloader that runs steps in the task folder. outside is a
// file outside every task folder, for the steps to announce or link to.
func scripted(outside string, steps ...step) func(context.Context, download.Job, func(process.Stream, [][]byte)) (process.Result, error) {
	return func(ctx context.Context, j download.Job, onLines func(process.Stream, [][]byte)) (process.Result, error) {
		for _, s := range steps {
			if err := s.run(ctx, j.Dir, outside, onLines); err != nil {
				return process.Result{}, err
			}
		}
		onLines(process.Stdout, [][]byte{[]byte("[download] 100% of 5.00B in 00:00:00 at 5.00B/s")})
		return process.Result{Duration: 10 * time.Millisecond}, nil
	}
}

func (s step) run(ctx context.Context, dir, outside string, onLines func(process.Stream, [][]byte)) error {
	if s.write != "" {
		p := filepath.Join(dir, filepath.FromSlash(s.write))
		if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
			return err
		}
		if err := os.WriteFile(p+".part", []byte("lesson "+s.write), 0o640); err != nil {
			return err
		}
		if !s.keepPart {
			if err := os.Rename(p+".part", p); err != nil {
				return err
			}
		}
	}
	if s.link != "" {
		if err := os.Symlink(outside, filepath.Join(dir, filepath.FromSlash(s.link))); err != nil {
			return err
		}
	}
	if s.say != "" {
		line := s.say
		if rel, ok := strings.CutPrefix(line, "@"); ok {
			line = filepath.Join(dir, filepath.FromSlash(rel))
		}
		if line == "OUTSIDE" {
			line = outside
		}
		lines := [][]byte{[]byte("[download] Destination: x")}
		for _, l := range strings.Split(line, "\n") {
			lines = append(lines, []byte(l))
		}
		onLines(process.Stdout, lines)
	}
	if s.wait != nil {
		return s.wait(ctx)
	}
	return nil
}

// lesson writes rel and announces it.
func lesson(rel string) step { return step{write: rel, say: "@" + rel} }

// streaming sets the fixture up to move announced files at once, and returns
// a file outside the task folder.
func streaming(t *testing.T, f *fixture) string {
	t.Helper()
	f.p.Announce, _ = download.ParseAnnounce(download.AnnouncePath)
	f.p.UploadParallel, f.p.UploadBackoff = 2, time.Millisecond
	outside := filepath.Join(t.TempDir(), "secret.txt")
	if err := os.WriteFile(outside, []byte("not the buyer's"), 0o600); err != nil {
		t.Fatal(err)
	}
	return outside
}

// untilMoved is a step that waits until the fake uploader has moved a file
// whose path ends in name: the downloader goes on only once it has.
func untilMoved(f *fixture, name string) step {
	return step{wait: func(ctx context.Context) error {
		deadline := time.After(10 * time.Second)
		for {
			if slices.ContainsFunc(f.up.moves(), func(b []string) bool {
				return slices.ContainsFunc(b, func(p string) bool { return strings.HasSuffix(p, name) })
			}) {
				return nil
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-deadline:
				return errors.New(name + " never moved while the download went on")
			case <-time.After(2 * time.Millisecond):
			}
		}
	}}
}

// tree lists the files under the fake's drive, slash-separated, sorted.
func tree(t *testing.T, f *fixture) []string {
	t.Helper()
	files, err := upload.Files(f.up.drive)
	if err != nil {
		t.Fatal(err)
	}
	for i := range files {
		files[i] = filepath.ToSlash(files[i])
	}
	sort.Strings(files)
	return files
}

// wholeMove runs the same downloader as a task whose files all move at the
// end (download.announce none) and returns what its destination holds: the
// layout the streamed upload must end with.
func wholeMove(t *testing.T, steps ...step) []string {
	t.Helper()
	f := newFixture(t)
	var plain []step
	for _, s := range steps {
		s.wait = nil
		plain = append(plain, s)
	}
	f.down.run = scripted(filepath.Join(t.TempDir(), "secret.txt"), plain...)
	if res := f.p.Handle(context.Background(), goodJob); res.Outcome != queue.Ack || f.store.status != store.StatusCompleted {
		t.Fatalf("whole move: %+v, row %q %q", res, f.store.status, f.store.reason)
	}
	if n := len(f.up.moves()); n != 0 {
		t.Fatalf("whole move moved files early: %d batches", n)
	}
	return tree(t, f)
}

var streamedEvents = []string{lifecycle.JobReceived, lifecycle.EnrollConfirmed, lifecycle.DownloadStart, lifecycle.DownloadSuccess,
	lifecycle.UploadSuccess, lifecycle.TaskCompleted}

var completedStreamed = outcome{result: queue.Ack, row: store.StatusCompleted, final: progress.StageCompleted, hook: notify.TypeCompleted,
	ended: metrics.ResultCompleted, msg: "task completed", events: streamedEvents}

func TestHandleStreams(t *testing.T) {
	cases := []struct {
		name  string
		steps func(f *fixture) []step
		set   func(f *fixture)
		want  outcome
		// the destination, when it is not what the whole move gives
		check func(t *testing.T, f *fixture)
	}{{
		// The downloader goes on to lesson 2 only once lesson 1 is at the
		// destination: the upload overlaps the download.
		name: "lessons move while the download goes on",
		steps: func(f *fixture) []step {
			return []step{lesson("Go Course/01 intro.mp4"), untilMoved(f, "01 intro.mp4"),
				lesson("Go Course/ch 2/02 next.mp4"), lesson("Go Course/ch 2/03 last.mp4"), {write: "Go Course/notes.txt"}}
		},
		want: completedStreamed,
		check: func(t *testing.T, f *fixture) {
			ev := f.outbox.releasedEvents()[0]
			if ev.Folder != "Go Course" || f.up.req.Folder != "Go Course" {
				t.Errorf("webhook folder %q, final upload %+v", ev.Folder, f.up.req)
			}
			log := f.taskLog(t)
			for _, want := range []string{`uploaded "Go Course/01 intro.mp4" to drive:`, `uploaded "Go Course/ch 2/03 last.mp4"`, `"moving"`} {
				if !strings.Contains(log, want) {
					t.Errorf("task log lacks %q:\n%s", want, log)
				}
			}
			if want := []string{store.StatusProcessing, store.StatusDownloading, store.StatusUploading}; !slices.Equal(f.store.statuses, want) {
				t.Errorf("statuses %v", f.store.statuses)
			}
		},
	}, {
		// Out of order, outside the folder, partial, a symlink, a folder, a
		// path through a symlink: each refused with a line, the good files
		// moved, the rest as a whole move would (never a partial file, never
		// what a link points to).
		name: "refusals",
		steps: func(*fixture) []step {
			return []step{
				{write: "Go Course/01.mp4"}, {write: "Go Course/02.mp4"},
				{say: "@Go Course/02.mp4"}, {say: "@Go Course/01.mp4"},
				{say: "OUTSIDE"}, {write: "../stray.mp4", say: "../stray.mp4"},
				{write: "Go Course/03.mp4", keepPart: true, say: "@Go Course/03.mp4.part"},
				{link: "Go Course/04.mp4", say: "@Go Course/04.mp4"},
				{say: "@Go Course"},
				{say: "@.download-archive", write: ".download-archive"},
				{say: "a line that names no file"},
			}
		},
		want: completedStreamed,
		check: func(t *testing.T, f *fixture) {
			log := f.taskLog(t)
			for _, want := range []string{
				`secret.txt" refused: outside the task folder`,
				`"../stray.mp4" refused: outside the task folder`,
				`03.mp4.part" refused: a partial file`,
				`04.mp4" refused: a symlink, not a regular file`,
				`Go Course" refused: a folder, not a regular file`,
				`.download-archive" refused: a file of the worker's own`,
			} {
				if !strings.Contains(log, want) {
					t.Errorf("task log lacks %q:\n%s", want, log)
				}
			}
			if strings.Contains(log, `no file" refused`) {
				t.Errorf("a plain line was taken for a path:\n%s", log)
			}
			var moved []string
			for _, b := range f.up.moves() {
				moved = append(moved, b...)
			}
			if !slices.Equal(moved, []string{"02.mp4", "01.mp4"}) {
				t.Errorf("moved early %q, want 02.mp4, then 01.mp4", moved)
			}
		},
	}, {
		name: "rclone fails once on a lesson",
		steps: func(*fixture) []step {
			return []step{lesson("Go Course/01.mp4"), lesson("Go Course/02.mp4"), lesson("Go Course/03.mp4")}
		},
		set: func(f *fixture) {
			f.up.moveErr, f.up.failOn, f.up.times = &upload.Error{Op: "move", ExitCode: 5, Err: errors.New("exit status 5")}, "02.mp4", 1
		},
		want: completedStreamed,
		check: func(t *testing.T, f *fixture) {
			tries := 0
			for _, b := range f.up.moves() {
				if slices.Contains(b, "02.mp4") {
					tries++
				}
			}
			if tries != 2 {
				t.Errorf("02.mp4 in %d moves: %q", tries, f.up.moves())
			}
			if strings.Contains(f.taskLog(t), "did not succeed") {
				t.Error("a lesson left for the end after one temporary failure")
			}
		},
	}, {
		// A lesson rclone keeps failing on waits for the move at the end,
		// which takes it.
		name: "rclone fails on a lesson every time",
		steps: func(*fixture) []step {
			return []step{lesson("Go Course/01.mp4"), lesson("Go Course/02.mp4")}
		},
		set: func(f *fixture) {
			f.up.moveErr, f.up.failOn = &upload.Error{Op: "move", ExitCode: 7, Err: errors.New("exit status 7")}, "02.mp4"
		},
		want: completedStreamed,
		check: func(t *testing.T, f *fixture) {
			if log := f.taskLog(t); !strings.Contains(log, `upload of "Go Course/02.mp4" did not succeed: rclone move: exit status 7; it waits for the upload at the end`) {
				t.Errorf("task log:\n%s", log)
			}
		},
	}, {
		// After a lesson went under "Go Course", the downloader makes a second
		// top-level entry: {folder} is task-17 after all, and the lesson moves
		// within the destination to where the whole move puts it.
		name: "a second top-level entry after the first lesson",
		steps: func(f *fixture) []step {
			return []step{lesson("Go Course/01.mp4"), untilMoved(f, "01.mp4"), lesson("Extra/notes.mp4")}
		},
		want: completedStreamed,
		check: func(t *testing.T, f *fixture) {
			if ev := f.outbox.releasedEvents()[0]; ev.Folder != "task-17" {
				t.Errorf("webhook folder %q", ev.Folder)
			}
			if log := f.taskLog(t); !strings.Contains(log, `the folder is "task-17" after all: 1 files moved early go there`) {
				t.Errorf("task log:\n%s", log)
			}
		},
	}, {
		name: "a lesson at the top: the task's folder for good",
		steps: func(*fixture) []step {
			return []step{lesson("intro.mp4"), lesson("Go Course/01.mp4")}
		},
		want: completedStreamed,
	}, {
		name: "files under a hidden folder wait for the end",
		steps: func(*fixture) []step {
			return []step{lesson(".meta/info.json"), lesson("Go Course/01.mp4")}
		},
		want: completedStreamed,
		check: func(t *testing.T, f *fixture) {
			if log := f.taskLog(t); !strings.Contains(log, `".meta/info.json" is outside the course's folder; it waits for the upload at the end`) {
				t.Errorf("task log:\n%s", log)
			}
		},
	}, {
		name: "a downloader that announces nothing",
		steps: func(*fixture) []step {
			return []step{{write: "Go Course/01.mp4"}, {write: "Go Course/02.mp4"}}
		},
		want: completedStreamed,
		check: func(t *testing.T, f *fixture) {
			if n := len(f.up.moves()); n != 0 {
				t.Errorf("%d early moves", n)
			}
		},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var want []string
			handleCase(t, "", func(t *testing.T, f *fixture) {
				outside := streaming(t, f)
				steps := tc.steps(f)
				want = wholeMove(t, steps...)
				f.down.run = scripted(outside, steps...)
				if tc.set != nil {
					tc.set(f)
				}
			}, tc.want, func(t *testing.T, f *fixture) {
				if got := tree(t, f); !slices.Equal(got, want) {
					t.Errorf("destination %q, want %q as the whole move gives", got, want)
				}
				for _, b := range tree(t, f) {
					if strings.Contains(b, "secret") || download.Partial(filepath.Base(b)) || strings.HasSuffix(b, download.ArchiveName) {
						t.Errorf("uploaded %q", b)
					}
				}
				if tc.check != nil {
					tc.check(t, f)
				}
			})
		})
	}
}

// Percent never goes back within a stage: downloading's is of the course
// when the downloader says which item it is on, and the file's own until
// then; uploading's counts the lessons moved early as done.
func TestStreamedProgress(t *testing.T) {
	f := newFixture(t)
	outside := streaming(t, f)
	pct := func(item int, p string) step {
		return step{say: "[download] Downloading item " + item2s(item) + " of 3\n[download]  " + p + "% of 5.00B at 1.00B/s ETA 00:01"}
	}
	f.down.run = scripted(outside,
		step{say: "[download]  50.0% of 5.00B at 1.00B/s ETA 00:01"},
		pct(1, "50.0"), lesson("Go Course/01.mp4"), pct(2, "10.0"), pct(2, "100.0"), lesson("Go Course/02.mp4"),
		pct(3, "0.0"), step{say: "[download]  40.0% of 5.00B at 1.00B/s ETA 00:01"}, lesson("Go Course/03.mp4"))
	checkOutcome(t, f, f.p.Handle(context.Background(), goodJob), completedStreamed)
	tp := f.taskProgress()
	for stage, ps := range tp.percents {
		if !slices.IsSorted(ps) {
			t.Errorf("%s: percent went back: %v", stage, ps)
		}
	}
	// 50 of the first file; item 1 at 50% (16.7) and item 2 at 10% (36.7)
	// would go back: sent without a percent; the last line says 100%.
	if want := []float64{50, 200.0 / 3, 200.0 / 3, 80, 100}; !slices.Equal(tp.percents[progress.StageDownloading], want) {
		t.Errorf("downloading percents %v, want %v", tp.percents[progress.StageDownloading], want)
	}
	up := tp.percents[progress.StageUploading]
	if len(up) == 0 || up[len(up)-1] != 100 {
		t.Errorf("uploading percents %v, want them to end at 100", up)
	}
	if want := []string{progress.StageWaitingEnrollment, progress.StageDownloading, progress.StageUploading, progress.StageNotifying}; !slices.Equal(tp.stages, want) {
		t.Errorf("stages %v, want %v", tp.stages, want)
	}
	// Lessons moved early: uploading shows at once, while the last moves end.
	if !slices.Contains(tp.own, progress.StageUploading) {
		t.Errorf("events of a stage alone %v, want uploading's", tp.own)
	}
}

func item2s(i int) string { return string(rune('0' + i)) }

// saveState writes r as the task's state, as an earlier run would have.
func saveState(t *testing.T, f *fixture, r resume) {
	t.Helper()
	s := &state{path: statePath(f), r: r}
	if err := s.update(func(*resume) {}); err != nil {
		t.Fatal(err)
	}
}

// earlier is the state of a run of a "Go Course" cut short: 01 moved, 02's
// move started (rclone finished it: it is at the destination, gone from the
// folder), 03's move started (still in the folder), as the files are on disk.
func earlier(t *testing.T, f *fixture, downloaded bool) {
	t.Helper()
	dest := f.up.Destination(upload.Request{TaskID: taskID, Folder: "Go Course"})
	r := resume{Downloaded: downloaded, Layout: &layout{Top: "Go Course", Folder: "Go Course"}, Files: map[string]*shipped{
		"Go Course/01.mp4": {Size: 5, Dest: dest, Sub: "01.mp4", Moved: true},
		"Go Course/02.mp4": {Size: 5, Dest: dest, Sub: "02.mp4"},
		"Go Course/03.mp4": {Size: 5, Dest: dest, Sub: "03.mp4"},
	}}
	saveState(t, f, r)
	for _, p := range []string{filepath.Join(f.up.drive, "Go Course", "01.mp4"), filepath.Join(f.up.drive, "Go Course", "02.mp4"),
		filepath.Join(dir(f), "Go Course", "03.mp4"), filepath.Join(dir(f), download.ArchiveName)} {
		if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("lesson"), 0o640); err != nil {
			t.Fatal(err)
		}
	}
}

// A run after a crash moves neither a lesson moved before nor one whose move
// rclone finished unrecorded (found at the destination); it moves the one
// still in the folder, and the downloader's archive keeps it from
// downloading the first three again.
func TestHandleStreamResumes(t *testing.T) {
	cases := []struct {
		name       string
		downloaded bool
		set        func(t *testing.T, f *fixture)
		want       outcome
		moved      []string // moved by this run, in any order
		log        string
	}{{
		name: "after a crash mid-download",
		want: completedStreamed, moved: []string{"03.mp4", "04.mp4"},
		log: `"Go Course/02.mp4", whose upload an earlier run started, is at the destination`,
	}, {
		name: "after a crash once downloaded", downloaded: true,
		want: outcome{result: queue.Ack, row: store.StatusCompleted, final: progress.StageCompleted, hook: notify.TypeCompleted,
			ended: metrics.ResultCompleted, msg: "task completed",
			events: []string{lifecycle.JobReceived, lifecycle.EnrollConfirmed, lifecycle.UploadSuccess, lifecycle.TaskCompleted}},
		log: "download done by an earlier run",
	}, {
		// 02 is neither here nor there: the archive goes and the downloader
		// runs again, even though the download was done.
		name: "a lesson lost", downloaded: true,
		set: func(t *testing.T, f *fixture) {
			if err := os.Remove(filepath.Join(f.up.drive, "Go Course", "02.mp4")); err != nil {
				t.Fatal(err)
			}
		},
		want: completedStreamed, moved: []string{"03.mp4", "04.mp4", "02.mp4"},
		log: `"Go Course/02.mp4", whose upload an earlier run started, is neither in the task folder nor at the destination: downloading again`,
	}, {
		name: "the destination cannot be asked",
		set: func(_ *testing.T, f *fixture) {
			f.up.hasErr = &upload.Error{Op: "lsjson", ExitCode: 5, Err: errors.New("exit status 5")}
		},
		want: outcome{result: queue.Retry, delay: backoffDelay, row: store.StatusProcessing, tried: 1, ended: metrics.ResultRequeued,
			events: []string{lifecycle.JobReceived, lifecycle.EnrollConfirmed, lifecycle.TaskRetry}},
		log: `upload failed: is "Go Course/02.mp4" at the destination: rclone lsjson: exit status 5`,
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			handleCase(t, "", func(t *testing.T, f *fixture) {
				outside := streaming(t, f)
				earlier(t, f, tc.downloaded)
				// The downloader as yt-dlp with its archive: a lesson listed
				// there is not downloaded; without it, 02 comes again.
				f.down.run = func(ctx context.Context, j download.Job, onLines func(process.Stream, [][]byte)) (process.Result, error) {
					steps := []step{lesson("Go Course/04.mp4")}
					if _, err := os.Stat(filepath.Join(j.Dir, download.ArchiveName)); err != nil {
						steps = append(steps, lesson("Go Course/02.mp4"))
					}
					return scripted(outside, steps...)(ctx, j, onLines)
				}
				if tc.set != nil {
					tc.set(t, f)
				}
			}, tc.want, func(t *testing.T, f *fixture) {
				var moved []string
				for _, b := range f.up.moves() {
					moved = append(moved, b...)
				}
				if !sameSet(moved, tc.moved) {
					t.Errorf("moved early %q, want %q", moved, tc.moved)
				}
				if log := f.taskLog(t); !strings.Contains(log, tc.log) {
					t.Errorf("task log lacks %q:\n%s", tc.log, log)
				}
				if tc.want.result != queue.Ack {
					return
				}
				want := []string{"Go Course/01.mp4", "Go Course/02.mp4", "Go Course/03.mp4"}
				if tc.moved != nil {
					want = append(want, "Go Course/04.mp4")
				}
				if got := tree(t, f); !slices.Equal(got, want) {
					t.Errorf("destination %q, want %q", got, want)
				}
			})
		})
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// A quota met while the download goes on: the lesson waits, the move at the
// end meets the quota too and the task is deferred; the next run moves what
// is left without moving the first lesson again.
func TestHandleStreamQuota(t *testing.T) {
	f := newFixture(t)
	outside := streaming(t, f)
	quota := &upload.Error{Op: "move", ExitCode: 7, Limit: "uploadLimitExceeded", Until: time.Now().Add(time.Hour), Err: errors.New("exit status 7")}
	f.down.run = scripted(outside, lesson("Go Course/01.mp4"), untilMoved(f, "01.mp4"), lesson("Go Course/02.mp4"))
	f.up.moveErr, f.up.failOn = quota, "02.mp4"
	f.up.err = quota
	res := f.p.Handle(context.Background(), goodJob)
	if res.Outcome != queue.Retry || f.store.status != store.StatusProcessing {
		t.Fatalf("result %+v, row %q", res, f.store.status)
	}
	checkDeferred(t, f, reasonUploadQuota)
	if got := f.up.moves(); len(got) != 2 {
		t.Errorf("moves %q: 02.mp4 tried again after a quota error", got)
	}
	st := readState(t, f)
	if !st.Downloaded || !st.Files["Go Course/01.mp4"].Moved || st.Files["Go Course/02.mp4"].Moved {
		t.Errorf("state %+v", st)
	}

	f.nextRun()
	f.up.err, f.up.moveErr = nil, nil
	checkOutcome(t, f, f.p.Handle(context.Background(), goodJob), outcome{result: queue.Ack, row: store.StatusCompleted,
		final: progress.StageCompleted, hook: notify.TypeCompleted, ended: metrics.ResultCompleted, msg: "task completed",
		events: []string{lifecycle.JobReceived, lifecycle.EnrollConfirmed, lifecycle.UploadSuccess, lifecycle.TaskCompleted}})
	if got := tree(t, f); !slices.Equal(got, []string{"Go Course/01.mp4", "Go Course/02.mp4"}) {
		t.Errorf("destination %q", got)
	}
	if n := len(f.up.moves()); n != 2 || f.down.calls != 1 {
		t.Errorf("%d early moves, %d downloads over both runs", n, f.down.calls)
	}
}

// The worker stopping mid-download: the lesson moved stays recorded, and
// the next run does not move it again.
func TestHandleStreamStopped(t *testing.T) {
	f := newFixture(t)
	outside := streaming(t, f)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f.down.run = scripted(outside, lesson("Go Course/01.mp4"), untilMoved(f, "01.mp4"),
		step{wait: func(ctx context.Context) error { cancel(); <-ctx.Done(); return ctx.Err() }})
	if res := f.p.Handle(ctx, goodJob); res.Outcome != queue.Requeue {
		t.Fatalf("result %+v", res)
	}
	if st := readState(t, f); st.Downloaded || !st.Files["Go Course/01.mp4"].Moved {
		t.Errorf("state %+v", st)
	}
	f.nextRun()
	f.down.run = scripted(outside, lesson("Go Course/02.mp4"))
	checkOutcome(t, f, f.p.Handle(context.Background(), goodJob), completedStreamed)
	if got := f.up.moves(); len(got) != 2 || !slices.Equal(got[1], []string{"02.mp4"}) {
		t.Errorf("moves %q", got)
	}
	if got := tree(t, f); !slices.Equal(got, []string{"Go Course/01.mp4", "Go Course/02.mp4"}) {
		t.Errorf("destination %q", got)
	}
}
