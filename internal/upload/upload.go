// Package upload moves a task's result to its destination with rclone and gets the
// shareable link. It runs rclone through package process (no shell, its own process
// group, a minimal environment) and hands every output line to the caller, which
// logs it and parses rclone's JSON stats into progress.
//
// Files the downloader announces as finished go while the download goes on
// (Stream, over MoveFiles: a few at a time, each failed file tried again on its
// own); what is left in the task's folder goes once at the end (Upload). It does
// not decide which files are finished or where in the destination they belong:
// the caller (package pipeline) does.
package upload

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/coursedl/worker/internal/download"
	"github.com/coursedl/worker/internal/process"
)

// Uploader runs `rclone move` and `rclone link`.
type Uploader struct {
	Rclone      string        // path of the rclone binary
	Config      string        // rclone config file, passed as --config when set
	Dest        string        // destination template: {folder}, {task_id}, {email}
	Link        bool          // ask rclone link for a shareable URL
	URLTemplate string        // the URL when rclone link is off or gives none
	Timeout     time.Duration // of the move
	Env         []string      // extra environment, NAME=value each
	KillGrace   time.Duration
	Log         *zap.Logger // may be nil
	// Quota holds this host's uploads back after a quota error; its Wait is
	// upload.quota_wait. Until tells until when, e.g. for /readyz.
	Quota Gate

	kind destKind // whether Dest is on Google Drive, learned by Prepare
}

// Request says what to upload.
type Request struct {
	TaskID int64
	Source string // the folder whose contents are moved; "" when nothing is left to move, only the link to find
	Folder string // the {folder} name, already safe for a path
	Email  string
}

// Result says where the files went.
type Result struct {
	Dest string        // the rclone destination, expanded
	URL  string        // the shareable link
	Ran  time.Duration // how long rclone ran, the move and the link together
}

// Error is a failed rclone run, classified by exit code, or by the quota or rate
// limit the destination reported.
type Error struct {
	Op       string // "move" or "link"
	ExitCode int
	// Limit is the reason the destination gave for a quota or rate limit
	// ("uploadLimitExceeded", "userRateLimitExceeded", "storageQuotaExceeded"
	// or "rateLimitExceeded"), empty for any other failure.
	Limit string
	// Until is when uploads may run again, set with Limit: the host's Gate
	// opens then.
	Until time.Time
	Err   error
}

