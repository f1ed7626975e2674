package pipeline

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"go.uber.org/zap"

	"github.com/coursedl/worker/internal/download"
	"github.com/coursedl/worker/internal/job"
	"github.com/coursedl/worker/internal/upload"
)

// layout is where the files of a task's folder go at the destination, as the
// move of the whole folder at the end of a task puts them: with the single
// top-level folder Top the downloader made, Top/<rest> goes to
// upload.dest({folder})/<rest>, {folder} being Top made safe; otherwise (Top
// empty) each <path> goes to upload.dest(task-<id>)/<path>.
//
// Files moved while the download goes on cannot wait for the download's end
// to know which it is: the first of them fixes the layout (pinLayout). A file
// inside a folder fixes that folder as Top, and files announced later outside
// it are left for the move at the end; a file at the top fixes the fallback
// for good (the folder then holds a file, so {folder} is task-<id> whatever
// comes later). Should the downloader make a second top-level entry after
// files went under the first, the end of the task finds the fallback
// (download.FolderOf counts the files gone), and the files already moved are
// moved again within the destination, to where the move of the whole folder
// would have put them (relocate): the destination ends as it always did.
type layout struct {
	Top    string `json:"top,omitempty"` // its name on disk; "" for the task's folder itself
	Folder string `json:"folder"`        // {folder}
}

// pinLayout returns the layout the first announced file fixes, relative to
// the task's folder; false when it fixes none (a file under a hidden
// top-level entry, which the move at the end leaves out when there is a
// single folder).
func pinLayout(id int64, rel string) (layout, bool) {
	first, _, deeper := strings.Cut(rel, "/")
	switch {
	case strings.HasPrefix(first, "."):
		return layout{}, false
	case deeper && download.Sanitize(first) != "":
		return layout{Top: first, Folder: download.Sanitize(first)}, true
	}
	return layout{Folder: job.Name(id)}, true
}

// finalLayout is the layout of the folder as the task ends, the files gone
// counted as still there.
func finalLayout(t *task, gone []string) (layout, error) {
	name, source, err := download.FolderOf(t.dir, t.id, gone)
	if err != nil {
		return layout{}, err
	}
	l := layout{Folder: name}
	if source != t.dir {
		l.Top = filepath.Base(source)
	}
	return l, nil
}

// place returns the local folder a file is moved from and its path under
// that folder and under the destination's; false when the layout leaves the
// file to the move at the end.
func (l layout) place(dir, rel string) (source, sub string, ok bool) {
	if l.Top == "" {
		return dir, rel, true
	}
	rest, found := strings.CutPrefix(rel, l.Top+"/")
	if !found {
		return "", "", false
	}
	return filepath.Join(dir, l.Top), rest, true
}

// dest is upload.dest expanded for the layout's {folder}.
func (p *Pipeline) dest(t *task, l layout) string {
	return p.Uploader.Destination(upload.Request{TaskID: t.id, Folder: l.Folder, Email: t.email})
}

// relocate moves the files that went to the destination while the download
// went on, and are not where final puts them, to there, one by one within
// the destination (a rename on Drive). A file whose move fails is looked for
// at its new place: an earlier run may have moved it already.
func (p *Pipeline) relocate(ctx context.Context, t *task, st *state, final layout) error {
	dest := p.dest(t, final)
	type move struct {
		rel      string
		batch    upload.Batch
		sub, was string // the file's path under dest after the move; before, under batch.Source
	}
	var moves []move
	st.view(func(r *resume) {
		for rel, f := range r.Files {
			_, sub, ok := final.place(t.dir, rel)
			if !f.Moved || !ok || f.Dest == dest && f.Sub == sub {
				continue
			}
			// The layouts differ by a leading folder only: Top/<rest> then,
			// <rest> before.
			prefix, found := strings.CutSuffix(sub, f.Sub)
			if !found || prefix != "" && !strings.HasSuffix(prefix, "/") {
				moves = append(moves, move{rel: rel, sub: sub, was: f.Sub})
				continue
			}
			b := upload.Batch{TaskID: t.id, Source: f.Dest, Dest: joinRemote(dest, strings.TrimSuffix(prefix, "/")), Files: []string{f.Sub}}
			moves = append(moves, move{rel: rel, batch: b, sub: sub, was: f.Sub})
		}
	})
	if len(moves) > 0 {
		t.rec.record(ctx, note{line: fmt.Sprintf("the folder is %q after all: %d files moved early go there", final.Folder, len(moves))})
	}
	for _, m := range moves {
		if m.batch.Source == "" {
			return fmt.Errorf("cannot move %q from %q to %q at the destination", m.rel, m.was, m.sub)
		}
		if _, err := p.Uploader.MoveFiles(ctx, m.batch, t.rec.rcloneLine); err != nil {
			if there, herr := p.Uploader.Has(ctx, joinRemote(dest, m.sub), t.rec.rcloneLine); herr != nil || !there {
				return err
			}
		}
		if err := st.update(func(r *resume) { r.Files[m.rel].Dest, r.Files[m.rel].Sub = dest, m.sub }); err != nil {
			t.rec.log.Warn("task state not saved", zap.Error(err))
		}
	}
	return nil
}

// joinRemote appends a slash-separated path to an rclone path; "" adds
// nothing.
func joinRemote(dir, rel string) string {
	switch {
	case rel == "":
		return dir
	case strings.HasSuffix(dir, "/") || strings.HasSuffix(dir, ":"):
		return dir + rel
	}
	return dir + "/" + rel
}
