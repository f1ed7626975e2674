package upload

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

func TestRemoteOf(t *testing.T) {
	cases := []struct {
		dest, name, backend string
		ok                  bool
	}{
		{"gd:Courses/{folder}", "gd", "", true},
		{"gd:", "gd", "", true},
		{"gd,shared_with_me:x", "gd", "", true},
		{"my remote:x", "my remote", "", true},
		{"C:x", "C", "", true}, // Linux: a remote, not a drive letter
		{":drive:Courses/{folder}", "", "drive", true},
		{":drive,scope=drive,root_folder_id='a:b':x", "", "drive", true},
		{":local:/srv/x", "", "local", true},
		{"/srv/drive/{folder}", "", "", true},
		{"./a:b", "", "", true},
		{`a\b:c`, "", "", true},
		{"relative/{folder}", "", "", true},
		{"gd", "", "", true},
		{"{email}:x", "", "", false},
		{"gd{task_id}:x", "", "", false},
	}
	for _, tc := range cases {
		name, backend, ok := remoteOf(tc.dest)
		if name != tc.name || backend != tc.backend || ok != tc.ok {
			t.Errorf("remoteOf(%q) = %q, %q, %v; want %q, %q, %v", tc.dest, name, backend, ok, tc.name, tc.backend, tc.ok)
		}
	}
}

// fakeRclone is testdata/fake-rclone set up for one test: the argv of each of
// its runs is recorded, and what it answers in place of rclone is set by env.
type fakeRclone struct {
	path   string
	record string
}

func newFakeRclone(t *testing.T) *fakeRclone {
	t.Helper()
	path, err := filepath.Abs("../../testdata/fake-rclone")
	if err != nil {
		t.Fatal(err)
	}
	return &fakeRclone{path: path, record: filepath.Join(t.TempDir(), "argv")}
}

// runs returns the argv of each run so far, oldest first.
func (f *fakeRclone) runs(t *testing.T) [][]string {
	t.Helper()
	b, err := os.ReadFile(f.record)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var runs [][]string
	for _, run := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		runs = append(runs, strings.Split(strings.TrimSuffix(run, "\x00"), "\x00"))
	}
	return runs
}

// ran returns the runs whose argv holds the command cmd.
func (f *fakeRclone) ran(t *testing.T, cmd string) [][]string {
	t.Helper()
	var out [][]string
	for _, argv := range f.runs(t) {
		if slices.Contains(argv, cmd) {
			out = append(out, argv)
		}
	}
	return out
}

