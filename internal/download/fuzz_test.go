package download

import (
	"path/filepath"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// FuzzSanitize checks that whatever name a downloader gives its folder, the
// {folder} made of it is one safe path segment (seeds: testdata/fuzz/FuzzSanitize
// and the cases below).
func FuzzSanitize(f *testing.F) {
	for _, s := range []string{
		"Go In Depth", "../../etc/passwd", "..", ".", "a/b\\c", "Part\t1\nA\r\x00",
		"Invoice\u202egpj.exe", strings.Repeat("é", 150), strings.Repeat("a", 199) + " ..", "a\xffb",
		"$(touch x); `id` | --exec", " . .hidden. . ",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		got := Sanitize(name)
		if got == "" {
			return
		}
		switch {
		case len(got) > maxName:
			t.Fatalf("Sanitize(%q) is %d bytes", name, len(got))
		case !utf8.ValidString(got):
			t.Fatalf("Sanitize(%q) = %q is not UTF-8", name, got)
		case strings.ContainsAny(got, "/\\"):
			t.Fatalf("Sanitize(%q) = %q holds a separator", name, got)
		case strings.ContainsFunc(got, func(r rune) bool { return unicode.IsControl(r) || invisible(r) }):
			t.Fatalf("Sanitize(%q) = %q holds a control character", name, got)
		case strings.HasPrefix(got, ".") || strings.HasPrefix(got, " ") ||
			strings.HasSuffix(got, ".") || strings.HasSuffix(got, " "):
			t.Fatalf("Sanitize(%q) = %q starts or ends with a dot or a space", name, got)
		case Sanitize(got) != got:
			t.Fatalf("Sanitize is not idempotent: %q -> %q -> %q", name, got, Sanitize(got))
		}
		// Joined to a folder, it names an entry right inside that folder.
		const dir = "/srv/staging/task-1"
		if p := filepath.Join(dir, got); filepath.Dir(p) != dir || filepath.Base(p) != got {
			t.Fatalf("Sanitize(%q) = %q escapes %s as %s", name, got, dir, p)
		}
	})
}
