package console_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coursedl/worker/internal/rdb"
)

func TestLogin(t *testing.T) {
	b := newBench(t, userItems(t, "olga", "vic"))
	br := b.browser()

	// Not logged in: every page sends to the login form, a stream is refused.
	p := br.get("/dead").is(t, http.StatusSeeOther)
	if loc := p.header.Get("Location"); loc != "/login?next=%2Fdead" {
		t.Fatalf("redirect to %q", loc)
	}
	req := httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/events/progress", nil)
	req.Header.Set("Accept", "text/event-stream")
	rec := httptest.NewRecorder()
	b.c.ServeHTTP(rec, req)
	if rec.Code != http.StatusUnauthorized {
		t.Fatalf("stream without login: %d", rec.Code)
	}

	br.tryLogin("olga", "wrong password").is(t, http.StatusUnauthorized).has(t, "Wrong user name or password.")
	br.tryLogin("nobody", "operator-password").is(t, http.StatusUnauthorized).has(t, "Wrong user name or password.")
	br.get("/").is(t, http.StatusSeeOther)

	p = br.tryLogin("olga", passwords["olga"]).is(t, http.StatusSeeOther)
	if p.header.Get("Location") != "/" {
		t.Fatalf("after login, to %q", p.header.Get("Location"))
	}
	var session *http.Cookie
	for _, ck := range br.hc.Jar.Cookies(mustURL(t, b.srv.URL)) {
		if ck.Name == "console_session" {
			session = ck
		}
	}
	if session == nil || len(session.Value) < 43 {
		t.Fatalf("session cookie %+v: want 32 random bytes", session)
	}
	if c := p.header.Values("Set-Cookie"); !strings.Contains(strings.Join(c, "\n"), "HttpOnly") || !strings.Contains(strings.Join(c, "\n"), "SameSite=Strict") {
		t.Fatalf("cookies %q: want HttpOnly, SameSite=Strict", c)
	}
	br.get("/").is(t, http.StatusOK).has(t, "olga", "operator", `action="/intake/pause"`)

	// Log out: the session is gone.
	br.post("/logout", nil).is(t, http.StatusSeeOther)
	br.get("/").is(t, http.StatusSeeOther)

	// A redirect after login stays on the console.
	br2 := b.browser()
	form := br2.get("/login")
	token := loginToken.FindStringSubmatch(form.body)[1]
	p = br2.post("/login", url.Values{"token": {token}, "name": {"vic"}, "password": {passwords["vic"]}, "next": {"//evil.example/x"}})
	if p.header.Get("Location") != "/" {
		t.Fatalf("next //evil.example: redirected to %q", p.header.Get("Location"))
	}
}

// A login form without its token, or with another browser's, is refused.
func TestLoginNeedsItsFormToken(t *testing.T) {
	b := newBench(t, userItems(t, "olga"))
	br := b.browser()
	br.get("/login")
	br.post("/login", url.Values{"token": {"forged"}, "name": {"olga"}, "password": {passwords["olga"]}}).is(t, http.StatusForbidden)
	br.get("/").is(t, http.StatusSeeOther)
}

// A wrong password is refused; after five failures for one user name (from
// any address) or one address (for any name), the next login is refused with
// 429 before its password is looked at, even a right one, until the delay has
// passed; the delay doubles with each further failure.
func TestLoginRateLimited(t *testing.T) {
	b := newBench(t, userItems(t, "olga", "vic"))
	try := func(addr, name, password string) *httptest.ResponseRecorder {
		t.Helper()
		get := httptest.NewRecorder()
		b.c.ServeHTTP(get, httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/login", nil))
		token := loginToken.FindStringSubmatch(get.Body.String())[1]
		form := url.Values{"token": {token}, "name": {name}, "password": {password}}
		req := httptest.NewRequestWithContext(t.Context(), http.MethodPost, "/login", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.RemoteAddr = addr + ":40000"
		for _, ck := range get.Result().Cookies() {
			req.AddCookie(ck)
		}
		rec := httptest.NewRecorder()
		b.c.ServeHTTP(rec, req)
		return rec
	}
	// Per user name: five failures from five addresses.
	for i, addr := range []string{"10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5"} {
		if rec := try(addr, "olga", "wrong"); rec.Code != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d", i+1, rec.Code)
		}
	}
	rec := try("10.0.0.6", "olga", passwords["olga"])
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") != "2" {
		t.Fatalf("6th login for olga: %d, Retry-After %q; want 429 and 2", rec.Code, rec.Header().Get("Retry-After"))
	}
	// Another user from a fresh address is not held up.
	if rec := try("10.0.0.7", "vic", passwords["vic"]); rec.Code != http.StatusSeeOther {
		t.Fatalf("vic: %d", rec.Code)
	}
	b.clock.add(2 * time.Second)
	if rec := try("10.0.0.6", "olga", "wrong again"); rec.Code != http.StatusUnauthorized {
		t.Fatalf("after the delay, a wrong password: %d", rec.Code)
	}
	if rec := try("10.0.0.6", "olga", passwords["olga"]); rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") != "4" {
		t.Fatalf("after a 6th failure: %d, Retry-After %q; want 429 and 4 (doubled)", rec.Code, rec.Header().Get("Retry-After"))
	}
	b.clock.add(4 * time.Second)
	if rec := try("10.0.0.6", "olga", passwords["olga"]); rec.Code != http.StatusSeeOther {
		t.Fatalf("after the delay, the right password: %d", rec.Code)
	}
	// Per address: five failures for five names close the address.
	for _, name := range []string{"a", "b", "c", "d", "e"} {
		try("10.9.9.9", name, "x")
	}
	if rec := try("10.9.9.9", "vic", passwords["vic"]); rec.Code != http.StatusTooManyRequests {
		t.Fatalf("6th login from one address: %d, want 429", rec.Code)
	}
}

