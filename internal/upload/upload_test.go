package upload

import (
	"context"
	"errors"
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
	res, err := u.Upload(context.Background(), Request{TaskID: 7, Source: src, Folder: "Go In Depth", Email: "b@x.io"}, out.add)
	if err != nil {
		t.Fatal(err)
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
