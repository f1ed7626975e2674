package console_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap/zaptest"
	"golang.org/x/crypto/bcrypt"

	"github.com/coursedl/worker/internal/console"
	"github.com/coursedl/worker/internal/ctl"
	"github.com/coursedl/worker/internal/rdb"
	"github.com/coursedl/worker/internal/store"
	"github.com/coursedl/worker/internal/testutil"
)

const queueKey = "queue:downloads"

// Users of the tests' consoles, with their passwords.
var passwords = map[string]string{"olga": "operator-password", "vic": "viewer-password"}

// userItems returns console.users items for the users named, with hashes at
// bcrypt's least cost (a test logs in many times).
func userItems(t *testing.T, names ...string) []string {
	t.Helper()
	var out []string
	for _, n := range names {
		h, err := bcrypt.GenerateFromPassword([]byte(passwords[n]), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		role := "viewer"
		if n == "olga" {
			role = "operator"
		}
		out = append(out, role+":"+n+":"+string(h))
	}
	return out
}

// clock is a settable clock for the login limiter.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// bench is a console on real Redis and MariaDB databases of the test's own,
// served by an httptest server.
type bench struct {
	t     *testing.T
	rc    *redis.Client
	door  *rdb.Client
	db    *sqlx.DB
	dsn   string
	logs  string
	clock *clock
	c     *console.Console
	srv   *httptest.Server
}

func newBench(t *testing.T, users []string) *bench {
	t.Helper()
	b := &bench{t: t, rc: testutil.Redis(t), logs: filepath.Join(t.TempDir(), "logs"),
		clock: &clock{now: time.Date(2026, 11, 28, 20, 0, 0, 0, time.UTC)}}
	b.db, b.dsn = testutil.MySQL(t)
	s, err := store.Open(context.Background(), b.dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	b.door = rdb.New(b.rc, rdb.Options{Queue: queueKey})
	tool := &ctl.Tool{Redis: b.door, Rows: s, LogsDir: b.logs}
	b.c, err = console.New(console.Params{Tool: tool, Rows: s, Users: users, Log: zaptest.NewLogger(t),
		Now: b.clock.Now, FailDelay: -1})
	if err != nil {
		t.Fatal(err)
	}
	// The console is looked up at each request: the browser test puts its own.
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { b.c.ServeHTTP(w, r) }))
	t.Cleanup(b.srv.Close)
	return b
}

// task inserts a row and returns its id and its job, as the web app pushes it.
func (b *bench) task(orderID any, email string) (int64, string) {
	b.t.Helper()
	res := b.db.MustExec("INSERT INTO download_tasks (order_id, email, course_url, is_enrolled) VALUES (?, ?, 'https://www.udemy.com/course/go/', 1)",
		orderID, email)
	id, err := res.LastInsertId()
	if err != nil {
		b.t.Fatal(err)
	}
	job := fmt.Sprintf(`{"taskId":%d,"email":%q,"courseUrl":"https://www.udemy.com/course/go/"}`, id, email)
	return id, job
}

// browser is a client with its own cookies, as one person's browser.
type browser struct {
	b    *bench
	hc   *http.Client
	csrf string // the CSRF token of the last page read
}

