package download

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/coursedl/worker/internal/job"
)

// maxName is the longest name Sanitize returns, in bytes.
const maxName = 200

// Folder returns the name of the single top-level directory the downloader
// made in dir, made safe by Sanitize; hidden entries (".something") are not
// counted. When dir holds anything else (nothing, a file, a symlink, several
// entries), or the name sanitizes to nothing, it returns "task-<taskID>".
//
// The name may differ from the directory's name on disk, so Folder also returns
// source, the path whose contents are to be uploaded: that directory, or dir
// itself when the name is the fallback.
//
// dir itself must still be a directory: a downloader that replaced the task's
// folder with a symlink would otherwise have its target uploaded (and, rclone
// moving, emptied). That is an error.
func Folder(dir string, taskID int64) (name, source string, err error) {
	return FolderOf(dir, taskID, nil)
}

// FolderOf is Folder for a task folder some of whose files have gone to the
// destination already, while the download went on: gone lists them, relative
// to dir and slash-separated, and each counts as if it were still there (a
// top-level file as a file, a deeper one as its top-level folder). The name is
// then the one Folder would have given before any file went. source may no
// longer exist when every file under it has gone.
func FolderOf(dir string, taskID int64, gone []string) (name, source string, err error) {
	fi, err := os.Lstat(dir)
	if err != nil {
		return "", "", fmt.Errorf("download task %d: find folder: %w", taskID, err)
	}
	if !fi.IsDir() {
		return "", "", fmt.Errorf("download task %d: the task folder %s was replaced by a %s", taskID, dir, Kind(fi.Mode()))
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", "", fmt.Errorf("download task %d: find folder: %w", taskID, err)
	}
	top := map[string]bool{} // name: whether it is a real directory
	for _, e := range entries {
		top[e.Name()] = e.IsDir()
	}
	for _, rel := range gone {
		first, _, deeper := strings.Cut(rel, "/")
		if _, seen := top[first]; !seen { // what is on disk says what it is
			top[first] = deeper
		}
	}
	fallback := job.Name(taskID)
	only, isDir := "", false
	for n, d := range top {
		if strings.HasPrefix(n, ".") {
			continue
		}
		if only != "" {
			return fallback, dir, nil
		}
		only, isDir = n, d
	}
	if only == "" || !isDir {
		return fallback, dir, nil
	}
	if name := Sanitize(only); name != "" {
		return name, filepath.Join(dir, only), nil
	}
	return fallback, dir, nil
}

// Sanitize makes name a safe path segment: '/', '\\' and bytes that are not
// UTF-8 become '_', white space other than a plain space (tab, newline, U+2028,
// no-break space...) becomes a space, other control characters and the
// invisible characters that reorder text (bidi controls such as U+202E, which
// can make "gpj.exe" read "exe.jpg") or mark byte order are dropped; leading dots
// and spaces and trailing spaces and dots are trimmed (so never "." or ".."),
// and the result is cut to 200 bytes on a character boundary. It returns "" if
// nothing is left.
func Sanitize(name string) string {
	var b strings.Builder
	b.Grow(len(name))
	for len(name) > 0 {
		r, size := utf8.DecodeRuneInString(name)
		switch {
		case r == '/', r == '\\', r == utf8.RuneError && size == 1:
			b.WriteByte('_')
		case unicode.IsSpace(r):
			b.WriteByte(' ')
		case unicode.IsControl(r), invisible(r):
		default:
			b.WriteString(name[:size])
		}
		name = name[size:]
	}
	s := strings.TrimLeft(b.String(), ". ")
	if len(s) > maxName {
		cut := maxName
		for !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut]
	}
	return strings.TrimRight(s, ". ")
}

// invisible reports whether r is a bidi control or a byte order mark: format
// characters that change how a name reads without being seen. Other format
// characters, such as the zero-width joiner inside emoji, are kept.
func invisible(r rune) bool {
	switch {
	case r == 0x200e, r == 0x200f, // left-to-right and right-to-left marks
		r >= 0x202a && r <= 0x202e, // embeddings and overrides
		r >= 0x2066 && r <= 0x2069, // isolates
		r == 0x061c,                // Arabic letter mark
		r == 0xfeff:                // byte order mark
		return true
	}
	return false
}

// Kind names what a file of mode m is ("symlink", "file", "folder", "special
// file"), for an error about something that should have been another kind.
func Kind(m os.FileMode) string {
	switch {
	case m&os.ModeSymlink != 0:
		return "symlink"
	case m.IsRegular():
		return "file"
	case m.IsDir():
		return "folder"
	}
	return "special file"
}
