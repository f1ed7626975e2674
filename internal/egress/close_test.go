package egress

import (
	"context"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/coursedl/worker/internal/testutil"
)

// holder is a TCP server on 127.0.0.1 that echoes what it reads and reports on
// closed when a connection ends.
func holder(t *testing.T) (port string, closed <-chan struct{}) {
	t.Helper()
	ln := listen(t, "127.0.0.1:0")
	ch := make(chan struct{}, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		_, _ = io.Copy(c, c)
		_ = c.Close()
		ch <- struct{}{}
	}()
	t.Cleanup(func() { _ = ln.Close(); <-done })
	_, port, _ = net.SplitHostPort(ln.Addr().String())
	return port, ch
}

// Close ends an open tunnel at both ends, and leaves no goroutine behind.
func TestCloseEndsTunnel(t *testing.T) {
	before := runtime.NumGoroutine()
	port, targetClosed := holder(t)
	p, err := Start(context.Background(), Params{Allow: prefixes("127.0.0.1/32")})
	if err != nil {
		t.Fatal(err)
	}
	conn, br, code, body := connect(t, p, "127.0.0.1:"+port)
	if code != http.StatusOK {
		t.Fatalf("CONNECT: %d %q", code, body)
	}
	if _, err := io.WriteString(conn, "ping"); err != nil {
		t.Fatal(err)
	}
	echo := make([]byte, 4)
	if _, err := io.ReadFull(br, echo); err != nil || string(echo) != "ping" {
		t.Fatalf("through the tunnel: %q %v", echo, err)
	}

	closed := make(chan error, 1)
	go func() { closed <- p.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Errorf("Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return with a tunnel open")
	}
	if _, err := br.ReadByte(); err == nil {
		t.Error("the client's end of the tunnel is still open")
	}
	select {
	case <-targetClosed:
	case <-time.After(5 * time.Second):
		t.Fatal("the destination's end of the tunnel is still open")
	}
	_ = conn.Close()
	testutil.Eventually(t, 5*time.Second, func() bool { return runtime.NumGoroutine() <= before+2 },
		"goroutines left after Close") // +2: the holder's accept loop and the test's Close
}

// A plain response streams as the destination writes it, and Close ends a
// request still being answered.
func TestForwardStreamsAndCloseEndsRequest(t *testing.T) {
	before := runtime.NumGoroutine()
	ended := make(chan struct{})
	srv := newServer(t, "127.0.0.1:0", false, func(w http.ResponseWriter, r *http.Request) {
		defer close(ended)
		_, _ = io.WriteString(w, "first chunk")
		_ = http.NewResponseController(w).Flush()
		<-r.Context().Done() // the rest never comes
	})
	p, err := Start(context.Background(), Params{Allow: prefixes("127.0.0.1/32")})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, srv.URL, nil)
	resp, err := client(t, p, nil).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	first := make([]byte, len("first chunk"))
	if _, err := io.ReadFull(resp.Body, first); err != nil || string(first) != "first chunk" {
		t.Fatalf("first chunk before the response ended: %q %v", first, err)
	}
	if err := p.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if _, err := io.ReadAll(resp.Body); err == nil {
		t.Error("the response ended cleanly after Close; want it cut")
	}
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Fatal("the destination's request is still open after Close")
	}
	srv.Close()
	testutil.Eventually(t, 5*time.Second, func() bool { return runtime.NumGoroutine() <= before },
		"goroutines left after Close")
}

// Closing the context given to Start closes the proxy.
func TestStartContextCloses(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	p, err := Start(ctx, Params{})
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := p.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	var d net.Dialer
	if c, err := d.DialContext(context.Background(), "tcp", p.Addr()); err == nil {
		_ = c.Close()
		t.Error("the proxy still listens after its context ended")
	}
}

// A tunnel lives while bytes go either way, and ends after IdleTimeout without.
func TestTunnelIdleTimeout(t *testing.T) {
	const idle = 300 * time.Millisecond
	ln := listen(t, "127.0.0.1:0")
	done := make(chan struct{})
	go func() { // the destination talks for 1 s, one way, then falls silent
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer func() { _ = c.Close() }()
		for range 10 {
			if _, err := io.WriteString(c, "."); err != nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		_, _ = io.Copy(io.Discard, c) // until the proxy closes it
	}()
	t.Cleanup(func() { _ = ln.Close(); <-done })
	p, _ := startProxy(t, Params{Allow: prefixes("127.0.0.1/32"), IdleTimeout: idle})
	_, br, code, body := connect(t, p, ln.Addr().String())
	if code != http.StatusOK {
		t.Fatalf("CONNECT: %d %q", code, body)
	}
	start := time.Now()
	got, err := io.ReadAll(br)
	if string(got) != strings.Repeat(".", 10) {
		t.Errorf("read %q (%v) before the tunnel ended, want 10 dots: it ended while one way was busy", got, err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("the silent tunnel lived %s, idle timeout %s", d, idle)
	}
}

// A client that sends no request head is cut off after HeaderTimeout.
func TestHeaderTimeout(t *testing.T) {
	p, _ := startProxy(t, Params{HeaderTimeout: 200 * time.Millisecond})
	c := dialProxy(t, p)
	if _, err := io.WriteString(c, "GET http://example.com/ HTTP/1.1\r\n"); err != nil { // and no more
		t.Fatal(err)
	}
	start := time.Now()
	_, _ = io.ReadAll(c)
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("a client that never finished its headers held the connection %s", d)
	}
}
