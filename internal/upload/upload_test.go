package upload

import (
	"context"
	"errors"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coursedl/worker/internal/process"
)

// rcloneSetup makes a source folder with files and an rclone config whose remote
// "local" stands in for Google Drive.
func rcloneSetup(t *testing.T) (src, dst, conf string) {
	t.Helper()
	if _, err := exec.LookPath("rclone"); err != nil {
		t.Fatalf("rclone is needed (apt-get install rclone): %v", err)
	}
	root := t.TempDir()
	src = filepath.Join(root, "task-7", "Go In Depth")
	for _, f := range []string{"01 intro.mp4", "sub/02 next.mp4"} {
		p := filepath.Join(src, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("video "+f), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	dst = filepath.Join(root, "drive")
	conf = filepath.Join(root, "rclone.conf")
	if err := os.WriteFile(conf, []byte("[local]\ntype = local\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return src, dst, conf
}

type lines struct {
	mu  sync.Mutex
	all []string
}

func (l *lines) add(_ process.Stream, b []byte) {
	l.mu.Lock()
	l.all = append(l.all, string(b))
	l.mu.Unlock()
}

func TestMoveAndURLTemplate(t *testing.T) {
	src, dst, conf := rcloneSetup(t)
	u := &Uploader{
		Rclone:      "rclone",
		Config:      conf,
		Dest:        "local:" + dst + "/{folder}",
		Link:        true, // the local backend gives no link: the template is used
		URLTemplate: "https://drive.example/{task_id}/{folder}?u={email}",
		Timeout:     time.Minute,
	}
	var out lines
	began := time.Now()
	res, err := u.Upload(context.Background(), Request{TaskID: 7, Source: src, Folder: "Go In Depth", Email: "b@x.io"}, out.add)
	took := time.Since(began)
	if err != nil {
		t.Fatal(err)
	}
	if res.Ran <= 0 || res.Ran > took {
		t.Errorf("rclone ran %s of an upload that took %s", res.Ran, took)
	}
	if res.Dest != "local:"+dst+"/Go In Depth" {
		t.Errorf("dest = %q", res.Dest)
	}
	if res.URL != "https://drive.example/7/Go%20In%20Depth?u=b@x.io" {
		t.Errorf("url = %q", res.URL)
	}
	files, err := Files(filepath.Join(dst, "Go In Depth"))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(files)
	if !reflect.DeepEqual(files, []string{"01 intro.mp4", "sub/02 next.mp4"}) {
		t.Errorf("uploaded %v", files)
	}
	if left, _ := Files(src); len(left) != 0 {
		t.Errorf("source still holds %v after move", left)
	}
	joined := strings.Join(out.all, "\n")
	if !strings.Contains(joined, `"level"`) || !strings.Contains(joined, `"stats"`) {
		t.Errorf("rclone's JSON log did not reach the line handler:\n%s", joined)
	}
}

func TestNoLinkNoTemplate(t *testing.T) {
	src, dst, conf := rcloneSetup(t)
	u := &Uploader{Rclone: "rclone", Config: conf, Dest: "local:" + dst, Link: true, Timeout: time.Minute}
	_, err := u.Upload(context.Background(), Request{TaskID: 1, Source: src, Folder: "x"}, nil)
	var ue *Error
	if !errors.As(err, &ue) || ue.Op != "link" || !strings.Contains(err.Error(), "public links") {
		t.Fatalf("err = %v, want rclone link's own reason", err)
	}
}

func TestMoveFails(t *testing.T) {
	src, _, conf := rcloneSetup(t)
	u := &Uploader{Rclone: "rclone", Config: conf, Dest: "nosuchremote:x", Link: false, URLTemplate: "https://x/{folder}", Timeout: time.Minute}
	_, err := u.Upload(context.Background(), Request{TaskID: 1, Source: src, Folder: "x"}, nil)
	var ue *Error
	if !errors.As(err, &ue) || ue.Op != "move" || ue.ExitCode == 0 {
		t.Fatalf("err = %v", err)
	}
	if !strings.Contains(err.Error(), "didn't find section in config file") {
		t.Errorf("error lacks rclone's reason: %v", err)
	}
}

// A symlink the downloader left pointing outside the task folder is not followed.
func TestSymlinkNotFollowed(t *testing.T) {
	src, dst, conf := rcloneSetup(t)
	secret := filepath.Join(t.TempDir(), "secret.txt")
	if err := os.WriteFile(secret, []byte("host secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(secret, filepath.Join(src, "link.txt")); err != nil {
		t.Fatal(err)
	}
	u := &Uploader{Rclone: "rclone", Config: conf, Dest: "local:" + dst, URLTemplate: "https://x/", Timeout: time.Minute}
	if _, err := u.Upload(context.Background(), Request{TaskID: 1, Source: src, Folder: "x"}, nil); err != nil {
		t.Fatal(err)
	}
	// On a local remote rclone may rename the folder whole, symlink included; what
	// must never happen is the target's content arriving as a file.
	if fi, err := os.Lstat(filepath.Join(dst, "link.txt")); err == nil && fi.Mode().IsRegular() {
		t.Fatal("the symlink's target was uploaded as a file")
	}
	if b, err := os.ReadFile(secret); err != nil || string(b) != "host secret" {
		t.Fatal("the symlink's target was moved")
	}
}

func TestTemporary(t *testing.T) {
	cases := []struct {
		code int
		want bool
	}{{1, true}, {2, true}, {3, false}, {4, false}, {5, true}, {6, true}, {7, false}, {8, false}, {9, false}}
	for _, tc := range cases {
		e := &Error{Op: "move", ExitCode: tc.code, Err: &process.ExitError{Program: "rclone", ExitCode: tc.code}}
		if e.Temporary() != tc.want {
			t.Errorf("exit %d: Temporary = %v", tc.code, !tc.want)
		}
	}
	e := &Error{Op: "move", ExitCode: -1, Err: &process.ExitError{Program: "rclone", ExitCode: -1, TimedOut: true}}
	if !e.Temporary() {
		t.Error("a time-out is temporary")
	}
}

// hostileSource is a course folder as a hostile downloader could leave it: real
// lessons, plus symlinks to a file and to a folder outside the task's folder.
func hostileSource(t *testing.T, src string) (outside string) {
	t.Helper()
	outside = t.TempDir()
	mustWrite(t, filepath.Join(outside, "secret.txt"), "host secret")
	mustWrite(t, filepath.Join(outside, "dir", "token.json"), "host token")
	for name, target := range map[string]string{
		"escape.txt":     filepath.Join(outside, "secret.txt"),
		"sub/escape-dir": filepath.Join(outside, "dir"),
		"dangling":       filepath.Join(outside, "nothing-here"),
	} {
		if err := os.Symlink(target, filepath.Join(src, name)); err != nil {
			t.Fatal(err)
		}
	}
	return outside
}

// Symlinks inside the folder are skipped, never followed: rclone runs without
// -L/--copy-links. The remote is named "gd", not "local", so that rclone cannot
// rename the folder whole (as it may between two local paths of one remote) and
// has to move file by file, as it does to Google Drive.
func TestSymlinksInsideNotFollowed(t *testing.T) {
	src, dst, conf := rcloneSetup(t)
	mustWrite(t, conf, "[gd]\ntype = local\n")
	outside := hostileSource(t, src)
	u := &Uploader{Rclone: "rclone", Config: conf, Dest: "gd:" + dst + "/{folder}", URLTemplate: "https://x/", Timeout: time.Minute}
	var out lines
	if _, err := u.Upload(context.Background(), Request{TaskID: 1, Source: src, Folder: "Course"}, out.add); err != nil {
		t.Fatal(err)
	}
	var got []string
	err := filepath.WalkDir(dst, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(dst, p)
			got = append(got, rel+" ("+d.Type().String()+")")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	want := []string{"Course/01 intro.mp4 (----------)", "Course/sub/02 next.mp4 (----------)"}
	if !slices.Equal(got, want) {
		t.Errorf("destination holds %q, want only the real lessons %q\nrclone said:\n%s", got, want, strings.Join(out.all, "\n"))
	}
	for _, f := range []string{"secret.txt", "dir/token.json"} {
		if _, err := os.Stat(filepath.Join(outside, f)); err != nil {
			t.Errorf("a symlink's target was moved: %v", err)
		}
	}
	if !strings.Contains(strings.Join(out.all, "\n"), "symlink") {
		t.Errorf("rclone did not say it skipped the symlinks:\n%s", strings.Join(out.all, "\n"))
	}
}

// A source that is itself a symlink (the downloader replaced its folder with a
// link to somewhere else) is refused before rclone runs: moving it would empty
// the link's target.
func TestSourceSymlinkRefused(t *testing.T) {
	_, dst, conf := rcloneSetup(t)
	outside := t.TempDir()
	mustWrite(t, filepath.Join(outside, "important.txt"), "keep me")
	task := t.TempDir()
	link := filepath.Join(task, "Course")
	if err := os.Symlink(outside, link); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(task, "file")
	mustWrite(t, file, "x")
	u := &Uploader{Rclone: "rclone", Config: conf, Dest: "local:" + dst, URLTemplate: "https://x/", Timeout: time.Minute}
	for _, tc := range []struct{ source, want string }{
		{link, "is a symlink, not a folder"},
		{file, "is a file, not a folder"},
		{filepath.Join(task, "missing"), "no such file"},
	} {
		_, err := u.Upload(context.Background(), Request{TaskID: 1, Source: tc.source, Folder: "Course"}, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Upload(%s) = %v, want %q", tc.source, err, tc.want)
		}
	}
	if _, err := os.Stat(filepath.Join(outside, "important.txt")); err != nil {
		t.Fatalf("the link's target lost its file: %v", err)
	}
	if _, err := os.Stat(dst); !os.IsNotExist(err) {
		t.Fatalf("something reached the destination: %v", err)
	}
}

// {folder} and {email} stay within one segment of the destination path.
func TestDestPlaceholdersStayInOneSegment(t *testing.T) {
	src, dst, conf := rcloneSetup(t)
	u := &Uploader{Rclone: "rclone", Config: conf, Dest: "local:" + dst + "/{email}/{folder}", URLTemplate: "https://x/", Timeout: time.Minute}
	res, err := u.Upload(context.Background(), Request{TaskID: 1, Source: src, Folder: "..", Email: "a/../../../b\\c@x.io"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := "local:" + dst + "/a_.._.._.._b_c@x.io/_"; res.Dest != want {
		t.Errorf("dest = %q, want %q", res.Dest, want)
	}
	if files, _ := Files(filepath.Join(dst, "a_.._.._.._b_c@x.io", "_")); len(files) != 2 {
		t.Errorf("files not where the dest says: %v", files)
	}
}

// rclone gets PATH, HOME, LANG and upload.env, never the worker's environment.
func TestRcloneEnvironment(t *testing.T) {
	src, dst, conf := rcloneSetup(t)
	t.Setenv("WORKER_WEBHOOK_SECRET", "whsec_must-not-leak")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "must-not-leak-either")
	dump := filepath.Join(t.TempDir(), "env.txt")
	wrapper := filepath.Join(t.TempDir(), "rclone-wrapper")
	mustWrite(t, wrapper, "#!/bin/sh\nenv >>\"$ENV_DUMP\"\nexec rclone \"$@\"\n")
	if err := os.Chmod(wrapper, 0o755); err != nil {
		t.Fatal(err)
	}
	u := &Uploader{Rclone: wrapper, Config: conf, Dest: "local:" + dst, URLTemplate: "https://x/", Link: true,
		Timeout: time.Minute, Env: []string{"ENV_DUMP=" + dump, "RCLONE_TRANSFERS=2"}}
	if _, err := u.Upload(context.Background(), Request{TaskID: 1, Source: src, Folder: "x"}, nil); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(dump)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]int{}
	for _, kv := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		name, _, _ := strings.Cut(kv, "=")
		names[name]++
	}
	delete(names, "PWD") // set by the shell of the wrapper itself
	delete(names, "SHLVL")
	delete(names, "_")
	want := []string{"ENV_DUMP", "HOME", "LANG", "PATH", "RCLONE_TRANSFERS"}
	if got := slices.Sorted(maps.Keys(names)); !slices.Equal(got, want) {
		t.Errorf("rclone's environment holds %q, want %q", got, want)
	}
	if names["PATH"] != 3 { // listremotes (is the remote Drive?), move and link
		t.Errorf("the wrapper ran %d times, want 3 (listremotes, move and link)", names["PATH"])
	}
}

func mustWrite(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestSize(t *testing.T) {
	src, _, _ := rcloneSetup(t)
	if err := os.Symlink("/etc/hostname", filepath.Join(src, "link")); err != nil {
		t.Fatal(err)
	}
	// Partial files and the worker's own are not uploaded: not counted.
	for _, n := range []string{"03.mp4.part", "sub/04.mp4.part-Frag2", ".download-archive", ".cookies.txt"} {
		mustWrite(t, filepath.Join(src, n), "x")
	}
	got, err := Size(src)
	want := Tally{Files: 2, Bytes: int64(len("video 01 intro.mp4") + len("video sub/02 next.mp4"))}
	if err != nil || got != want {
		t.Fatalf("Size = %+v, %v; want %+v", got, err, want)
	}
}
