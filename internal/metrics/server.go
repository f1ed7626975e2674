package metrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
)

// DefaultCheckTimeout bounds each readiness check.
const DefaultCheckTimeout = time.Second

// Check is one dependency /readyz asks about, such as a Redis or MySQL ping.
type Check struct {
	Name  string                          // shown in /readyz's answer: "redis", "mysql"
	Probe func(ctx context.Context) error // nil when the dependency answers
}

// ServerOptions describes the HTTP endpoints.
type ServerOptions struct {
	// Addr is metrics.listen, host:port; port 0 picks a free one (tests).
	Addr string
	// Metrics is served on /metrics; nil serves none.
	Metrics *Metrics
	// Checks are run, all at once, by every /readyz request.
	Checks []Check
	// CheckTimeout bounds each check; DefaultCheckTimeout when zero.
	CheckTimeout time.Duration
	// Log may be nil.
	Log *zap.Logger
}

// Server serves /metrics, /healthz and /readyz:
//
//   - /healthz answers 200 "ok" as long as the process serves HTTP at all;
//   - /readyz runs every check afresh, each under CheckTimeout, and answers 200
//     when all pass and 503 otherwise, with one line per check either way;
//   - /metrics is the Prometheus exposition of Metrics' registry.
type Server struct {
	ln      net.Listener
	srv     *http.Server
	checks  []Check
	timeout time.Duration
	log     *zap.Logger
}

// NewServer binds o.Addr at once, so that a port in use is a start-up error, and
// returns the server; Run serves it. ctx bounds the binding only (the lookup of
// a host name in o.Addr).
func NewServer(ctx context.Context, o ServerOptions) (*Server, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", o.Addr)
	if err != nil {
		return nil, fmt.Errorf("metrics.listen %s: %w", o.Addr, err)
	}
	s := &Server{ln: ln, checks: o.Checks, timeout: o.CheckTimeout, log: o.Log}
	if s.timeout <= 0 {
		s.timeout = DefaultCheckTimeout
	}
	if s.log == nil {
		s.log = zap.NewNop()
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", s.ready)
	if o.Metrics != nil {
		reg := o.Metrics.Registry()
		mux.Handle("GET /metrics", promhttp.InstrumentMetricHandler(reg,
			promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg, Timeout: 10 * time.Second})))
	}
	s.srv = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
	}
	return s, nil
}

// Addr is the address the server listens on (with the port chosen for port 0).
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Handler is the server's routes, for tests that need no listener.
func (s *Server) Handler() http.Handler { return s.srv.Handler }

// Run serves until ctx ends, then shuts down, letting requests under way finish
// for up to 5 s. It returns nil after a shutdown caused by ctx.
func (s *Server) Run(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- s.srv.Serve(s.ln) }()
	s.log.Info("metrics and health endpoints listening", zap.String("addr", s.Addr()))
	select {
	case err := <-errc:
		return fmt.Errorf("metrics server: %w", err)
	case <-ctx.Done():
	}
	shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	err := s.srv.Shutdown(shutCtx)
	if serveErr := <-errc; !errors.Is(serveErr, http.ErrServerClosed) && err == nil {
		err = serveErr
	}
	if err != nil {
		return fmt.Errorf("metrics server shutdown: %w", err)
	}
	return nil
}

// ready runs every check at once and reports each.
func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	results := make([]error, len(s.checks))
	var wg sync.WaitGroup
	for i, c := range s.checks {
		wg.Go(func() { results[i] = s.check(ctx, c) })
	}
	wg.Wait()
	var b strings.Builder
	status := http.StatusOK
	for i, c := range s.checks {
		if results[i] != nil {
			status = http.StatusServiceUnavailable
			fmt.Fprintf(&b, "%s: %v\n", c.Name, oneLine(results[i]))
		} else {
			fmt.Fprintf(&b, "%s: ok\n", c.Name)
		}
	}
	if status != http.StatusOK {
		s.log.Debug("not ready", zap.String("checks", b.String()))
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(b.String()))
}

// check runs c under the check timeout.
func (s *Server) check(ctx context.Context, c Check) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	return probe(ctx, c.Probe)
}

// probe runs f, returning when ctx ends even if f does not honour it: a check
// that hangs must not hang /readyz.
func probe(ctx context.Context, f func(context.Context) error) error {
	done := make(chan error, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- fmt.Errorf("check panicked: %v", p)
			}
		}()
		done <- f(ctx)
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("no answer within the check timeout: %w", ctx.Err())
	}
}

func oneLine(err error) string {
	return strings.ReplaceAll(err.Error(), "\n", "; ")
}
