package upload

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// course makes a task folder holding "Course/<name>" for each name, and a
// local remote; it returns the course folder and the destination folder.
func course(t *testing.T, names ...string) (u *Uploader, src, dst string) {
	t.Helper()
	_, dst, conf := rcloneSetup(t)
	src = filepath.Join(filepath.Dir(dst), "task-9", "Course")
	for _, n := range names {
		mustWrite(t, filepath.Join(src, filepath.FromSlash(n)), "lesson "+n)
	}
	return &Uploader{Rclone: "rclone", Config: conf, Dest: "local:" + dst + "/{folder}", Timeout: time.Minute}, src, dst
}

// landed lists the files under dir, slash-separated, sorted.
func landed(t *testing.T, dir string) []string {
	t.Helper()
	files, err := Files(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	for i := range files {
		files[i] = filepath.ToSlash(files[i])
	}
	sort.Strings(files)
	return files
}

// One file goes with moveto, several with one move --files-from-raw; names
// that --files-from would take for comments or trim arrive whole; the source
// folders stay for the downloader.
func TestMoveFiles(t *testing.T) {
	names := []string{"#1 Intro.mp4", " spaced .mp4", "ch 2/;02 next.mp4", "ch 2/03 last.mp4"}
	u, src, dst := course(t, names...)
	fake := newFakeRclone(t)
	u.Rclone, u.Env = fake.path, []string{"FAKE_RCLONE_RECORD=" + fake.record}
	dest := u.Destination(Request{TaskID: 9, Folder: "Course"})
	var out lines
	if ran, err := u.MoveFiles(context.Background(), Batch{TaskID: 9, Source: src, Dest: dest, Files: names[:1]}, out.add); err != nil || ran <= 0 {
		t.Fatalf("one file: %s, %v", ran, err)
	}
	if _, err := u.MoveFiles(context.Background(), Batch{TaskID: 9, Source: src, Dest: dest, Files: names[1:]}, out.add); err != nil {
		t.Fatalf("three files: %v", err)
	}
	want := slices.Clone(names)
	sort.Strings(want)
	if got := landed(t, filepath.Join(dst, "Course")); !slices.Equal(got, want) {
		t.Errorf("destination holds %q, want %q", got, want)
	}
	if left := landed(t, src); len(left) != 0 {
		t.Errorf("source still holds %q", left)
	}
	if fi, err := os.Stat(filepath.Join(src, "ch 2")); err != nil || !fi.IsDir() {
		t.Errorf("the source's folder went: %v", err)
	}
	if n := len(fake.ran(t, "moveto")); n != 1 {
		t.Errorf("%d moveto runs, want 1", n)
	}
	moves := fake.ran(t, "move")
	if len(moves) != 1 || !slices.Contains(moves[0], "listed:ch 2/;02 next.mp4") || !slices.Contains(moves[0], "--no-traverse") {
		t.Errorf("move runs %q", moves)
	}
	if !slices.ContainsFunc(out.all, func(l string) bool { return strings.Contains(l, `"stats"`) }) {
		t.Errorf("no stats line among %q", out.all)
	}
	if _, err := u.MoveFiles(context.Background(), Batch{TaskID: 9, Source: src, Dest: dest, Files: []string{"../escape.mp4"}}, nil); err == nil {
		t.Error("a path out of the folder was moved")
	}
}

// Has tells a file at the destination from one that is not there.
func TestHas(t *testing.T) {
	u, src, dst := course(t, "a.mp4")
	dest := u.Destination(Request{TaskID: 9, Folder: "Course"})
	for _, tc := range []struct {
		path string
		want bool
	}{{dest + "/a.mp4", false}, {"local:" + filepath.Join(dst, "nowhere", "a.mp4"), false}} {
		if got, err := u.Has(context.Background(), tc.path, nil); err != nil || got != tc.want {
			t.Errorf("Has(%s) = %v, %v; want %v", tc.path, got, err, tc.want)
		}
	}
	if _, err := u.MoveFiles(context.Background(), Batch{TaskID: 9, Source: src, Dest: dest, Files: []string{"a.mp4"}}, nil); err != nil {
		t.Fatal(err)
	}
	if got, err := u.Has(context.Background(), dest+"/a.mp4", nil); err != nil || !got {
		t.Errorf("Has after the move = %v, %v", got, err)
	}
	u.Config = filepath.Join(t.TempDir(), "missing.conf")
	if _, err := u.Has(context.Background(), "nosuchremote:x", nil); err == nil {
		t.Error("an unknown remote says nothing is there, without an error")
	}
}

// streamRec records what a Stream did: its batches and what it reported.
type streamRec struct {
	mu       sync.Mutex
	batches  [][]string
	done     map[string]error
	inFlight int
	peak     int
}

func (r *streamRec) wrap(move func(context.Context, Batch) error) func(context.Context, Batch) error {
	return func(ctx context.Context, b Batch) error {
		r.mu.Lock()
		r.batches = append(r.batches, slices.Clone(b.Files))
		r.inFlight++
		r.peak = max(r.peak, r.inFlight)
		r.mu.Unlock()
		err := move(ctx, b)
		r.mu.Lock()
		r.inFlight--
		r.mu.Unlock()
		return err
	}
}

// moveWith is a Stream's Move over u.MoveFiles.
func moveWith(u *Uploader) func(context.Context, Batch) error {
	return func(ctx context.Context, b Batch) error {
		_, err := u.MoveFiles(ctx, b, nil)
		return err
	}
}

func (r *streamRec) doneFn(f File, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done == nil {
		r.done = map[string]error{}
	}
	if _, twice := r.done[f.Rel]; twice {
		panic("reported twice: " + f.Rel)
	}
	r.done[f.Rel] = err
}

// A file added while the only run is busy waits; those that pile up go
// together in the next run; never more runs at once than Parallel.
func TestStreamBatchesWhatWaits(t *testing.T) {
	names := []string{"01.mp4", "02.mp4", "03.mp4", "04.mp4", "05.mp4"}
	u, src, dst := course(t, names...)
	dest := u.Destination(Request{TaskID: 9, Folder: "Course"})
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	rec := &streamRec{}
	s := NewStream(context.Background(), StreamParams{TaskID: 9, Parallel: 1, Done: rec.doneFn,
		Move: rec.wrap(func(ctx context.Context, b Batch) error {
			once.Do(func() { close(entered); <-release })
			_, err := u.MoveFiles(ctx, b, nil)
			return err
		})})
	s.Add(File{Source: src, Dest: dest, Rel: names[0]})
	<-entered
	for _, n := range names[1:] {
		s.Add(File{Source: src, Dest: dest, Rel: n})
	}
	close(release)
	s.Close()
	s.Wait()
	if want := [][]string{names[:1], names[1:]}; !slices.EqualFunc(rec.batches, want, slices.Equal) {
		t.Errorf("batches %q, want %q", rec.batches, want)
	}
	if got := landed(t, filepath.Join(dst, "Course")); !slices.Equal(got, names) || len(rec.done) != len(names) {
		t.Errorf("destination %q, done %v", got, rec.done)
	}
	for n, err := range rec.done {
		if err != nil {
			t.Errorf("%s: %v", n, err)
		}
	}
}

// With room for two runs, a pile of files is shared between them, and no
// more than two run at once.
func TestStreamParallel(t *testing.T) {
	var names []string
	for i := range 12 {
		names = append(names, "lesson-"+string(rune('a'+i))+".mp4")
	}
	u, src, dst := course(t, names...)
	dest := u.Destination(Request{TaskID: 9, Folder: "Course"})
	rec := &streamRec{}
	s := NewStream(context.Background(), StreamParams{TaskID: 9, Parallel: 2, Done: rec.doneFn,
		Move: rec.wrap(moveWith(u))})
	for _, n := range names {
		s.Add(File{Source: src, Dest: dest, Rel: n})
	}
	s.Close()
	s.Wait()
	if got := landed(t, filepath.Join(dst, "Course")); !slices.Equal(got, names) {
		t.Errorf("destination %q", got)
	}
	if rec.peak > 2 || len(rec.done) != len(names) {
		t.Errorf("%d runs at once, %d files reported", rec.peak, len(rec.done))
	}
}

// rclone failing on one file: that file alone is tried again (and the
// others of its batch, if any); after a temporary failure once it arrives, a
// fatal failure each time leaves it where it is, reported.
func TestStreamRetriesAFileAlone(t *testing.T) {
	names := []string{"01.mp4", "02.mp4", "03.mp4"}
	for _, tc := range []struct {
		name string
		once bool
		exit string
	}{{"temporary, once", true, "5"}, {"fatal, every time", false, "7"}} {
		t.Run(tc.name, func(t *testing.T) {
			u, src, dst := course(t, names...)
			fake := newFakeRclone(t)
			u.Rclone = fake.path
			u.Env = []string{"FAKE_RCLONE_RECORD=" + fake.record, "FAKE_RCLONE_FAIL=02.mp4", "FAKE_RCLONE_FAIL_EXIT=" + tc.exit}
			if tc.once {
				u.Env = append(u.Env, "FAKE_RCLONE_FAIL_MARK="+filepath.Join(t.TempDir(), "failed"))
			}
			dest := u.Destination(Request{TaskID: 9, Folder: "Course"})
			rec := &streamRec{}
			s := NewStream(context.Background(), StreamParams{TaskID: 9, Parallel: 1, RetryBackoff: time.Millisecond, Done: rec.doneFn,
				Move: rec.wrap(moveWith(u))})
			for _, n := range names {
				s.Add(File{Source: src, Dest: dest, Rel: n})
			}
			s.Close()
			s.Wait()
			want := names
			if !tc.once {
				want = []string{"01.mp4", "03.mp4"}
			}
			if got := landed(t, filepath.Join(dst, "Course")); !slices.Equal(got, want) {
				t.Errorf("destination %q, want %q (batches %q, done %v)", got, want, rec.batches, rec.done)
			}
			if err := rec.done["02.mp4"]; tc.once && err != nil || !tc.once && (err == nil || temporary(err)) || len(rec.done) != 3 {
				t.Errorf("done %v", rec.done)
			}
			var runs [][]string
			for _, b := range rec.batches {
				if slices.Contains(b, "02.mp4") {
					runs = append(runs, b)
				}
			}
			if len(runs) < 1+map[bool]int{true: 1}[tc.once] || len(runs[len(runs)-1]) != 1 || len(runs) > 1 && len(runs[len(runs)-2]) == 1 && !tc.once {
				t.Errorf("runs of 02.mp4: %q", runs)
			}
		})
	}
}

// Once the context ends, the files still waiting are reported with its error
// and stay where they are.
func TestStreamCanceled(t *testing.T) {
	u, src, _ := course(t, "01.mp4", "02.mp4")
	dest := u.Destination(Request{TaskID: 9, Folder: "Course"})
	ctx, cancel := context.WithCancel(context.Background())
	added := make(chan struct{})
	rec := &streamRec{}
	s := NewStream(ctx, StreamParams{TaskID: 9, Parallel: 1, Done: rec.doneFn,
		Move: rec.wrap(func(ctx context.Context, _ Batch) error {
			<-added
			cancel()
			return &Error{Op: "move", Err: ctx.Err()}
		})})
	s.Add(File{Source: src, Dest: dest, Rel: "01.mp4"})
	s.Add(File{Source: src, Dest: dest, Rel: "02.mp4"})
	close(added)
	s.Wait()
	if len(rec.done) != 2 || rec.done["01.mp4"] == nil || rec.done["02.mp4"] == nil {
		t.Errorf("done %v", rec.done)
	}
	if left := landed(t, src); len(left) != 2 {
		t.Errorf("source holds %q", left)
	}
}

// The move at the end of a task leaves the worker's own files (at the top of
// the task's folder) and partial files (anywhere) behind.
func TestUploadLeavesOwnAndPartialFiles(t *testing.T) {
	_, dst, conf := rcloneSetup(t)
	dir := filepath.Join(t.TempDir(), "task-9")
	for _, n := range []string{"a.mp4", ".cookies.txt", ".download-archive", "b.mp4.part", "sub/c.mp4", "sub/c.f1.mp4.part-Frag3", "sub/.download-archive"} {
		mustWrite(t, filepath.Join(dir, filepath.FromSlash(n)), n)
	}
	u := &Uploader{Rclone: "rclone", Config: conf, Dest: "local:" + dst + "/{folder}", URLTemplate: "https://x/{folder}", Timeout: time.Minute}
	if _, err := u.Upload(context.Background(), Request{TaskID: 9, Source: dir, Folder: "task-9"}, nil); err != nil {
		t.Fatal(err)
	}
	if got, want := landed(t, filepath.Join(dst, "task-9")), []string{"a.mp4", "sub/.download-archive", "sub/c.mp4"}; !slices.Equal(got, want) {
		t.Errorf("destination %q, want %q", got, want)
	}
	if got, want := landed(t, dir), []string{".cookies.txt", ".download-archive", "b.mp4.part", "sub/c.f1.mp4.part-Frag3"}; !slices.Equal(got, want) {
		t.Errorf("left %q, want %q", got, want)
	}
}

// A file already at the destination moves within it (the pipeline does so
// when {folder} turns out to be task-<id> after files went early).
func TestMoveFilesWithinTheDestination(t *testing.T) {
	u, src, dst := course(t, "ch 1/01.mp4")
	early := u.Destination(Request{TaskID: 9, Folder: "Course"})
	if _, err := u.MoveFiles(context.Background(), Batch{TaskID: 9, Source: src, Dest: early, Files: []string{"ch 1/01.mp4"}}, nil); err != nil {
		t.Fatal(err)
	}
	final := u.Destination(Request{TaskID: 9, Folder: "task-9"}) + "/Course"
	if _, err := u.MoveFiles(context.Background(), Batch{TaskID: 9, Source: early, Dest: final, Files: []string{"ch 1/01.mp4"}}, nil); err != nil {
		t.Fatal(err)
	}
	if got := landed(t, dst); !slices.Equal(got, []string{"task-9/Course/ch 1/01.mp4"}) {
		t.Errorf("destination %q", got)
	}
	there, err := u.Has(context.Background(), final+"/ch 1/01.mp4", nil)
	if err != nil || !there {
		t.Errorf("Has = %v, %v", there, err)
	}
}
