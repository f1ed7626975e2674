package pipeline

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"go.uber.org/zap"

	"github.com/coursedl/worker/internal/download"
	"github.com/coursedl/worker/internal/metrics"
	"github.com/coursedl/worker/internal/upload"
)

// shipper moves the files the downloader announces (download.announce) to the
// destination while the download goes on, at most upload.parallel at once
// (upload.Stream). Each file is checked first (download.Check: a regular file
// inside the task's folder, not partial, not the worker's own); a refusal is a
// line in the task log, and the file, if any, waits for the move at the end.
//
// Each file is written in the task's state before its move starts and marked
// moved once rclone has said so, so that a run after a crash or a retry does
// not move it again; what happens between the two is sorted out by settle.
// A file whose move fails for good is left where it is: the move at the end
// takes it, and that move's failure decides about the task as it always did.
type shipper struct {
	p   *Pipeline
	t   *task
	st  *state
	ctx context.Context

	mu sync.Mutex
	// stream is started with the first file: a download that announces
	// none costs no goroutines.
	stream *upload.Stream
	queued map[string]bool // files in the stream
	// onDone is told of the bytes of each file moved once the downloader has
	// exited, for the uploading stage's percent.
	onDone func(size int64)
}

// ship starts moving announced files for a run of the downloader; nil when
// download.announce is "none". The files of an earlier run that were
// announced but not moved go first.
func (p *Pipeline) ship(ctx context.Context, t *task, st *state) *shipper {
	if !p.Announce.Enabled() {
		return nil
	}
	sh := &shipper{p: p, t: t, st: st, ctx: ctx, queued: map[string]bool{}}
	var left []download.Announced
	st.view(func(r *resume) {
		for rel, f := range r.Files {
			if !f.Moved {
				left = append(left, download.Announced{Rel: rel, Size: f.Size})
			}
		}
	})
	for _, a := range left {
		if _, err := os.Lstat(filepath.Join(t.dir, filepath.FromSlash(a.Rel))); err == nil {
			sh.add(a)
		}
	}
	return sh
}

// lines takes lines of the downloader's standard output.
func (sh *shipper) lines(lines [][]byte) {
	for _, line := range lines {
		if path, ok := sh.p.Announce.Match(line); ok {
			sh.announced(path)
		}
	}
}

// announced checks a path the downloader announced and moves the file.
func (sh *shipper) announced(path string) {
	a, err := download.Check(sh.t.dir, path)
	switch {
	case errors.Is(err, download.ErrNotAnnounced) && sh.p.Announce.String() == download.AnnouncePath:
		return // a line of output that names no file
	case err != nil:
		sh.t.rec.record(sh.ctx, note{line: fmt.Sprintf("announced file %q refused: %v; not uploaded early", path, err)})
		return
	}
	sh.add(a)
}

// add writes the file in the state, where the layout puts it, and queues its
// move; a file the layout leaves out waits for the move at the end.
func (sh *shipper) add(a download.Announced) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.queued[a.Rel] {
		return
	}
	var f upload.File
	var placed bool
	err := sh.st.update(func(r *resume) {
		if r.Layout == nil {
			if l, ok := pinLayout(sh.t.id, a.Rel); ok {
				r.Layout = &l
			}
		}
		if r.Layout == nil {
			return
		}
		source, sub, ok := r.Layout.place(sh.t.dir, a.Rel)
		if !ok {
			return
		}
		dest := sh.p.dest(sh.t, *r.Layout)
		if r.Files == nil {
			r.Files = map[string]*shipped{}
		}
		r.Files[a.Rel] = &shipped{Size: a.Size, Dest: dest, Sub: sub}
		f, placed = upload.File{Source: source, Dest: dest, Rel: sub, Size: a.Size}, true
	})
	if !placed {
		sh.t.rec.record(sh.ctx, note{line: fmt.Sprintf("%q is outside the course's folder; it waits for the upload at the end", a.Rel)})
		return
	}
	if err != nil {
		sh.t.rec.log.Warn("task state not saved; the file waits for the upload at the end", zap.Error(err))
		return
	}
	if sh.stream == nil {
		sh.stream = upload.NewStream(sh.ctx, upload.StreamParams{
			TaskID:       sh.t.id,
			Parallel:     sh.p.UploadParallel,
			RetryBackoff: sh.p.UploadBackoff,
			Move:         sh.move,
			Done:         sh.done,
		})
	}
	sh.queued[a.Rel] = true
	sh.stream.Add(f)
}

