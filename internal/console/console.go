// Package console is the operator's web console, served by `workerctl web`:
// an http.Handler whose pages show the queue, the running tasks with live
// progress, a search by task, order or e-mail, the dead letters, the delayed
// jobs, the webhook events given up on and the workers, and whose forms requeue,
// purge, run now, redeliver, pause and resume.
//
// It reads and acts through the same code as workerctl (a *ctl.Tool: Redis
// through package rdb, rows through package store, logs through package
// logfile), so a page and a command never disagree. Pages are rendered on the
// server with html/template from files embedded in the binary; a small script
// (static/console.js) moves the progress bars and follows a task log over
// server-sent events, and every page works without it.
//
// Security: users are console.users (role:name:bcrypt-hash; a viewer looks, an
// operator acts); sessions live in this process's memory; every state-changing
// request is a POST checked for its session's CSRF token, a same-origin Origin
// and Sec-Fetch-Site; logins are rate-limited per client address and per user
// name. With no users the console is read-only, hides e-mail addresses and
// serves only on loopback (Serve refuses another address). Every page carries a
// strict Content-Security-Policy: no inline script or style at all. Job payloads
// and log lines are hostile input, and reach a page only through html/template.
package console

import (
	"context"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/coursedl/worker/internal/config"
	"github.com/coursedl/worker/internal/ctl"
	"github.com/coursedl/worker/internal/loop"
	"github.com/coursedl/worker/internal/store"
)

// Rows reads download_tasks for the search and the charts; *store.Store
// satisfies it.
type Rows interface {
	ByOrder(ctx context.Context, orderID int64, limit int) ([]store.Detail, error)
	ByEmail(ctx context.Context, email string, limit int) ([]store.Detail, error)
	EndedPerMinute(ctx context.Context, window time.Duration) ([]store.EndedMinute, error)
}

// Defaults of Params.
const (
	DefaultSampleEvery = 15 * time.Second // how often the queue depth is sampled for the chart
	DefaultFailDelay   = time.Second      // how long a wrong password waits for its answer
	DefaultMaxStreams  = 32               // server-sent event streams at once (each holds a Redis connection)
)

// Params build a Console.
type Params struct {
	// Tool reads and acts: its Redis is the one door into Redis, its Rows
	// (nil without mysql.dsn) read the task rows, its LogsDir is logs.dir.
	Tool *ctl.Tool
	// Rows reads the rows the search and the charts need; nil without
	// mysql.dsn (the search says so, the finished-tasks chart is empty).
	Rows Rows
	// Users is console.users (validated by package config). None: the
	// console is read-only.
	Users []string
	Log   *zap.Logger
	// Now is the console's clock, for sessions, the login limiter and the
	// samples; time.Now when nil.
	Now         func() time.Time
	SampleEvery time.Duration // default DefaultSampleEvery
	FailDelay   time.Duration // default DefaultFailDelay; negative: none (tests)
	MaxStreams  int           // default DefaultMaxStreams
}

// Console is the web console: an http.Handler, and a loop (Run) that samples
// the queue depth and forgets expired sessions.
type Console struct {
	p        Params
	users    map[string]config.ConsoleUser // by name
	dummy    []byte                        // dummyHash's
	sessions *sessions
	limiter  *limiter
	samples  *samples
	pages    *pages
	streams  chan struct{} // a token per open event stream
	mux      http.Handler
}

// New returns the console described by p.
func New(p Params) (*Console, error) {
	if p.Now == nil {
		p.Now = time.Now
	}
	if p.Log == nil {
		p.Log = zap.NewNop()
	}
	if p.SampleEvery <= 0 {
		p.SampleEvery = DefaultSampleEvery
	}
	if p.FailDelay == 0 {
		p.FailDelay = DefaultFailDelay
	}
	if p.MaxStreams <= 0 {
		p.MaxStreams = DefaultMaxStreams
	}
	pg, err := loadPages()
	if err != nil {
		return nil, err
	}
	c := &Console{
		p:        p,
		users:    map[string]config.ConsoleUser{},
		sessions: newSessions(p.Now),
		limiter:  newLimiter(p.Now),
		samples:  newSamples(time.Hour, p.SampleEvery),
		pages:    pg,
		streams:  make(chan struct{}, p.MaxStreams),
	}
	var users []config.ConsoleUser
	for _, item := range p.Users {
		u := config.ParseConsoleUser(item)
		c.users[u.Name] = u
		users = append(users, u)
	}
	if len(users) > 0 {
		if c.dummy, err = dummyHash(users); err != nil {
			return nil, err
		}
	}
	c.mux = c.routes()
	return c, nil
}

// ReadOnly reports whether the console has no users: nobody logs in, nothing
// can be changed, e-mail addresses are hidden.
func (c *Console) ReadOnly() bool { return len(c.users) == 0 }

// ServeHTTP serves the console.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) { c.mux.ServeHTTP(w, r) }

// Run samples the queue depth every SampleEvery for the overview's chart (Redis
// keeps no history of it; the samples live in this process and start afresh
// with it), and forgets expired sessions and login failures, until ctx ends.
func (c *Console) Run(ctx context.Context) error {
	return loop.Run(ctx, loop.Params{
		Every:   c.p.SampleEvery,
		Timeout: 5 * time.Second,
		Log:     c.p.Log,
		Failing: "cannot sample the queue depth for the overview's chart",
		Back:    "sampling the queue depth again",
	}, func(ctx context.Context) (time.Time, error) {
		c.sessions.prune()
		c.limiter.prune()
		return time.Time{}, c.sample(ctx)
	})
}
