package bench

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coursedl/worker/internal/testutil"
)

// get fetches url with the header h (name, value pairs) and returns the status
// and the body.
func get(t *testing.T, method, url string, h ...string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(h); i += 2 {
		req.Header.Set(h[i], h[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }() // read whole below
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

// The course server serves the feed, each lesson whole or from an offset
// (Range), counts what it writes by lesson, and paces each connection.
func TestCourseServer(t *testing.T) {
	const size, rate = 256 << 10, 1 << 20
	c := newCourseServer(3, size, rate)
	defer c.Close()

	status, feed := get(t, http.MethodGet, c.URL())
	if status != http.StatusOK || !bytes.HasPrefix(feed, []byte("<?xml")) || bytes.Count(feed, []byte("<item>")) != 3 ||
		!bytes.Contains(feed, []byte("<title>"+courseTitle+"</title>")) || !bytes.Contains(feed, []byte(c.URL()+"/lesson-03.mp4")) {
		t.Fatalf("feed %d:\n%s", status, feed)
	}

	start := time.Now()
	status, body := get(t, http.MethodGet, c.URL()+"/lesson-02.mp4")
	took := time.Since(start)
	if status != http.StatusOK || !bytes.Equal(body, c.lesson) {
		t.Fatalf("lesson 2: %d, %d bytes", status, len(body))
	}
	// A lower bound only: the pacing lets the first chunk go at once.
	if least := time.Duration(float64(size-paceChunk) / rate * float64(time.Second)); took < least {
		t.Fatalf("lesson 2 of %d bytes at %d B/s came in %s, under %s", size, int(rate), took, least)
	}
	status, body = get(t, http.MethodGet, c.URL()+"/lesson-02.mp4", "Range", "bytes=1000-")
	if status != http.StatusPartialContent || !bytes.Equal(body, c.lesson[1000:]) {
		t.Fatalf("lesson 2 from 1000: %d, %d bytes", status, len(body))
	}
	if status, body = get(t, http.MethodHead, c.URL()+"/lesson-01.mp4"); status != http.StatusOK || len(body) != 0 {
		t.Fatalf("HEAD lesson 1: %d, %d bytes", status, len(body))
	}
	for _, p := range []string{"/lesson-00.mp4", "/lesson-04.mp4", "/lesson-1.mp4", "/x"} {
		if status, _ := get(t, http.MethodGet, c.URL()+p); status != http.StatusNotFound {
			t.Errorf("%s: %d, want 404", p, status)
		}
	}
	if got, want := c.servedBy(), []int64{0, 2*size - 1000, 0}; !slices.Equal(got, want) {
		t.Fatalf("served by lesson %v, want %v", got, want)
	}
	if c.fetches[1].Load() != 2 || c.fetches[0].Load() != 0 || c.servedBytes() != 2*size-1000 || c.bytes() != 3*size {
		t.Fatalf("fetches %d %d, served %d, course %d", c.fetches[0].Load(), c.fetches[1].Load(), c.servedBytes(), c.bytes())
	}
	c.reset()
	if c.servedBytes() != 0 || c.fetches[1].Load() != 0 {
		t.Fatal("reset left counts")
	}
}

// The bench's course is a course to real yt-dlp, run with the shipped
// download.command: one folder named after the feed, every lesson whole under
// its title; and a second run serves no lesson again.
func TestCourseThroughYtdlp(t *testing.T) {
	command, err := exampleCommand(filepath.Join(testutil.Root(t), "configs", "worker.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	c := newCourseServer(courseLessons, 64<<10, 64<<20)
	defer c.Close()
	dir := t.TempDir()
	if err := downloadCourse(t.Context(), command, c.URL(), dir); err != nil {
		t.Fatal(err)
	}
	if err := c.check(filepath.Join(dir, courseTitle)); err != nil {
		t.Fatal(err)
	}
	// Two GETs a lesson: the generic extractor's probe (closed after the
	// headers) and the download.
	if got, want := fetches(c), slices.Repeat([]int64{2}, courseLessons); !slices.Equal(got, want) || c.servedBytes() < c.bytes() {
		t.Fatalf("fetches by lesson %v, want %v; served %d bytes for a course of %d", got, want, c.servedBytes(), c.bytes())
	}
	c.reset()
	if err := downloadCourse(t.Context(), command, c.URL(), dir); err != nil {
		t.Fatal(err)
	}
	if got, want := fetches(c), slices.Repeat([]int64{1}, courseLessons); !slices.Equal(got, want) {
		t.Fatalf("second run: fetches by lesson %v, want the probes alone %v", got, want)
	}
	if err := c.check(filepath.Join(dir, courseTitle)); err != nil {
		t.Fatal(err)
	}
}

func fetches(c *courseServer) []int64 {
	out := make([]int64, len(c.fetches))
	for i := range c.fetches {
		out[i] = c.fetches[i].Load()
	}
	return out
}

// check wants the whole course and nothing else; complete counts whole
// lessons, byte for byte.
func TestCourseCheck(t *testing.T) {
	c := newCourseServer(2, 1000, 1<<20)
	defer c.Close()
	dir := t.TempDir()
	write := func(name string, data []byte) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("Lesson 01.mp4", c.lesson)
	write("Lesson 02.mp4", c.lesson[:999])
	if n := c.complete(dir); n != 1 {
		t.Fatalf("complete = %d, want 1", n)
	}
	if err := c.check(dir); err == nil {
		t.Fatal("a short lesson passed")
	}
	changed := bytes.Clone(c.lesson)
	changed[500]++
	write("Lesson 02.mp4", changed)
	if err := c.check(dir); err == nil || c.complete(dir) != 1 {
		t.Fatalf("a changed lesson passed: %v", err)
	}
	write("Lesson 02.mp4", c.lesson)
	if err := c.check(dir); err != nil {
		t.Fatal(err)
	}
	write("Lesson 03.mp4.part", nil)
	if err := c.check(dir); err == nil || !strings.Contains(err.Error(), "part") {
		t.Fatalf("an extra file passed: %v", err)
	}
}

// dirBytes sums regular files at any depth, not symlinks, and is 0 for a
// folder that is not there.
func TestDirBytes(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "a", "b"), 0o750); err != nil {
		t.Fatal(err)
	}
	for name, n := range map[string]int{"x": 10, "a/y": 200, "a/b/z.part": 3000} {
		if err := os.WriteFile(filepath.Join(dir, name), make([]byte, n), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(filepath.Join(dir, "a", "y"), filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if got := dirBytes(dir); got != 3210 {
		t.Fatalf("dirBytes = %d, want 3210", got)
	}
	if got := dirBytes(filepath.Join(dir, "missing")); got != 0 {
		t.Fatalf("dirBytes(missing) = %d", got)
	}
	w := watchStaging(dir)
	testutil.Eventually(t, 5*time.Second, func() bool { return w.peakNow() == 3210 }, "no sample of %s", dir)
	if err := os.Remove(filepath.Join(dir, "a", "b", "z.part")); err != nil {
		t.Fatal(err)
	}
	if got := w.stop(); got != 3210 {
		t.Fatalf("peak %d, want 3210 (the most seen, not the last)", got)
	}
}