func (e *Error) Error() string {
	msg := "rclone " + e.Op + ": " + e.Err.Error()
	if e.Limit != "" {
		msg += " (upload quota: " + e.Limit + "; uploads wait until " + e.Until.UTC().Format(time.RFC3339) + ")"
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// Quota reports whether the destination refused the upload for a quota or rate
// limit: a failure neither temporary (another attempt soon would meet the same
// limit) nor permanent (the limit passes).
func (e *Error) Quota() bool { return e.Limit != "" }

// Temporary reports whether trying again later may succeed. rclone documents exit
// code 5 as a temporary error and 7 as fatal; 1 and 2 are "usage error" and "other
// error" (their meaning swapped after 1.60, so neither is trusted to mean usage).
// A time-out is temporary too; 3, 4, 7, 8 and 9 are not. A quota error is not
// temporary, whatever the exit code: see Quota.
func (e *Error) Temporary() bool {
	if e.Quota() {
		return false
	}
	var pe *process.ExitError
	if errors.As(e.Err, &pe) && (pe.TimedOut || pe.Signal != 0) {
		return true
	}
	switch e.ExitCode {
	case 1, 2, 5, 6:
		return true
	}
	return false
}

// Upload moves the contents of req.Source to the expanded destination, then finds
// the link. onLine receives every line rclone prints.
//
// The source must be a real directory, not a symlink: the downloader ran with the
// worker's rights and may have left anything in the task's folder, and rclone
// would otherwise move the files of wherever the link points. Inside it, rclone
// runs without -L/--copy-links, so symlinks are skipped, never followed.
//
// While u.Quota is closed, Upload returns a quota error (IsQuota) at once,
// without running rclone; a move refused for a quota closes it.
func (u *Uploader) Upload(ctx context.Context, req Request, onLine func(process.Stream, []byte)) (Result, error) {
	res := Result{Dest: u.Destination(req)}
	if req.Source != "" {
		if fi, err := os.Lstat(req.Source); err != nil {
			return Result{}, fmt.Errorf("upload task %d: source: %w", req.TaskID, err)
		} else if !fi.IsDir() {
			return Result{}, fmt.Errorf("upload task %d: source %s is a %s, not a folder", req.TaskID, req.Source, download.Kind(fi.Mode()))
		}
		if err := u.Quota.refuse(); err != nil {
			return Result{}, err
		}
		ran, err := u.move(ctx, req.TaskID, req.Source, res.Dest, onLine)
		res.Ran = ran
		if err != nil {
			return res, err
		}
	}
	link, ran, err := u.link(ctx, res.Dest, onLine)
	res.Ran += ran
	switch {
	case link != "":
		res.URL = link
	case u.URLTemplate != "":
		res.URL = fill(u.URLTemplate, req, url.PathEscape)
	case err != nil:
		return res, err
	default:
		return res, errors.New("no link: upload.link is off and upload.url_template is empty")
	}
	return res, nil
}

// move runs `rclone move` of source to dest and returns how long it ran. The
// move deletes each source file once it is uploaded: after a failure, what is
// left in source is what still has to go. The worker's own files (the cookies
// copy, the download archive) and partial files stay behind (exclusions).
//
// A move that exits non-zero by itself after rclone logged a quota marker is
// a quota error, whatever the code: with --drive-stop-on-upload-limit Drive's
// daily limit is a fatal error (7), without it rclone retries and ends with
// another code. Such an error closes the Quota gate. Only the move is
// classified so: after it, the files are gone from the source, and a link that
// fails for a rate limit fails as before.
func (u *Uploader) move(ctx context.Context, id int64, source, dest string, onLine func(process.Stream, []byte)) (time.Duration, error) {
	args := append(u.common(), "move", source, dest,
		"--use-json-log", "--stats", "1s", "-v",
		"--delete-empty-src-dirs", "--create-empty-src-dirs")
	return u.run(ctx, id, "move", append(args, exclusions()...), onLine)
}

// link asks rclone for a shareable URL of dest; "" when link is off. It also
// returns how long rclone ran.
func (u *Uploader) link(ctx context.Context, dest string, onLine func(process.Stream, []byte)) (string, time.Duration, error) {
	if !u.Link {
		return "", 0, nil
	}
	var out bytes.Buffer
	args := append(u.common(), "link", dest)
	run, err := process.Run(ctx, process.Spec{
		Path:    u.Rclone,
		Args:    args,
		Env:     u.env(),
		Timeout: time.Minute,
		OnLine: func(s process.Stream, line []byte) {
			if s == process.Stdout && out.Len() < 4096 {
				out.Write(line)
				out.WriteByte('\n')
				return
			}
			if onLine != nil {
				onLine(s, line)
			}
		},
	})
	if err != nil {
		return "", run.Duration, &Error{Op: "link", ExitCode: exitCode(err), Err: err}
	}
	link := strings.TrimSpace(out.String())
	if u, err := url.Parse(link); err != nil || (u.Scheme != "https" && u.Scheme != "http") {
		return "", run.Duration, &Error{Op: "link", Err: fmt.Errorf("not a URL: %.200q", link)}
	}
	return link, run.Duration, nil
}

func (u *Uploader) common() []string {
	if u.Config == "" {
		return nil
	}
	return []string{"--config", u.Config}
}

func (u *Uploader) env() []string { return process.MinimalEnv(process.ParseEnv(u.Env)) }

// fill replaces the placeholders of tmpl, each value passed through esc.
func fill(tmpl string, req Request, esc func(string) string) string {
	return strings.NewReplacer(
		"{folder}", esc(req.Folder),
		"{task_id}", strconv.FormatInt(req.TaskID, 10),
		"{email}", esc(req.Email),
	).Replace(tmpl)
}

// segment keeps a value within one segment of an rclone path: '/' and '\\'
// become '_', and "." or ".." (which no valid {folder} or e-mail is) become "_".
// {folder} is safe already (download.Sanitize); an e-mail address may hold '/'.
func segment(s string) string {
	if s == "." || s == ".." {
		return "_"
	}
	return strings.NewReplacer("/", "_", "\\", "_").Replace(s)
}

func exitCode(err error) int {
	var pe *process.ExitError
	if errors.As(err, &pe) {
		return pe.ExitCode
	}
	return 0
}

// Files lists the regular files under dir, relative to it, for checks and tests.
func Files(dir string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return nil
	})
	return out, err
}
