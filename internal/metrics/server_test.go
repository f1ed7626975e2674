package metrics_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/coursedl/worker/internal/metrics"
	"github.com/coursedl/worker/internal/testutil"
)

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	var lc net.ListenConfig
	ln, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// serve runs a Server until the test ends and returns its base URL.
func serve(t *testing.T, o metrics.ServerOptions) string {
	t.Helper()
	o.Addr = "127.0.0.1:0"
	s, err := metrics.NewServer(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return "http://" + s.Addr()
}

func TestHealthAndReadinessAgainstRealServices(t *testing.T) {
	rdb := testutil.Redis(t)
	db, _ := testutil.MySQL(t)
	away := redis.NewClient(&redis.Options{Addr: closedAddr(t), MaxRetries: -1})
	t.Cleanup(func() { _ = away.Close() })
	redisPing := func(c *redis.Client) func(context.Context) error {
		return func(ctx context.Context) error { return c.Ping(ctx).Err() }
	}

	up := serve(t, metrics.ServerOptions{Metrics: metrics.New(), Checks: []metrics.Check{
		{Name: "redis", Probe: redisPing(rdb)},
		{Name: "mysql", Probe: db.PingContext},
	}})
	if code, body := testutil.Get(t, up+"/healthz"); code != 200 || body != "ok\n" {
		t.Fatalf("/healthz: %d %q", code, body)
	}
	if code, body := testutil.Get(t, up+"/readyz"); code != 200 || body != "redis: ok\nmysql: ok\n" {
		t.Fatalf("/readyz with both services up: %d %q", code, body)
	}
	if code, body := testutil.Get(t, up+"/metrics"); code != 200 || !strings.Contains(body, "coursedl_tasks_started_total 0") {
		t.Fatalf("/metrics: %d %.300q", code, body)
	}

	down := serve(t, metrics.ServerOptions{Checks: []metrics.Check{
		{Name: "redis", Probe: redisPing(away)},
		{Name: "mysql", Probe: db.PingContext},
	}})
	code, body := testutil.Get(t, down+"/readyz")
	if code != http.StatusServiceUnavailable || !strings.HasPrefix(body, "redis: ") ||
		!strings.Contains(body, "refused") || !strings.HasSuffix(body, "mysql: ok\n") {
		t.Fatalf("/readyz with Redis away: %d %q", code, body)
	}
	if code, _ := testutil.Get(t, down+"/healthz"); code != 200 {
		t.Fatalf("/healthz must answer while the process lives, got %d", code)
	}
	if code, _ := testutil.Get(t, down+"/metrics"); code != http.StatusNotFound {
		t.Fatalf("/metrics without Metrics: %d", code)
	}
}

func TestReadinessIsFreshAndBounded(t *testing.T) {
	var failing atomic.Bool
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	var hang atomic.Bool
	url := serve(t, metrics.ServerOptions{CheckTimeout: 300 * time.Millisecond, Checks: []metrics.Check{
		{Name: "flaky", Probe: func(context.Context) error {
			if failing.Load() {
				return errors.New("down\nfor now")
			}
			return nil
		}},
		{Name: "stuck", Probe: func(ctx context.Context) error {
			if hang.Load() {
				<-release // ignores ctx, as a careless driver might
			}
			return nil
		}},
	}})
	steps := []struct {
		failing, hang bool
		code          int
		body          string
	}{
		{false, false, 200, "flaky: ok\nstuck: ok\n"},
		{true, false, 503, "flaky: down; for now\nstuck: ok\n"},
		{false, false, 200, "flaky: ok\nstuck: ok\n"}, // no stale answer kept
		{false, true, 503, "flaky: ok\nstuck: no answer within the check timeout: context deadline exceeded\n"},
	}
	for i, s := range steps {
		failing.Store(s.failing)
		hang.Store(s.hang)
		began := time.Now()
		code, body := testutil.Get(t, url+"/readyz")
		if code != s.code || body != s.body {
			t.Fatalf("step %d: %d %q, want %d %q", i, code, body, s.code, s.body)
		}
		if took := time.Since(began); took > 2*time.Second {
			t.Fatalf("step %d: /readyz took %s; checks are bounded by their timeout", i, took)
		}
	}
}

func TestServerStopsWithContextAndFailsEarlyOnABusyPort(t *testing.T) {
	s, err := metrics.NewServer(t.Context(), metrics.ServerOptions{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := metrics.NewServer(t.Context(), metrics.ServerOptions{Addr: s.Addr()}); err == nil ||
		!strings.Contains(err.Error(), "metrics.listen") {
		t.Fatalf("second server on %s: %v, want a metrics.listen error", s.Addr(), err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	testutil.Eventually(t, 5*time.Second, func() bool {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+s.Addr()+"/healthz", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			_ = resp.Body.Close() // only whether it answered counts
		}
		return err == nil
	}, "server did not answer")
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run after cancel: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	d := net.Dialer{Timeout: time.Second}
	if _, err := d.DialContext(t.Context(), "tcp", s.Addr()); err == nil {
		t.Fatal("still listening after Run returned")
	}
}
