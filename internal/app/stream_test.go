package app

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/coursedl/worker/internal/config"
	"github.com/coursedl/worker/internal/progress"
	"github.com/coursedl/worker/internal/testutil"
	"github.com/coursedl/worker/internal/upload"
)

// exampleCommand sets the downloader to the command of
// configs/worker.example.yaml, as shipped.
func (e *env) exampleCommand() {
	e.t.Helper()
	var environ []string
	for k, v := range e.settings {
		if k != "WORKER_DOWNLOAD_COMMAND" {
			environ = append(environ, k+"="+v)
		}
	}
	cfg, err := config.Load(filepath.Join(testutil.Root(e.t), "configs", "worker.example.yaml"), environ)
	if err != nil {
		e.t.Fatal(err)
	}
	b, _ := json.Marshal(cfg.Download.Command)
	e.settings["WORKER_DOWNLOAD_COMMAND"] = string(b)
}

// courseSite serves a course page, /go.html, titled "Go In Depth", with n
// lessons of 1 MiB as HTML5 videos (yt-dlp downloads them as a playlist).
// The last lesson is served only once hold is closed.
func courseSite(t *testing.T, n int, hold <-chan struct{}) *httptest.Server {
	t.Helper()
	lesson := make([]byte, 1<<20)
	_, _ = rand.Read(lesson)
	var page strings.Builder
	page.WriteString("<html><head><title>Go In Depth</title></head><body>\n")
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&page, "<video src=\"lesson-%d.mp4\"></video>\n", i)
	}
	page.WriteString("</body></html>\n")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/go.html" {
			w.Header().Set("Content-Type", "text/html")
			_, _ = w.Write([]byte(page.String()))
			return
		}
		if r.URL.Path == fmt.Sprintf("/lesson-%d.mp4", n) && r.Method == http.MethodGet {
			select {
			case <-hold:
			case <-r.Context().Done():
				return
			}
		}
		if !strings.HasPrefix(r.URL.Path, "/lesson-") {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "video/mp4")
		w.Header().Set("Content-Length", fmt.Sprint(len(lesson)))
		if r.Method != http.MethodHead {
			_, _ = w.Write(lesson)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// driveFiles lists the files under the destination folder, slash-separated,
// sorted.
func (e *env) driveFiles(sub string) []string {
	e.t.Helper()
	files, err := upload.Files(filepath.Join(e.root, "drive", sub))
	if err != nil && !os.IsNotExist(err) {
		e.t.Fatal(err)
	}
	for i := range files {
		files[i] = filepath.ToSlash(files[i])
	}
	sort.Strings(files)
	return files
}

// A course of three lessons with the shipped yt-dlp command: the first
// lesson reaches the destination while the downloader still waits for the
// last one, which the course server holds back until then. The destination
// ends as the move of the whole folder leaves it.
func TestCourseUploadsWhileDownloading(t *testing.T) {
	e := newEnv(t)
	hold := make(chan struct{})
	e.course = courseSite(t, 3, hold)
	e.exampleCommand()
	e.settings["WORKER_UPLOAD_DEST"] = "local:" + filepath.Join(e.root, "drive") + "/{folder}"
	id, payload := e.task(true, "/go.html")
	events := subscribe(t, e, id)
	e.start()
	e.push(payload)

	testutil.Eventually(t, 60*time.Second, func() bool { return len(e.driveFiles("Go In Depth")) > 0 },
		"no lesson reached the destination while the download went on; task log:\n%s", e.taskLog(id))
	if r := e.row(id); r.Status != "downloading" {
		t.Errorf("a lesson reached the destination with the row %s", r.Status)
	}
	if got := e.driveFiles("Go In Depth"); slices.Contains(got, "Go In Depth (3).mp4") {
		t.Errorf("destination %q before the last lesson was served", got)
	}
	close(hold)
	r := e.waitStatus(id, "completed", 60*time.Second)
	want := []string{"Go In Depth (1).mp4", "Go In Depth (2).mp4", "Go In Depth (3).mp4"}
	if got := e.driveFiles("Go In Depth"); !slices.Equal(got, want) {
		t.Errorf("destination %q, want %q", got, want)
	}
	if got := e.driveFiles(""); len(got) != 3 {
		t.Errorf("the whole destination holds %q", got)
	}
	if r.DriveURL == nil || *r.DriveURL != fmt.Sprintf("https://drive.example/%d/Go%%20In%%20Depth", id) {
		t.Errorf("drive_url %v", deref(r.DriveURL))
	}
	if d := e.hook.accepted(t, id); d.Event.Folder != "Go In Depth" {
		t.Errorf("webhook folder %q", d.Event.Folder)
	}
	tl := e.taskLog(id)
	for _, w := range want {
		if !strings.Contains(tl, fmt.Sprintf(`uploaded "Go In Depth/%s" to local:`, w)) {
			t.Errorf("task log lacks the upload of %s:\n%s", w, tl)
		}
	}
	if !regexp.MustCompile(`\[download\] \[download\] +\d+\.\d+% of`).MatchString(tl) {
		t.Errorf("yt-dlp's progress lines are gone from the task log:\n%s", tl)
	}
	if n := strings.Count(e.lifecycle(), "[UPLOAD_SUCCESS]"); n != 1 {
		t.Errorf("%d UPLOAD_SUCCESS lines", n)
	}
	if _, err := os.Stat(e.stagingDir(id)); !os.IsNotExist(err) {
		t.Errorf("staging folder left: %v", err)
	}
	testutil.Eventually(t, 5*time.Second, func() bool {
		evs := events()
		return len(evs) > 0 && evs[len(evs)-1].Stage == progress.StageCompleted
	}, "progress ends with completed: %v", stages(events()))
	checkSteady(t, events())
	if !slices.ContainsFunc(events(), func(ev progress.Event) bool { return ev.Stage == progress.StageDownloading && ev.Percent != nil }) {
		t.Error("no downloading event with a percent")
	}
}

// checkSteady fails the test for a percent that goes back within a stage,
// and when downloading does not come before uploading.
func checkSteady(t *testing.T, evs []progress.Event) {
	t.Helper()
	last := map[string]float64{}
	for _, ev := range evs {
		if ev.Percent == nil {
			continue
		}
		if *ev.Percent < last[ev.Stage] {
			t.Errorf("%s: percent went back from %.1f to %.1f", ev.Stage, last[ev.Stage], *ev.Percent)
		}
		last[ev.Stage] = *ev.Percent
	}
	got := stages(evs)
	if i, j := slices.Index(got, "downloading"), slices.Index(got, "uploading"); i < 0 || j < i {
		t.Errorf("stages %v: want downloading, then uploading", got)
	}
}

// Announcements out of order, of a path outside the task folder, of a
// partial file and of a symlink: the three last refused with a line each; the
// task completes with the good files and nothing else.
func TestBadAnnouncementsRefused(t *testing.T) {
	e := newEnv(t)
	outside := filepath.Join(t.TempDir(), "secret.txt")
	if err := os.WriteFile(outside, []byte("not the buyer's"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.fake("badannounce")
	e.settings["WORKER_DOWNLOAD_ENV"] = fmt.Sprintf(`["FAKE_LINK_TARGET=%s"]`, outside)
	e.start()
	id, payload := e.task(true, "/c/x.mp4")
	e.push(payload)
	e.waitStatus(id, "completed", 30*time.Second)
	if got, want := e.driveFiles(""), []string{"Fake Course/lesson-1.txt", "Fake Course/lesson-2.txt"}; !slices.Equal(got, want) {
		t.Errorf("destination %q, want %q", got, want)
	}
	tl := e.taskLog(id)
	for _, want := range []string{
		`uploaded "Fake Course/lesson-2.txt"`,
		`uploaded "Fake Course/lesson-1.txt"`,
		fmt.Sprintf("announced file %q refused: outside the task folder", outside),
		`lesson-3.txt.part" refused: a partial file`,
		`escape.txt" refused: a symlink, not a regular file`,
	} {
		if !strings.Contains(tl, want) {
			t.Errorf("task log lacks %q:\n%s", want, tl)
		}
	}
	if i, j := strings.Index(tl, `uploaded "Fake Course/lesson-2.txt"`), strings.Index(tl, `uploaded "Fake Course/lesson-1.txt"`); i > j {
		t.Errorf("lesson 1 went before lesson 2, announced first")
	}
	if b, err := os.ReadFile(outside); err != nil || string(b) != "not the buyer's" {
		t.Errorf("the file outside was touched: %q, %v", b, err)
	}
}

// rclone failing once on one lesson: that lesson is moved again on its own,
// and the task completes with every lesson, each at the destination once.
func TestLessonUploadFailsOnce(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	rc := filepath.Join(dir, "rclone-runs")
	e.fake("lessons")
	e.settings["WORKER_UPLOAD_RCLONE"] = filepath.Join(testutil.Root(t), "testdata", "fake-rclone")
	e.settings["WORKER_UPLOAD_ENV"] = fmt.Sprintf(`["FAKE_RCLONE_RECORD=%s", "FAKE_RCLONE_FAIL=lesson-2.txt", "FAKE_RCLONE_FAIL_MARK=%s"]`,
		rc, filepath.Join(dir, "failed"))
	e.start()
	id, payload := e.task(true, "/c/x.mp4")
	e.push(payload)
	e.waitStatus(id, "completed", 30*time.Second)
	e.hook.accepted(t, id)
	want := []string{"Fake Course/lesson-1.txt", "Fake Course/lesson-2.txt", "Fake Course/lesson-3.txt"}
	if got := e.driveFiles(""); !slices.Equal(got, want) {
		t.Errorf("destination %q, want %q", got, want)
	}
	moves := testutil.RcloneMoves(t, rc)
	if moves["lesson-2.txt"] != 2 || moves["lesson-1.txt"] > 2 || moves["lesson-3.txt"] > 2 {
		b, _ := os.ReadFile(rc)
		t.Errorf("moves per lesson %v, want lesson-2.txt twice:\n%q", moves, b)
	}
	if tl := e.taskLog(id); !strings.Contains(tl, "connection reset by peer (fake-rclone)") || strings.Contains(tl, "did not succeed") {
		t.Errorf("task log:\n%s", tl)
	}
	if lc := e.lifecycle(); strings.Count(lc, "[UPLOAD_SUCCESS]") != 1 || strings.Contains(lc, "[TASK_RETRY]") {
		t.Errorf("lifecycle:\n%s", lc)
	}
}