// move moves a batch once the task's lock is confirmed held, rclone's lines
// to the task log.
func (sh *shipper) move(ctx context.Context, b upload.Batch) error {
	if err := sh.p.confirm(ctx, sh.t, "upload"); err != nil {
		return err
	}
	_, err := sh.p.Uploader.MoveFiles(ctx, b, sh.t.rec.rcloneLine)
	return err
}

// done records the end of a file's move: moved, or left for the end.
func (sh *shipper) done(f upload.File, err error) {
	rel := sh.rel(f)
	sh.mu.Lock()
	delete(sh.queued, rel)
	onDone := sh.onDone
	sh.mu.Unlock()
	if err != nil {
		sh.t.rec.record(sh.ctx, note{line: fmt.Sprintf("upload of %q did not succeed: %v; it waits for the upload at the end", rel, err)})
		return
	}
	if serr := sh.st.update(func(r *resume) { r.Files[rel].Moved = true }); serr != nil {
		sh.t.rec.log.Warn("task state not saved; a re-run would look for the file at the destination", zap.Error(serr))
	}
	sh.t.rec.metrics.AddBytes(metrics.Downloaded, f.Size)
	sh.t.rec.record(sh.ctx, note{line: fmt.Sprintf("uploaded %q to %s", rel, joinRemote(f.Dest, f.Rel)),
		moved: metrics.Uploaded, bytes: f.Size})
	if onDone != nil {
		onDone(f.Size)
	}
}

// rel is a file's path relative to the task's folder.
func (sh *shipper) rel(f upload.File) string {
	r, err := filepath.Rel(sh.t.dir, filepath.Join(f.Source, filepath.FromSlash(f.Rel)))
	if err != nil {
		return f.Rel
	}
	return filepath.ToSlash(r)
}

// finish says no more files will be announced, and waits for the moves under
// way and queued; onDone, when set, is told of each file moved from now on.
func (sh *shipper) finish(onDone func(size int64)) {
	if sh == nil {
		return
	}
	sh.mu.Lock()
	sh.onDone = onDone
	stream := sh.stream
	sh.mu.Unlock()
	if stream != nil {
		stream.Close()
		stream.Wait()
	}
}

// checkShipped sorts out, before a run goes on, the files an earlier run
// announced and did not see moved. One still in the task's folder is moved
// again (ship queues it; the move at the end takes it when the download is
// done). One gone from it was moved by an rclone that the crash or the stop
// cut off before its end was recorded: rclone deletes a source file only once
// it is at the destination, where rclone lsjson finds it. A file neither here
// nor there is lost (someone removed it): the downloader's archive goes, so
// that the download runs again and fetches what the folder lacks.
func (p *Pipeline) checkShipped(ctx context.Context, t *task, st *state) error {
	type missing struct{ rel, path string }
	var look []missing
	st.view(func(r *resume) {
		for rel, f := range r.Files {
			if _, err := os.Lstat(filepath.Join(t.dir, filepath.FromSlash(rel))); !f.Moved && errors.Is(err, os.ErrNotExist) {
				look = append(look, missing{rel, joinRemote(f.Dest, f.Sub)})
			}
		}
	})
	for _, m := range look {
		there, err := p.Uploader.Has(ctx, m.path, t.rec.rcloneLine)
		if err != nil {
			return fmt.Errorf("is %q at the destination: %w", m.rel, err)
		}
		line := fmt.Sprintf("%q, whose upload an earlier run started, is at the destination", m.rel)
		change := func(r *resume) { r.Files[m.rel].Moved = true }
		if !there {
			line = fmt.Sprintf("%q, whose upload an earlier run started, is neither in the task folder nor at the destination: downloading again", m.rel)
			change = func(r *resume) {
				delete(r.Files, m.rel)
				r.Downloaded, r.Uploaded = false, false
			}
			if err := os.Remove(filepath.Join(t.dir, download.ArchiveName)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
		}
		t.rec.record(ctx, note{line: line})
		if err := st.update(change); err != nil {
			t.rec.log.Warn("task state not saved", zap.Error(err))
		}
	}
	return nil
}
