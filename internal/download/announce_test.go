package download

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseAnnounce(t *testing.T) {
	tests := []struct {
		in, str, err string
		enabled      bool
	}{
		{in: "path", str: "path", enabled: true},
		{in: "none", str: "none"},
		{in: `re:^DONE (.+)$`, str: `re:^DONE (.+)$`, enabled: true},
		{in: `re:^DONE .+$`, err: "exactly one capture group (the path), it has 0"},
		{in: `re:^(DONE) (.+)$`, err: "it has 2"},
		{in: `re:(`, err: "bad regular expression"},
		{in: "", err: `must be "path", "none" or "re:"`},
		{in: "Path", err: `got "Path"`},
	}
	for _, tc := range tests {
		a, err := ParseAnnounce(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseAnnounce(%q) = %v, want an error with %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || a.String() != tc.str || a.Enabled() != tc.enabled {
			t.Errorf("ParseAnnounce(%q) = %v (enabled %v), %v", tc.in, a, a.Enabled(), err)
		}
	}
	if (Announce{}).Enabled() || (Announce{}).String() != "none" {
		t.Error("the zero Announce announces")
	}
}

func TestAnnounceMatch(t *testing.T) {
	path, _ := ParseAnnounce("path")
	re, _ := ParseAnnounce(`re:^\[done\] (.*)$`)
	tests := []struct {
		a    Announce
		line string
		want string // "" for no match
	}{
		{path, "/staging/task-1/Course/a.mp4", "/staging/task-1/Course/a.mp4"},
		{path, "  Course/a.mp4 \r", "Course/a.mp4"},
		{path, "[download]  42.0% of 10.00MiB", ""},
		{path, "", ""},
		{path, "   ", ""},
		{path, "a\x00b", ""},
		{path, strings.Repeat("a", 4097), ""},
		{re, "[done] Course/a.mp4", "Course/a.mp4"},
		{re, "[done] ", ""},
		{re, "Course/a.mp4", ""},
		{Announce{}, "/staging/task-1/Course/a.mp4", ""},
	}
	for _, tc := range tests {
		got, ok := tc.a.Match([]byte(tc.line))
		if got != tc.want || ok != (tc.want != "") {
			t.Errorf("%v.Match(%q) = %q, %v; want %q", tc.a, tc.line, got, ok, tc.want)
		}
	}
}

func TestPartial(t *testing.T) {
	for name, want := range map[string]bool{
		"a.mp4.part": true, "a.mp4.ytdl": true, "a.temp": true, "a.frag": true,
		"a.f137.mp4.part-Frag12": true, "a.mp4-Frag3": true, "a.part-Frag3.part": true,
		"a.mp4": false, "party.mp4": false, "a.part.mp4": false, "Fragments.mp4": false,
	} {
		if got := Partial(name); got != want {
			t.Errorf("Partial(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestCheck(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "task-1")
	outside := filepath.Join(root, "secret.txt")
	write(t, outside, "secret")
	write(t, filepath.Join(dir, "Course", "ch 1", "a.mp4"), "lesson")
	write(t, filepath.Join(dir, "Course", "b.mp4.part"), "half")
	write(t, filepath.Join(dir, ".cookies.txt"), "jar")
	write(t, filepath.Join(dir, ".download-archive"), "generic 1")
	write(t, filepath.Join(dir, "top.mp4"), "x")
	mustDo(t, os.Symlink(outside, filepath.Join(dir, "Course", "link.mp4")))
	mustDo(t, os.Symlink(root, filepath.Join(dir, "Course", "up")))
	tests := []struct {
		announced string
		rel       string // the accepted file's
		err       string // or the refusal's
	}{
		{announced: filepath.Join(dir, "Course", "ch 1", "a.mp4"), rel: "Course/ch 1/a.mp4"},
		{announced: "Course/ch 1/a.mp4", rel: "Course/ch 1/a.mp4"},
		{announced: "Course/./ch 1/../ch 1/a.mp4", rel: "Course/ch 1/a.mp4"},
		{announced: "top.mp4", rel: "top.mp4"},
		{announced: outside, err: "outside the task folder"},
		{announced: "../secret.txt", err: "outside the task folder"},
		{announced: dir, err: "outside the task folder"},
		{announced: "Course/up/secret.txt", err: "reached through a symlink"},
		{announced: "Course/link.mp4", err: "a symlink, not a regular file"},
		{announced: "Course/ch 1", err: "a folder, not a regular file"},
		{announced: "Course/b.mp4.part", err: "a partial file"},
		{announced: ".cookies.txt", err: "the worker's own"},
		{announced: ".download-archive", err: "the worker's own"},
		{announced: "Course/nothing.mp4", err: "names no file"},
		{announced: "hello world", err: "names no file"},
	}
	for _, tc := range tests {
		got, err := Check(dir, tc.announced)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("Check(%q) = %+v, %v; want an error with %q", tc.announced, got, err, tc.err)
			}
			if strings.Contains(tc.err, "names no file") != errors.Is(err, ErrNotAnnounced) {
				t.Errorf("Check(%q): %v, ErrNotAnnounced %v", tc.announced, err, errors.Is(err, ErrNotAnnounced))
			}
			continue
		}
		if err != nil || got.Rel != tc.rel || got.Size == 0 {
			t.Errorf("Check(%q) = %+v, %v; want %q", tc.announced, got, err, tc.rel)
		}
	}
}

func write(t *testing.T, path, text string) {
	t.Helper()
	mustDo(t, os.MkdirAll(filepath.Dir(path), 0o750))
	mustDo(t, os.WriteFile(path, []byte(text), 0o640))
}
