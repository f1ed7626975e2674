package download

import (
	"os"
	"path/filepath"
	"testing"
)

func TestCopyCookiesGivesEachTaskItsOwnCopy(t *testing.T) {
	src := filepath.Join(t.TempDir(), "cookies.txt")
	orig := "# Netscape HTTP Cookie File\n.example.com\tTRUE\t/\tTRUE\t0\tsession\tsecret-value\n"
	if err := os.WriteFile(src, []byte(orig), 0o640); err != nil {
		t.Fatal(err)
	}
	a, b := t.TempDir(), t.TempDir()
	pa, err := CopyCookies(src, a)
	if err != nil {
		t.Fatal(err)
	}
	pb, err := CopyCookies(src, b)
	if err != nil {
		t.Fatal(err)
	}
	if pa == pb || filepath.Dir(pa) != a {
		t.Fatalf("copies %s and %s: want one in each task folder", pa, pb)
	}
	fi, err := os.Stat(pa)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("copy mode %v (%v), want 0600", fi.Mode().Perm(), err)
	}
	// A downloader writes its jar back into its copy: the other copy and the
	// original do not change.
	if err := os.WriteFile(pa, []byte("rewritten by yt-dlp"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{src, pb} {
		if got, _ := os.ReadFile(p); string(got) != orig {
			t.Fatalf("%s changed when another task's copy was written: %q", p, got)
		}
	}
	// A second copy into the same folder (a re-run) replaces the first.
	if _, err := CopyCookies(src, a); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(pa); string(got) != orig {
		t.Fatalf("re-run's copy = %q", got)
	}
	if name, _, _ := Folder(a, 7); name != "task-7" {
		t.Fatalf("Folder of a task folder holding only the cookies copy = %q, want the fallback", name)
	}
	if err := RemoveCookies(a); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(pa); !os.IsNotExist(err) {
		t.Fatalf("copy still there after RemoveCookies: %v", err)
	}
	if err := RemoveCookies(a); err != nil {
		t.Fatalf("RemoveCookies of a folder without a copy: %v", err)
	}
}

func TestCopyCookiesDoesNotFollowALinkInTheTaskFolder(t *testing.T) {
	src := filepath.Join(t.TempDir(), "cookies.txt")
	if err := os.WriteFile(src, []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	target := filepath.Join(t.TempDir(), "elsewhere")
	if err := os.Symlink(target, filepath.Join(dir, CookiesName)); err != nil {
		t.Fatal(err)
	}
	if _, err := CopyCookies(src, dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(target); !os.IsNotExist(err) {
		t.Fatal("the copy was written through a link planted in the task folder")
	}
}

func TestExpandFillsCookiesAndProxy(t *testing.T) {
	got := Expand([]string{"dl", "--cookies", "{cookies}", "--proxy", "{proxy}", "{url}"},
		Job{URL: "https://x/c", Cookies: "/s/task-1/.cookies.txt", Proxy: "http://127.0.0.1:4000"})
	want := []string{"dl", "--cookies", "/s/task-1/.cookies.txt", "--proxy", "http://127.0.0.1:4000", "https://x/c"}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("Expand = %q, want %q", got, want)
		}
	}
}
