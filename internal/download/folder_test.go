package download

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSanitize(t *testing.T) {
	long := strings.Repeat("é", 150) // 300 bytes
	tests := []struct {
		name, in, want string
	}{
		{"plain", "Go In Depth", "Go In Depth"},
		{"unicode kept", "Curso de Programação 🚀", "Curso de Programação 🚀"},
		{"slashes", "AC/DC\\Live", "AC_DC_Live"},
		{"dot", ".", ""},
		{"dot dot", "..", ""},
		{"traversal", "../../etc", "_.._etc"},
		{"leading dots and spaces", " . .hidden", "hidden"},
		{"trailing spaces and dots", "Course . . ", "Course"},
		{"white-space controls", "Part\t1\nA", "Part 1 A"},
		{"other controls dropped", "a\x00b\x1bc\x7fd\u0085e", "abcd e"},
		{"invalid utf-8", "a\xffb", "a_b"},
		{"empty", "", ""},
		{"only spaces", "   ", ""},
		{"only controls", "\x01\x02", ""},
		{"cut to 200 bytes on a rune boundary", long, strings.Repeat("é", 100)},
		{"cut then trimmed", strings.Repeat("a", 199) + " b", strings.Repeat("a", 199)},
		{"unicode white space", "A\u00a0B\u2028C\u2029D", "A B C D"},
		{"bidi override", "Invoice\u202egpj.exe", "Invoicegpj.exe"},
		{"isolates and marks", "\u2066a\u2069\u200eb\u200f\ufeff", "ab"},
		{"zero-width joiner kept", "👨\u200d👩", "👨\u200d👩"},
		{"escape sequence", "\x1b[31mred\x1b[0m", "[31mred[0m"},
		{"shell syntax kept as text", "$(rm -rf ~) `id` ; | &", "$(rm -rf ~) `id` ; | &"},
		{"option-like kept: it is never an argument on its own", "--exec=id", "--exec=id"},
		{"dots between slashes", "./.././..", "_.._._"},
		{"only dots after cleaning", ".\x00.\u202e.", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Sanitize(tt.in)
			if got != tt.want {
				t.Errorf("Sanitize(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if len(got) > maxName || strings.ContainsAny(got, "/\\") || got == "." || got == ".." {
				t.Errorf("Sanitize(%q) = %q is not a safe segment", tt.in, got)
			}
		})
	}
}

func TestFolder(t *testing.T) {
	tests := []struct {
		name  string
		dirs  []string
		files []string
		links []string // symlinks to a directory
		want  string
	}{
		{"one folder", []string{"Go In Depth"}, nil, nil, "Go In Depth"},
		{"hidden entries ignored", []string{"Course", ".cache"}, []string{".part"}, nil, "Course"},
		{"sanitized", []string{" ..Course. "}, nil, nil, "Course"},
		{"sanitized to nothing", []string{"..."}, nil, nil, "task-42"},
		{"nothing", nil, nil, nil, "task-42"},
		{"only hidden", []string{".tmp"}, nil, nil, "task-42"},
		{"a file", nil, []string{"video.mp4"}, nil, "task-42"},
		{"several folders", []string{"A", "B"}, nil, nil, "task-42"},
		{"a folder and a file", []string{"A"}, []string{"log.txt"}, nil, "task-42"},
		{"a symlink to a folder", nil, nil, []string{"Course"}, "task-42"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := entries(t, tt.dirs, tt.files)
			for _, l := range tt.links {
				mustDo(t, os.Symlink(t.TempDir(), filepath.Join(dir, l)))
			}
			got, source, err := Folder(dir, 42)
			if err != nil || got != tt.want {
				t.Errorf("Folder = %q, %v; want %q", got, err, tt.want)
			}
			// The source is the real folder on disk (its name may differ from the
			// safe one), or dir itself for the fallback.
			if fi, err := os.Stat(source); err != nil || !fi.IsDir() || (got == "task-42") != (source == dir) {
				t.Errorf("source = %q for folder %q", source, got)
			}
		})
	}
}

// A task folder the downloader replaced with a symlink (or a file) is an error,
// never followed.
func TestFolderReplaced(t *testing.T) {
	root := t.TempDir()
	outside := filepath.Join(root, "outside")
	mustDo(t, os.MkdirAll(filepath.Join(outside, "Secrets"), 0o755))
	link := filepath.Join(root, "task-42")
	mustDo(t, os.Symlink(outside, link))
	if _, _, err := Folder(link, 42); err == nil || !strings.Contains(err.Error(), "replaced by a symlink") {
		t.Errorf("Folder(symlink) = %v, want an error", err)
	}
	file := filepath.Join(root, "task-43")
	mustDo(t, os.WriteFile(file, nil, 0o600))
	if _, _, err := Folder(file, 43); err == nil || !strings.Contains(err.Error(), "replaced by a file") {
		t.Errorf("Folder(file) = %v, want an error", err)
	}
}

func TestFolderMissingDir(t *testing.T) {
	if _, _, err := Folder(filepath.Join(t.TempDir(), "gone"), 1); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("err = %v, want not exist", err)
	}
}

func mustDo(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// Files gone to the destination count as if they were still there: the name
// is the one the folder had before they went.
func TestFolderOf(t *testing.T) {
	tests := []struct {
		name   string
		dirs   []string // on disk
		files  []string // on disk
		gone   []string
		want   string
		source string // relative to the task folder; "" for itself
	}{
		{"all gone, folder left", []string{"Course"}, nil, []string{"Course/a.mp4", "Course/ch 1/b.mp4"}, "Course", "Course"},
		{"all gone, folder removed", nil, nil, []string{"Course/a.mp4"}, "Course", "Course"},
		{"a gone file at the top", []string{"Course"}, nil, []string{"intro.mp4"}, "task-42", ""},
		{"two folders, one gone", []string{"B"}, nil, []string{"A/a.mp4"}, "task-42", ""},
		{"gone and left in one folder", []string{"Course"}, []string{"Course/b.mp4"}, []string{"Course/a.mp4"}, "Course", "Course"},
		{"hidden gone entries ignored", []string{"Course"}, nil, []string{".extra/a.mp4", ".x"}, "Course", "Course"},
		{"nothing gone", []string{"Course"}, nil, nil, "Course", "Course"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := entries(t, tt.dirs, tt.files)
			got, source, err := FolderOf(dir, 42, tt.gone)
			if err != nil || got != tt.want || source != filepath.Join(dir, tt.source) {
				t.Errorf("FolderOf = %q, %q, %v; want %q, %q", got, source, err, tt.want, filepath.Join(dir, tt.source))
			}
		})
	}
}

// entries makes a task folder holding the folders dirs and the files files.
func entries(t *testing.T, dirs, files []string) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range dirs {
		mustDo(t, os.Mkdir(filepath.Join(dir, d), 0o755))
	}
	for _, f := range files {
		mustDo(t, os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o644))
	}
	return dir
}