// Every answer carries the strict headers.
func TestSecurityHeaders(t *testing.T) {
	b := newBench(t, userItems(t, "olga"))
	br := b.browser().login("olga")
	for _, path := range []string{"/", "/login", "/static/console.css", "/nowhere"} {
		p := br.get(path)
		for h, want := range map[string]string{
			"Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
				"frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
			"X-Content-Type-Options": "nosniff",
			"Referrer-Policy":        "no-referrer",
			"X-Frame-Options":        "DENY",
		} {
			if got := p.header.Get(h); got != want {
				t.Errorf("%s: %s %q, want %q", path, h, got, want)
			}
		}
	}
	br.get("/static/").is(t, http.StatusNotFound) // no listing
	// No inline script or style attribute in any page.
	for _, path := range []string{"/", "/running", "/search", "/dead", "/delayed", "/webhooks", "/workers"} {
		br.get(path).is(t, http.StatusOK).lacks(t, "<script>", " style=", "<style", " onclick=", "javascript:")
	}
}

// A POST without the session's CSRF token, or from another site, is refused
// and changes nothing.
func TestPostChecks(t *testing.T) {
	b := newBench(t, userItems(t, "olga"))
	br := b.browser().login("olga")
	paused := func() bool {
		m, err := b.door.Pauses(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return len(m) > 0
	}
	br.post("/intake/pause", url.Values{"csrf": {""}}).is(t, http.StatusForbidden).has(t, "CSRF")
	br.post("/intake/pause", url.Values{"csrf": {"not-the-token"}}).is(t, http.StatusForbidden)
	br.postFrom("http://evil.example", "/intake/pause", nil).is(t, http.StatusForbidden).has(t, "cross-origin")
	br.postFrom("null", "/intake/pause", nil).is(t, http.StatusForbidden)
	// A browser that says the request comes from another site.
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, b.srv.URL+"/intake/pause", strings.NewReader(url.Values{"csrf": {br.csrf}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	br.do(req).is(t, http.StatusForbidden)
	// "Origin: null" (as a browser sends it under Referrer-Policy no-referrer)
	// passes only with Sec-Fetch-Site: same-origin.
	req, _ = http.NewRequestWithContext(t.Context(), http.MethodPost, b.srv.URL+"/intake/resume", strings.NewReader(url.Values{"csrf": {br.csrf}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "null")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	br.do(req).is(t, http.StatusSeeOther)
	// A GET cannot act.
	req, _ = http.NewRequestWithContext(t.Context(), http.MethodGet, b.srv.URL+"/intake/pause?csrf="+url.QueryEscape(br.csrf), nil)
	if p := br.do(req); p.status != http.StatusMethodNotAllowed {
		t.Fatalf("GET of an action: %d", p.status)
	}
	if paused() {
		t.Fatal("a refused request paused intake")
	}
	br.post("/intake/pause", url.Values{"reason": {"new cookies"}}).is(t, http.StatusSeeOther)
	if got := b.rc.HGet(context.Background(), rdb.IntakeKey, rdb.AllWorkers).Val(); got != "operator: new cookies (by olga)" {
		t.Fatalf("pause reason %q", got)
	}
	br.get("/").has(t, "Intake paused for every worker", "operator: new cookies (by olga)")
	br.post("/intake/resume", nil).is(t, http.StatusSeeOther)
	if paused() {
		t.Fatal("resume left a pause")
	}
}

// A viewer sees the pages without the forms that change things, and is
// refused when it posts one all the same.
func TestViewerCannotAct(t *testing.T) {
	b := newBench(t, userItems(t, "olga", "vic"))
	_, job := b.task(12, "buyer@example.com")
	if err := b.door.DeadLetter(context.Background(), job, "test", time.Now()); err != nil {
		t.Fatal(err)
	}
	br := b.browser().login("vic")
	for _, path := range []string{"/", "/dead", "/delayed", "/webhooks"} {
		br.get(path).is(t, http.StatusOK).lacks(t, `action="/intake`, `action="/dead`, `action="/delayed`, `action="/webhooks`)
	}
	br.get("/dead").has(t, "buyer@example.com") // a viewer has logged in: addresses are shown
	br.post("/dead/requeue", url.Values{"all": {"1"}}).is(t, http.StatusForbidden).has(t, "only an operator")
	br.post("/intake/pause", nil).is(t, http.StatusForbidden)
	if n := b.rc.LLen(context.Background(), rdb.DeadKey).Val(); n != 1 {
		t.Fatalf("dead letters %d after a viewer's requeue", n)
	}
	br.post("/logout", nil).is(t, http.StatusSeeOther) // a viewer may log out
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