// The flag goes to Drive remotes only, named or on the fly; a failed lookup is
// logged and taken as "not Drive". The remote "gd" is a local one in the config
// the real rclone reads, so that the move really runs with the flag: rclone
// takes a backend's flags whatever the remote.
func TestDriveFlag(t *testing.T) {
	cases := []struct {
		name     string
		dest     string
		remotes  string // the fake's listremotes answer; "" runs the real one, "-" fails
		quotaLog bool   // the move prints a Drive quota log and exits 7
		drive    bool
		lookups  int    // listremotes runs
		warn     string // a warning logged
	}{
		{name: "local remote", dest: "local:{dst}/{folder}", lookups: 1},
		{name: "local path", dest: "{dst}/{folder}"},
		{name: "drive remote", dest: "gd:{dst}/{folder}", remotes: "gd:    drive\nlocal: local\n", drive: true, lookups: 1},
		{name: "other type", dest: "gd:{dst}/{folder}", remotes: "gd: s3\n", lookups: 1},
		{name: "connection string", dest: ":drive,scope=drive:Courses/{folder}", quotaLog: true, drive: true},
		{name: "lookup fails", dest: "gd:{dst}/{folder}", remotes: "-", lookups: 1, warn: "rclone listremotes"},
		{name: "not listed", dest: "gd:{dst}/{folder}", remotes: "local: local\n", lookups: 1, warn: `does not list the remote "gd"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src, dst, conf := rcloneSetup(t)
			mustWrite(t, conf, "[local]\ntype = local\n[gd]\ntype = local\n")
			fake := newFakeRclone(t)
			env := []string{"FAKE_RCLONE_RECORD=" + fake.record}
			switch tc.remotes {
			case "":
			case "-":
				env = append(env, "FAKE_RCLONE_REMOTES="+filepath.Join(t.TempDir(), "missing"))
			default:
				remotes := filepath.Join(t.TempDir(), "remotes")
				mustWrite(t, remotes, tc.remotes)
				env = append(env, "FAKE_RCLONE_REMOTES="+remotes)
			}
			if tc.quotaLog {
				env = append(env, "FAKE_RCLONE_LOG="+capture(t, "move-drive-quota-json.txt"))
			}
			core, logs := observer.New(zap.InfoLevel)
			u := &Uploader{Rclone: fake.path, Config: conf, Dest: strings.ReplaceAll(tc.dest, "{dst}", dst),
				URLTemplate: "https://x/", Timeout: time.Minute, Env: env, Log: zap.New(core)}
			_, err := u.Upload(context.Background(), Request{TaskID: 1, Source: src, Folder: "Course"}, nil)
			if tc.quotaLog != (err != nil) {
				t.Fatalf("Upload: %v", err)
			}
			moves := fake.ran(t, "move")
			if len(moves) != 1 {
				t.Fatalf("%d moves, want 1: %q", len(moves), fake.runs(t))
			}
			if got := slices.Contains(moves[0], driveStopOnUploadLimit); got != tc.drive {
				t.Errorf("move argv %q: %s passed = %v, want %v", moves[0], driveStopOnUploadLimit, got, tc.drive)
			}
			if n := len(fake.ran(t, "listremotes")); n != tc.lookups {
				t.Errorf("listremotes ran %d times, want %d", n, tc.lookups)
			}
			warned := logs.FilterMessageSnippet("cannot tell whether").All()
			if tc.warn == "" && len(warned) > 0 || tc.warn != "" && (len(warned) != 1 || !strings.Contains(warned[0].ContextMap()["error"].(string), tc.warn)) {
				t.Errorf("warnings %v, want one about %q", warned, tc.warn)
			}
		})
	}
}

// Prepare asks rclone once, however many uploads want to know at once.
func TestPrepareOnce(t *testing.T) {
	_, _, conf := rcloneSetup(t)
	mustWrite(t, conf, "[gd]\ntype = drive\n")
	fake := newFakeRclone(t)
	u := &Uploader{Rclone: fake.path, Config: conf, Dest: "gd:x", Env: []string{"FAKE_RCLONE_RECORD=" + fake.record}}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if !u.Prepare(context.Background()) {
				t.Error("the real rclone's listremotes did not say gd is drive")
			}
		})
	}
	wg.Wait()
	if runs := fake.runs(t); len(runs) != 1 || !slices.Equal(runs[0], []string{"--config", conf, "listremotes", "--long"}) {
		t.Errorf("rclone ran %q, want listremotes once", runs)
	}
}

// A lookup cut short by the caller's context is not remembered.
func TestPrepareCanceled(t *testing.T) {
	_, _, conf := rcloneSetup(t)
	mustWrite(t, conf, "[gd]\ntype = drive\n")
	u := &Uploader{Rclone: "rclone", Config: conf, Dest: "gd:x"}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if u.Prepare(ctx) {
		t.Fatal("a canceled lookup found Drive")
	}
	if !u.Prepare(context.Background()) {
		t.Fatal("the canceled lookup was remembered")
	}
}

// capture returns the path of a file of testdata/rclone.
func capture(t *testing.T, name string) string {
	t.Helper()
	path, err := filepath.Abs(filepath.Join("../../testdata/rclone", name))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatal(err)
	}
	return path
}
