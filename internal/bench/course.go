package bench

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// courseServer is the course site of the time-to-link figures: a course of
// equal lessons as an RSS feed, the playlist shape yt-dlp's generic extractor
// takes from any site (each item's guid is the lesson's id, which
// --download-archive records; the channel's title is %(playlist_title)s), and
// the lessons as video/mp4, HTTP Range included (yt-dlp resumes a .part file
// with one). Every connection is paced to rate bytes/s, and the bytes written
// for each lesson are counted: what a course costs the site.
type courseServer struct {
	srv     *httptest.Server
	title   string
	lesson  []byte // every lesson's bytes
	rate    float64
	served  []atomic.Int64 // body bytes written, by lesson
	fetches []atomic.Int64 // GET requests, by lesson
}

// courseTitle is the feed's channel title, so the course's folder name.
const courseTitle = "Go In Depth"

// coursePath is the feed's path on the server.
const coursePath = "/courses/go-in-depth"

// paceChunk is the most a paced connection writes at once.
const paceChunk = 16 << 10

// newCourseServer serves lessons lessons of size bytes each, every connection
// paced to rate bytes/s.
func newCourseServer(lessons int, size int64, rate float64) *courseServer {
	c := &courseServer{
		title:   courseTitle,
		lesson:  make([]byte, size),
		rate:    rate,
		served:  make([]atomic.Int64, lessons),
		fetches: make([]atomic.Int64, lessons),
	}
	_, _ = rand.Read(c.lesson) // incompressible, as a video is
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+coursePath, c.serveFeed)
	mux.HandleFunc("GET "+coursePath+"/{file}", c.serveLesson) // GET also matches HEAD
	c.srv = httptest.NewServer(mux)
	return c
}

// URL is the course's URL, the job's courseUrl.
func (c *courseServer) URL() string { return c.srv.URL + coursePath }

// Close stops the server.
func (c *courseServer) Close() { c.srv.Close() }

// lessonName is the file name of lesson i (from 0) on the server.
func lessonName(i int) string { return fmt.Sprintf("lesson-%02d.mp4", i+1) }

// lessonTitle is the title of lesson i (from 0), so its file name on disk
// (with ".mp4").
func lessonTitle(i int) string { return fmt.Sprintf("Lesson %02d", i+1) }

// bytes is the size of the whole course.
func (c *courseServer) bytes() int64 { return int64(len(c.served)) * int64(len(c.lesson)) }

// servedBytes is the sum of the body bytes written for every lesson so far.
func (c *courseServer) servedBytes() int64 {
	var n int64
	for i := range c.served {
		n += c.served[i].Load()
	}
	return n
}

// servedBy is the body bytes written so far, by lesson.
func (c *courseServer) servedBy() []int64 {
	out := make([]int64, len(c.served))
	for i := range c.served {
		out[i] = c.served[i].Load()
	}
	return out
}

// reset sets the counts back to zero, for the next run.
func (c *courseServer) reset() {
	for i := range c.served {
		c.served[i].Store(0)
		c.fetches[i].Store(0)
	}
}

func (c *courseServer) serveFeed(w http.ResponseWriter, r *http.Request) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rss version=\"2.0\"><channel><title>%s</title>\n", c.title)
	for i := range c.served {
		fmt.Fprintf(&b, "<item><title>%s</title><guid>go-in-depth-%02d</guid><enclosure url=\"%s/%s\" length=\"%d\" type=\"video/mp4\"/></item>\n",
			lessonTitle(i), i+1, c.URL(), lessonName(i), len(c.lesson))
	}
	b.WriteString("</channel></rss>\n")
	w.Header().Set("Content-Type", "application/rss+xml")
	_, _ = w.Write(b.Bytes()) // the client may have gone: nothing to do
}

func (c *courseServer) serveLesson(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	i, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(name, "lesson-"), ".mp4"))
	if err != nil || i < 1 || i > len(c.served) || name != lessonName(i-1) {
		http.NotFound(w, r)
		return
	}
	if r.Method == http.MethodGet {
		c.fetches[i-1].Add(1)
	}
	w.Header().Set("Content-Type", "video/mp4")
	pw := &pacedWriter{w: w, rc: http.NewResponseController(w), done: r.Context().Done(), rate: c.rate, count: &c.served[i-1]}
	// ServeContent answers Range and HEAD; the zero time sends no Last-Modified.
	http.ServeContent(pw, r, name, time.Time{}, bytes.NewReader(c.lesson))
}

// pacedWriter is a ResponseWriter whose body goes out at rate bytes/s at most,
// from its first byte on (a token bucket with no burst): each chunk is written
// when the bytes before it have had their time. It counts what it wrote.
type pacedWriter struct {
	w     http.ResponseWriter
	rc    *http.ResponseController
	done  <-chan struct{} // the request's end: the client went away
	rate  float64
	count *atomic.Int64
	start time.Time
	sent  int64
}

func (p *pacedWriter) Header() http.Header  { return p.w.Header() }
func (p *pacedWriter) WriteHeader(code int) { p.w.WriteHeader(code) }

func (p *pacedWriter) Write(b []byte) (int, error) {
	if p.start.IsZero() {
		p.start = time.Now()
	}
	written := 0
	for len(b) > 0 {
		n := min(len(b), paceChunk)
		if wait := time.Until(p.start.Add(time.Duration(float64(p.sent) / p.rate * float64(time.Second)))); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-p.done:
				t.Stop()
				return written, http.ErrAbortHandler
			}
		}
		m, err := p.w.Write(b[:n])
		written += m
		p.sent += int64(m)
		p.count.Add(int64(m))
		if err != nil {
			return written, err
		}
		if err := p.rc.Flush(); err != nil {
			return written, err
		}
		b = b[n:]
	}
	return written, nil
}
