package console

import (
	"context"
	"fmt"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
	"golang.org/x/crypto/bcrypt"

	"github.com/coursedl/worker/internal/config"
)

// dummyHash returns a hash of a random password at the cost of the users'
// hashes, compared against when the user name is unknown, so that a wrong name
// costs as much time as a wrong password.
func dummyHash(users []config.ConsoleUser) ([]byte, error) {
	cost := 0
	for _, u := range users {
		if n, err := bcrypt.Cost([]byte(u.Hash)); err == nil {
			cost = max(cost, n)
		}
	}
	if cost == 0 {
		cost = bcrypt.DefaultCost
	}
	return bcrypt.GenerateFromPassword([]byte(randomToken()[:40]), cost)
}

// loginView is the login page's data.
type loginView struct {
	Token string // the form's token, also in loginCookie
	Next  string
	Name  string
	Error string
}

// loginPage shows the login form; with no users it sends to the overview.
func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	if c.ReadOnly() {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	c.showLogin(w, r, http.StatusOK, loginView{Next: r.URL.Query().Get("next")})
}

func (c *Console) showLogin(w http.ResponseWriter, r *http.Request, status int, v loginView) {
	v.Token = randomToken()
	v.Next = safeNext(v.Next)
	setCookie(w, r, loginCookie, v.Token, 3600)
	c.render(w, r, status, "login", &view{Title: "Log in", Data: v})
}

// login checks a name and password. A wrong one is answered after
// FailDelay and counted by the limiter against the client's address and the
// name; a closed address or name is answered 429 without looking at the
// password. A login ends any session the browser had and starts a new one
// (a fresh id and CSRF token).
func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	if err := sameOrigin(r); err != nil {
		http.Error(w, err.Error(), http.StatusForbidden)
		return
	}
	if c.ReadOnly() {
		http.Error(w, "this console is read-only: console.users is empty", http.StatusForbidden)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	ck, err := r.Cookie(loginCookie)
	if err != nil || !sameToken(r.PostFormValue("token"), ck.Value) {
		c.showLogin(w, r, http.StatusForbidden, loginView{Error: "The login form expired or came from another page: try again."})
		return
	}
	name, next := strings.TrimSpace(r.PostFormValue("name")), r.PostFormValue("next")
	keys := []string{"addr " + clientAddr(r), "user " + name}
	if wait := c.limiter.wait(keys...); wait > 0 {
		c.p.Log.Warn("console login refused: too many failures", zap.String("user", name), zap.String("remote", clientAddr(r)))
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
		c.showLogin(w, r, http.StatusTooManyRequests, loginView{Name: name, Next: next,
			Error: fmt.Sprintf("Too many failed logins: try again in %s.", wait.Round(time.Second))})
		return
	}
	u, known := c.users[name]
	hash := c.dummy
	if known {
		hash = []byte(u.Hash)
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(r.PostFormValue("password"))) != nil || !known {
		c.limiter.failed(keys...)
		c.p.Log.Warn("console login failed", zap.String("user", name), zap.String("remote", clientAddr(r)))
		c.slowly(r.Context())
		c.showLogin(w, r, http.StatusUnauthorized, loginView{Name: name, Next: next, Error: "Wrong user name or password."})
		return
	}
	c.limiter.succeeded(keys...)
	if old := c.sessions.get(r); old != nil {
		c.sessions.end(old)
	}
	ss := c.sessions.start(u.Name, u.Role)
	setCookie(w, r, sessionCookie, ss.id, 0)
	setCookie(w, r, loginCookie, "", -1)
	c.p.Log.Info("console login", zap.String("user", u.Name), zap.String("role", u.Role), zap.String("remote", clientAddr(r)))
	http.Redirect(w, r, safeNext(next), http.StatusSeeOther) //nolint:gosec // G710: safeNext keeps it a path of this console
}

// slowly waits FailDelay, or until the client has gone.
func (c *Console) slowly(ctx context.Context) {
	if c.p.FailDelay <= 0 {
		return
	}
	t := time.NewTimer(c.p.FailDelay)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// logout ends the session.
func (c *Console) logout(w http.ResponseWriter, r *http.Request, p who) {
	c.sessions.end(p.sess)
	setCookie(w, r, sessionCookie, "", -1)
	c.p.Log.Info("console logout", zap.String("user", p.name()))
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// safeNext keeps a redirect after login on this console: a path, never
// another site ("//evil", "https://evil", "/\evil").
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") {
		return "/"
	}
	return next
}

// clientAddr is the client's IP address, as the connection shows it (a proxy
// in front shows as one client).
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