func (b *bench) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{b: b, hc: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

// page is an answer.
type page struct {
	status int
	header http.Header
	body   string
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// get reads a page; it keeps the page's CSRF token for the next post.
func (br *browser) get(path string) page {
	br.b.t.Helper()
	req, err := http.NewRequestWithContext(br.b.t.Context(), http.MethodGet, br.b.srv.URL+path, nil)
	if err != nil {
		br.b.t.Fatal(err)
	}
	p := br.do(req)
	if m := csrfField.FindStringSubmatch(p.body); m != nil {
		br.csrf = m[1]
	}
	return p
}

// post sends a form as the console's own page does (same Origin), with the
// session's CSRF token unless the form holds a "csrf" of its own.
func (br *browser) post(path string, form url.Values) page {
	br.b.t.Helper()
	return br.postFrom(br.b.srv.URL, path, form)
}

// postFrom sends a form with the Origin given ("" for none).
func (br *browser) postFrom(origin, path string, form url.Values) page {
	br.b.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	if _, ok := form["csrf"]; !ok && br.csrf != "" {
		form.Set("csrf", br.csrf)
	}
	req, err := http.NewRequestWithContext(br.b.t.Context(), http.MethodPost, br.b.srv.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		br.b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	return br.do(req)
}

func (br *browser) do(req *http.Request) page {
	br.b.t.Helper()
	resp, err := br.hc.Do(req)
	if err != nil {
		br.b.t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		br.b.t.Fatal(err)
	}
	return page{status: resp.StatusCode, header: resp.Header, body: string(body)}
}

var loginToken = regexp.MustCompile(`name="token" value="([^"]+)"`)

// tryLogin fills in and sends the login form.
func (br *browser) tryLogin(name, password string) page {
	br.b.t.Helper()
	form := br.get("/login")
	m := loginToken.FindStringSubmatch(form.body)
	if m == nil {
		br.b.t.Fatalf("no login form:\n%s", form.body)
	}
	return br.post("/login", url.Values{"token": {m[1]}, "name": {name}, "password": {password}, "next": {"/"}})
}

// login logs in as name, and reads the overview for its CSRF token.
func (br *browser) login(name string) *browser {
	br.b.t.Helper()
	if p := br.tryLogin(name, passwords[name]); p.status != http.StatusSeeOther {
		br.b.t.Fatalf("login as %s: %d\n%s", name, p.status, p.body)
	}
	if p := br.get("/"); p.status != http.StatusOK || !strings.Contains(p.body, name) {
		br.b.t.Fatalf("overview after login: %d\n%s", p.status, p.body)
	}
	return br
}

// ok fails the test unless the answer has status want.
func (p page) is(t *testing.T, want int) page {
	t.Helper()
	if p.status != want {
		t.Fatalf("status %d, want %d\n%s", p.status, want, p.body)
	}
	return p
}

// has fails the test unless the page holds each of texts.
func (p page) has(t *testing.T, texts ...string) page {
	t.Helper()
	for _, s := range texts {
		if !strings.Contains(p.body, s) {
			t.Errorf("page lacks %q:\n%s", s, p.body)
		}
	}
	return p
}

// lacks fails the test if the page holds any of texts.
func (p page) lacks(t *testing.T, texts ...string) page {
	t.Helper()
	for _, s := range texts {
		if strings.Contains(p.body, s) {
			t.Errorf("page holds %q:\n%s", s, p.body)
		}
	}
	return p
}

// sse is an open event stream.
type sse struct {
	events chan sseEvent
}

// sseEvent is one server-sent event.
type sseEvent struct {
	event, data string
}

// stream opens an event stream; it is closed when the test ends.
func (br *browser) stream(path string) *sse {
	br.b.t.Helper()
	ctx, cancel := context.WithCancel(br.b.t.Context())
	br.b.t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, br.b.srv.URL+path, nil)
	if err != nil {
		br.b.t.Fatal(err)
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := br.hc.Do(req) //nolint:bodyclose // closed by the reading goroutine below
	if err != nil {
		br.b.t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		_ = resp.Body.Close()
		br.b.t.Fatalf("stream %s: %d %s", path, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	s := &sse{events: make(chan sseEvent, 100)}
	go func() {
		defer func() { _ = resp.Body.Close() }()
		defer close(s.events)
		sc := bufio.NewScanner(resp.Body)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.data != "" {
					s.events <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, "event: "):
				ev.event = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				ev.data += strings.TrimPrefix(line, "data: ")
			}
		}
	}()
	return s
}

// next waits for the next event, for at most 10 s.
func (s *sse) next(t *testing.T) sseEvent {
	t.Helper()
	select {
	case ev, ok := <-s.events:
		if !ok {
			t.Fatal("the stream ended")
		}
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no event within 10 s")
	}
	return sseEvent{}
}
