package upload

import (
	"context"
	"fmt"
	"os"
	"path"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/coursedl/worker/internal/download"
	"github.com/coursedl/worker/internal/process"
)

// Batch is some files of one folder, moved to one destination folder in one
// run of rclone: Source/<file> goes to Dest/<file> for each file.
type Batch struct {
	TaskID int64
	// Source is the folder the files are under: a local path, or an rclone
	// path when files already at the destination move within it.
	Source string
	Dest   string   // the destination folder, an rclone path
	Files  []string // relative to Source and to Dest, slash-separated
}

// ExistsTimeout bounds `rclone lsjson --stat`, one look at one file.
const ExistsTimeout = 2 * time.Minute

// Destination returns upload.dest expanded for req: the rclone path that a
// task's folder goes to.
func (u *Uploader) Destination(req Request) string { return fill(u.Dest, req, segment) }

// MoveFiles moves the files of b and returns how long rclone ran. One file
// goes with `rclone moveto` (its path is an argument: any name will do);
// several go with one `rclone move --files-from-raw`, which starts rclone once
// for all of them (a list of 12 lessons of 4 MiB moved in a fifth of the time
// 12 movetos took, most of theirs being rclone's start). rclone deletes each
// source file once it is at the destination, so after a failure the files
// still in Source are those not moved. It neither creates nor deletes
// folders in Source: the downloader may be writing there.
//
// A failure is an *Error, classified as Upload's move is: quota errors close
// the Quota gate, and while the gate is closed MoveFiles returns a quota
// error at once.
func (u *Uploader) MoveFiles(ctx context.Context, b Batch, onLine func(process.Stream, []byte)) (time.Duration, error) {
	if len(b.Files) == 0 {
		return 0, nil
	}
	for _, f := range b.Files {
		if !clean(f) {
			return 0, fmt.Errorf("upload task %d: %q is not a path inside its folder", b.TaskID, f)
		}
	}
	if err := u.Quota.refuse(); err != nil {
		return 0, err
	}
	var args []string
	if len(b.Files) == 1 {
		args = append(u.common(), "moveto", join(b.Source, b.Files[0]), join(b.Dest, b.Files[0]))
	} else {
		list, err := writeList(b.Files)
		if err != nil {
			return 0, fmt.Errorf("upload task %d: %w", b.TaskID, err)
		}
		defer func() { _ = os.Remove(list) }()
		args = append(u.common(), "move", b.Source, b.Dest, "--files-from-raw", list, "--no-traverse")
	}
	args = append(args, "--use-json-log", "--stats", "1s", "-v")
	return u.run(ctx, b.TaskID, "move", args, onLine)
}

// Has reports whether the file at the rclone path p exists. rclone's exit
// codes 3 and 4 (directory or file not found) say it does not; any other
// failure is an error.
func (u *Uploader) Has(ctx context.Context, p string, onLine func(process.Stream, []byte)) (bool, error) {
	_, err := process.Run(ctx, process.Spec{
		Path:    u.Rclone,
		Args:    append(u.common(), "lsjson", "--stat", "--no-mimetype", "--no-modtime", p),
		Env:     u.env(),
		Timeout: ExistsTimeout,
		OnLine: func(s process.Stream, line []byte) {
			if s == process.Stderr && onLine != nil {
				onLine(s, line)
			}
		},
	})
	if err == nil {
		return true, nil
	}
	if c := exitCode(err); exitedNonZero(err) && (c == 3 || c == 4) {
		return false, nil
	}
	return false, &Error{Op: "lsjson", ExitCode: exitCode(err), Err: err}
}

// run runs rclone with args for the move op and classifies its failure:
// after rclone logged a quota marker, a non-zero exit is a quota error, which
// closes the Quota gate. It returns how long rclone ran.
func (u *Uploader) run(ctx context.Context, id int64, op string, args []string, onLine func(process.Stream, []byte)) (time.Duration, error) {
	if u.Prepare(ctx) {
		args = append(args, driveStopOnUploadLimit)
	}
	var scan quotaScan
	run, err := process.Run(ctx, process.Spec{
		Path:      u.Rclone,
		Args:      args,
		Env:       u.env(),
		Timeout:   u.Timeout,
		KillGrace: u.KillGrace,
		OnLine:    scan.wrap(onLine),
	})
	if err == nil {
		return run.Duration, nil
	}
	e := &Error{Op: op, ExitCode: exitCode(err), Err: err}
	if exitedNonZero(err) && scan.limit != "" {
		e.Limit, e.Until = scan.limit, u.Quota.trip(scan.limit)
		u.log().Warn("the destination reported a quota; uploads on this host wait",
			zap.Int64("task_id", id), zap.String("limit", scan.limit), zap.Time("until", e.Until))
	}
	return run.Duration, e
}

// writeList writes names one a line for --files-from-raw (no comments, no
// trimming: a lesson may be called "#1 Intro.mp4") and returns the file's
// path. A name holding a line break cannot be listed: MoveFiles is given such
// a file alone.
func writeList(names []string) (string, error) {
	f, err := os.CreateTemp("", "rclone-files-*")
	if err != nil {
		return "", fmt.Errorf("list of files: %w", err)
	}
	var b strings.Builder
	for _, n := range names {
		if strings.ContainsAny(n, "\n\r") {
			_ = f.Close()
			_ = os.Remove(f.Name())
			return "", fmt.Errorf("list of files: %q holds a line break", n)
		}
		b.WriteString(n)
		b.WriteByte('\n')
	}
	_, err = f.WriteString(b.String())
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return "", fmt.Errorf("list of files: %w", err)
	}
	return f.Name(), nil
}

// join appends a slash-separated relative path to an rclone or local path.
func join(dir, rel string) string {
	if strings.HasSuffix(dir, "/") || strings.HasSuffix(dir, ":") {
		return dir + rel
	}
	return dir + "/" + rel
}

// exclusions are the filters of the move at the end of a task: the worker's
// own files at the top of the task's folder and partial files anywhere are
// never uploaded.
func exclusions() []string {
	out := []string{"--exclude", "/" + download.CookiesName, "--exclude", "/" + download.ArchiveName}
	for _, p := range download.PartialPatterns {
		out = append(out, "--exclude", p)
	}
	return out
}

// clean reports whether rel is a relative slash-separated path that stays
// within its folder.
func clean(rel string) bool {
	return rel != "" && !path.IsAbs(rel) && path.Clean(rel) == rel && rel != ".." && !strings.HasPrefix(rel, "../")
}
