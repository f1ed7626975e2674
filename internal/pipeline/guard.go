package pipeline

import (
	"context"
	"fmt"
	"sync"

	"go.uber.org/zap"

	"github.com/coursedl/worker/internal/download"
)

// downloadRun is what one run of the downloader is given: its job, with the
// task's copy of the cookies and its egress guard, and what the guard refused.
type downloadRun struct {
	job     download.Job
	guard   Guard
	dir     string // the task folder, holding the cookies copy
	cookies bool
	closed  bool

	mu      sync.Mutex
	refusal []string
}

// prepare copies the cookies into the task's folder and starts its egress
// guard; close undoes both.
func (p *Pipeline) prepare(ctx context.Context, t *task) (*downloadRun, error) {
	dl := &downloadRun{job: download.Job{TaskID: t.id, URL: t.url, Dir: t.dir}, dir: t.dir}
	if p.CookiesFile != "" {
		path, err := download.CopyCookies(p.CookiesFile, t.dir)
		if err != nil {
			return nil, &cookiesError{err}
		}
		dl.job.Cookies, dl.cookies = path, true
	}
	if p.Egress != nil {
		g, err := p.Egress.Guard(ctx, func(host, reason string) {
			dl.refuse(host + " (" + reason + ")")
			t.rec.record(ctx, note{line: fmt.Sprintf("egress guard refused %s: %s", host, reason)})
		})
		if err != nil {
			dl.close(t.rec.log)
			return nil, fmt.Errorf("egress guard: %w", err)
		}
		dl.guard, dl.job.Proxy, dl.job.Env = g, g.URL(), g.Env()
	}
	return dl, nil
}

func (dl *downloadRun) refuse(what string) {
	dl.mu.Lock()
	defer dl.mu.Unlock()
	dl.refusal = append(dl.refusal, what)
}

// refused lists the destinations the guard refused.
func (dl *downloadRun) refused() []string {
	dl.mu.Lock()
	defer dl.mu.Unlock()
	return append([]string(nil), dl.refusal...)
}

// close stops the guard and removes the cookies copy, once. A copy that
// cannot be removed is said in the worker's log (never its contents).
func (dl *downloadRun) close(log *zap.Logger) {
	if dl.closed {
		return
	}
	dl.closed = true
	if dl.guard != nil {
		if err := dl.guard.Close(); err != nil {
			log.Warn("egress guard not closed", zap.Error(err))
		}
	}
	if dl.cookies {
		if err := download.RemoveCookies(dl.dir); err != nil {
			log.Error("the task's cookies copy was not removed", zap.Error(err))
		}
	}
}

// cookiesError says download.cookies_file could not be copied for the task
// (removed or made unreadable since start-up): the task waits for an operator
// to mend it, without using up an attempt.
type cookiesError struct{ err error }

func (e *cookiesError) Error() string { return e.err.Error() }
func (e *cookiesError) Unwrap() error { return e.err }
