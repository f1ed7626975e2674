package console

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"go.uber.org/zap"

	"github.com/coursedl/worker/internal/config"
)

// contentPolicy forbids inline script and style, and every origin but the
// console's own: a payload that slipped past html/template could still run
// nothing and load nothing.
const contentPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

// maxForm bounds the body of a POST: the forms hold a few short fields.
const maxForm = 64 << 10

// secure sets the headers every answer carries.
func secure(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", contentPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		h.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

// who is the person behind a request.
type who struct {
	sess     *session // nil: not logged in
	readOnly bool     // the console has no users
}

// canAct reports whether the person may change anything: an operator.
func (p who) canAct() bool { return p.sess != nil && p.sess.role == config.RoleOperator }

// seesEmail reports whether e-mail addresses are shown: only after login.
func (p who) seesEmail() bool { return p.sess != nil }

// name is the person's user name for the log, "anonymous" in read-only mode.
func (p who) name() string {
	if p.sess == nil {
		return "anonymous"
	}
	return p.sess.user
}

// handler is a page or an action, given the person behind the request.
type handler func(w http.ResponseWriter, r *http.Request, p who)

// look wraps a page (GET): anyone logged in may see it, and anyone at all when
// the console is read-only. A visitor not logged in is sent to the login page;
// an event stream or other non-page request is refused with 401.
func (c *Console) look(h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p := who{readOnly: c.ReadOnly(), sess: c.sessions.get(r)}
		if !p.readOnly && p.sess == nil {
			if r.Header.Get("Accept") == "text/event-stream" {
				http.Error(w, "log in first", http.StatusUnauthorized)
				return
			}
			http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		h(w, r, p)
	}
}

// act wraps an action (POST): it refuses a request from another site, one
// without a session or whose CSRF token is not the session's, and one from a
// user whose role is less than need.
func (c *Console) act(need string, h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p := who{readOnly: c.ReadOnly(), sess: c.sessions.get(r)}
		if err := c.checkPost(w, r, p, need); err != nil {
			c.p.Log.Warn("console request refused", zap.String("path", r.URL.Path), zap.String("user", p.name()),
				zap.String("remote", clientAddr(r)), zap.Error(err))
			c.fail(w, r, p, http.StatusForbidden, err.Error())
			return
		}
		h(w, r, p)
	}
}

// checkPost checks an action's request; its error says why it is refused.
func (c *Console) checkPost(w http.ResponseWriter, r *http.Request, p who, need string) error {
	if err := sameOrigin(r); err != nil {
		return err
	}
	if p.readOnly {
		return errors.New("this console is read-only: console.users is empty")
	}
	if p.sess == nil {
		return errors.New("log in first")
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if !sameToken(r.PostFormValue("csrf"), p.sess.csrf) {
		return errors.New("the form's CSRF token is missing or not this session's: reload the page and try again")
	}
	if need == config.RoleOperator && !p.canAct() {
		return fmt.Errorf("user %s is a %s: only an operator may do this", p.sess.user, p.sess.role)
	}
	return nil
}

// sameOrigin refuses a request that a browser says comes from another site:
// a Sec-Fetch-Site other than same-origin or none, or an Origin other than the
// request's own scheme and host.
//
// Under Referrer-Policy no-referrer a browser sends "Origin: null" even with a
// form of the page's own origin; such a request passes only when the browser
// also says Sec-Fetch-Site: same-origin (a header no page can set). Without
// Sec-Fetch-Site (an old browser, a script), "null" is refused like any other
// foreign origin.
func sameOrigin(r *http.Request) error {
	site := r.Header.Get("Sec-Fetch-Site")
	if site != "" && site != "same-origin" && site != "none" {
		return fmt.Errorf("cross-site request refused (Sec-Fetch-Site: %s)", site)
	}
	origin := r.Header.Get("Origin")
	if origin == "" || origin == "null" && site == "same-origin" {
		return nil
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if origin != scheme+"://"+r.Host {
		return errors.New("cross-origin request refused (its Origin is not this console's)")
	}
	return nil
}
