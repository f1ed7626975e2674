package console

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"sync"
	"time"
)

// Sessions live in the memory of the console process, not in Redis: the
// console is one process, a restart asks the operators to log in again, and no
// reader of Redis (the web app, its developers, a Redis backup) can lift a
// session from it. The cookie holds a random 32-byte id; the session holds the
// user and the CSRF token its forms carry.
const (
	sessionCookie = "console_session"
	// loginCookie holds the token of the login form, which has no session
	// yet: the form carries the same value (double submit).
	loginCookie = "console_login"
	sessionIdle = 8 * time.Hour  // a session unused this long ends
	sessionMax  = 24 * time.Hour // and any session ends this long after login
	maxSessions = 10_000         // beyond it, the oldest session ends
)

// session is one logged-in user's.
type session struct {
	id       string
	user     string
	role     string
	csrf     string
	created  time.Time
	lastSeen time.Time
	flash    string // a message for the next page shown
}

// sessions are the logged-in users' sessions, by id.
type sessions struct {
	now func() time.Time
	mu  sync.Mutex
	m   map[string]*session
}

func newSessions(now func() time.Time) *sessions {
	return &sessions{now: now, m: map[string]*session{}}
}

// start makes a session for user with role, ending the oldest one when there
// are maxSessions already.
func (s *sessions) start(user, role string) *session {
	now := s.now()
	ss := &session{id: randomToken(), user: user, role: role, csrf: randomToken(), created: now, lastSeen: now}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.m) >= maxSessions {
		var oldest *session
		for _, o := range s.m {
			if oldest == nil || o.lastSeen.Before(oldest.lastSeen) {
				oldest = o
			}
		}
		delete(s.m, oldest.id)
	}
	s.m[ss.id] = ss
	return ss
}

// get returns the live session of the request's cookie, and notes its use;
// nil when there is none.
func (s *sessions) get(r *http.Request) *session {
	ck, err := r.Cookie(sessionCookie)
	if err != nil || ck.Value == "" {
		return nil
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := s.m[ck.Value]
	if ss == nil {
		return nil
	}
	if s.expired(ss, now) {
		delete(s.m, ss.id)
		return nil
	}
	ss.lastSeen = now
	return ss
}

func (s *sessions) expired(ss *session, now time.Time) bool {
	return now.Sub(ss.lastSeen) > sessionIdle || now.Sub(ss.created) > sessionMax
}

// end forgets a session (logout).
func (s *sessions) end(ss *session) {
	s.mu.Lock()
	delete(s.m, ss.id)
	s.mu.Unlock()
}

// prune forgets the expired sessions.
func (s *sessions) prune() {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, ss := range s.m {
		if s.expired(ss, now) {
			delete(s.m, id)
		}
	}
}

// setFlash keeps msg for the next page the session shows.
func (s *sessions) setFlash(ss *session, msg string) {
	s.mu.Lock()
	ss.flash = msg
	s.mu.Unlock()
}

// takeFlash returns the session's message and forgets it.
func (s *sessions) takeFlash(ss *session) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	msg := ss.flash
	ss.flash = ""
	return msg
}

// randomToken is 32 random bytes, URL-safe base64.
func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (it crashes the program instead)
	return base64.RawURLEncoding.EncodeToString(b)
}

// sameToken compares a token sent with the one expected in constant time; an
// empty expectation never matches.
func sameToken(got, want string) bool {
	return want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// setCookie sets a session-scoped cookie: HttpOnly, SameSite=Strict, path /,
// Secure when the request came over TLS. maxAge < 0 deletes it.
func setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{ //nolint:gosec // G124: Secure whenever the console is reached over TLS; plain HTTP on loopback or a tunnel cannot carry it
		Name:     name,
		Value:    value,
		Path:     "/",
		MaxAge:   maxAge,
		HttpOnly: true,
		Secure:   r.TLS != nil,
		SameSite: http.SameSiteStrictMode,
	})
}
