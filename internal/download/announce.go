package download

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
)

// Announce modes, the values of download.announce (a pattern is "re:" and the
// regular expression).
const (
	AnnouncePath = "path"
	AnnounceNone = "none"
	announceRe   = "re:"
)

// maxAnnounced is the longest line taken for a path: Linux's PATH_MAX.
const maxAnnounced = 4096

// Announce says which lines of the downloader's standard output announce a
// file it has finished (download.announce), so that the file can be uploaded
// while the download goes on:
//
//   - "path": a line that, trimmed of white space, names an existing file inside
//     the task's folder, absolute or relative to it (yt-dlp's
//     `--print after_move:filepath` prints such lines). Lines starting with '['
//     (yt-dlp's own "[download] ..." lines) are never taken for paths, so a
//     flood of progress costs no look at the disk.
//   - "re:<regexp>": a line the pattern matches; its one capture group is the
//     path.
//   - "none": no line announces anything; everything is uploaded at the end.
//
// Match only picks candidates: the caller checks each one with Check before it
// uploads anything. The zero Announce announces nothing.
type Announce struct {
	mode    string
	pattern *regexp.Regexp
}

// ParseAnnounce reads a download.announce value.
func ParseAnnounce(s string) (Announce, error) {
	switch {
	case s == AnnouncePath || s == AnnounceNone:
		return Announce{mode: s}, nil
	case strings.HasPrefix(s, announceRe):
		re, err := regexp.Compile(strings.TrimPrefix(s, announceRe))
		if err != nil {
			return Announce{}, fmt.Errorf("bad regular expression: %w", err)
		}
		if re.NumSubexp() != 1 {
			return Announce{}, fmt.Errorf("the regular expression must have exactly one capture group (the path), it has %d", re.NumSubexp())
		}
		return Announce{mode: announceRe, pattern: re}, nil
	}
	return Announce{}, fmt.Errorf("must be %q, %q or %q followed by a regular expression, got %q", AnnouncePath, AnnounceNone, announceRe, s)
}

// String returns the value ParseAnnounce read: "path", "none" or "re:...";
// "none" for the zero Announce.
func (a Announce) String() string {
	switch {
	case a.pattern != nil:
		return announceRe + a.pattern.String()
	case a.mode == "":
		return AnnounceNone
	}
	return a.mode
}

// Enabled reports whether any line may announce a file.
func (a Announce) Enabled() bool { return a.mode == AnnouncePath || a.pattern != nil }

// Match returns the path a line of standard output announces, as the line
// gives it (not yet checked), and whether it announces one. It does not keep
// line.
func (a Announce) Match(line []byte) (string, bool) {
	switch {
	case a.pattern != nil:
		m := a.pattern.FindSubmatch(line)
		if m == nil || len(m[1]) == 0 {
			return "", false
		}
		return string(m[1]), true
	case a.mode != AnnouncePath:
		return "", false
	}
	line = bytes.TrimSpace(line)
	if len(line) == 0 || len(line) > maxAnnounced || line[0] == '[' || bytes.IndexByte(line, 0) >= 0 {
		return "", false
	}
	return string(line), true
}

// ErrNotAnnounced says a "path" line named nothing on disk: it was output, not
// an announcement, and is not worth a word.
var ErrNotAnnounced = errors.New("names no file")

// ArchiveName is the downloader's record of what it finished, in the task's
// folder: the default download.command passes
// `--download-archive {dir}/.download-archive` to yt-dlp, so that a task run
// again does not download a finished lesson again. Hidden, so Folder does not
// count it; the worker never uploads it.
const ArchiveName = ".download-archive"

// Owned reports whether rel, a path relative to the task's folder, is a file
// of the worker's own there (the cookies copy, the download archive), which is
// never uploaded.
func Owned(rel string) bool { return rel == CookiesName || rel == ArchiveName }

// PartialPatterns match the names of files a downloader is still writing
// (yt-dlp's ".part", ".ytdl", ".temp" and fragment files), which are never
// uploaded; they are globs as rclone's filters read them, each matching a
// file's name at any depth.
var PartialPatterns = []string{"*.part", "*.ytdl", "*.temp", "*.frag", "*-Frag*"}

// Partial reports whether a file's name is that of a partial file.
func Partial(name string) bool {
	for _, p := range PartialPatterns {
		if ok, _ := path.Match(p, name); ok {
			return true
		}
	}
	return false
}

// Announced is a finished file the downloader announced, checked.
type Announced struct {
	Rel  string // relative to the task's folder, slash-separated
	Size int64
}

// Check decides on a path the downloader announced (see Announce.Match):
// absolute or relative to dir, the task's folder, it must name a regular file
// inside dir, reached through real directories only (no symlink anywhere on
// the way), neither partial nor the worker's own. A path that names nothing
// gives an error wrapping ErrNotAnnounced; any other error says why the file
// is refused.
func Check(dir, announced string) (Announced, error) {
	dir = filepath.Clean(dir)
	p := announced
	if !filepath.IsAbs(p) {
		p = filepath.Join(dir, p)
	}
	p = filepath.Clean(p)
	if _, err := os.Lstat(p); err != nil {
		return Announced{}, fmt.Errorf("%w: %w", ErrNotAnnounced, err)
	}
	rel, err := filepath.Rel(dir, p)
	if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, "../") {
		return Announced{}, errors.New("outside the task folder")
	}
	var fi os.FileInfo
	at := dir
	for _, part := range strings.Split(rel, "/") {
		at = filepath.Join(at, part)
		if fi, err = os.Lstat(at); err != nil {
			return Announced{}, err
		}
		if at != p && !fi.IsDir() {
			return Announced{}, fmt.Errorf("reached through a %s (%s)", Kind(fi.Mode()), at)
		}
	}
	switch {
	case !fi.Mode().IsRegular():
		return Announced{}, fmt.Errorf("a %s, not a regular file", Kind(fi.Mode()))
	case Partial(fi.Name()):
		return Announced{}, errors.New("a partial file")
	case Owned(rel):
		return Announced{}, errors.New("a file of the worker's own")
	}
	return Announced{Rel: rel, Size: fi.Size()}, nil
}
