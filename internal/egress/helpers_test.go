package egress

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeResolver answers names from a table: the i-th lookup of a name gets its
// i-th answer, the last answer repeating. It counts lookups.
type fakeResolver struct {
	mu      sync.Mutex
	answers map[string][][]netip.Addr
	calls   map[string]int
}

func newResolver(answers map[string][]string) *fakeResolver {
	r := &fakeResolver{answers: map[string][][]netip.Addr{}, calls: map[string]int{}}
	for name, list := range answers {
		for _, answer := range list {
			var addrs []netip.Addr
			for _, a := range strings.Split(answer, ",") {
				addrs = append(addrs, netip.MustParseAddr(a))
			}
			r.answers[name] = append(r.answers[name], addrs)
		}
	}
	return r
}

func (r *fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	list, ok := r.answers[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	i := min(r.calls[host], len(list)-1)
	r.calls[host]++
	return list[i], nil
}

func (r *fakeResolver) lookups(host string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls[host]
}

// refusals records OnRefuse calls.
type refusals struct {
	mu   sync.Mutex
	list []string // "hostport addr reason"
}

func (r *refusals) add(hostport string, addr netip.Addr, reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.list = append(r.list, fmt.Sprintf("%s %s %s", hostport, addr, reason))
}

func (r *refusals) get() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.list...)
}

// startProxy starts a proxy with params (OnRefuse recorded) and closes it at
// the test's end.
func startProxy(t *testing.T, params Params) (*Proxy, *refusals) {
	t.Helper()
	refused := &refusals{}
	params.OnRefuse = refused.add
	p, err := Start(context.Background(), params)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return p, refused
}

func prefixes(list ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range list {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

// listen listens on addr ("127.0.0.2:0", "[::1]:0") for the test's length.
func listen(t *testing.T, addr string) net.Listener {
	t.Helper()
	var lc net.ListenConfig
	ln, err := lc.Listen(context.Background(), "tcp", addr)
	if err != nil {
		t.Fatalf("listen on %s: %v", addr, err)
	}
	return ln
}

// server is an HTTP server on addr that counts the requests it gets.
type server struct {
	*httptest.Server
	hits atomic.Int64
	port string
}

func newServer(t *testing.T, addr string, tlsOn bool, h http.HandlerFunc) *server {
	t.Helper()
	s := &server{}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		h(w, r)
	}))
	_ = s.Listener.Close()
	s.Listener = listen(t, addr)
	if tlsOn {
		s.StartTLS()
	} else {
		s.Start()
	}
	t.Cleanup(s.Close)
	_, s.port, _ = net.SplitHostPort(s.Listener.Addr().String())
	return s
}

// text answers every request with body.
func text(body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, body) }
}

// recorder is a bare TCP listener that counts connections and closes them.
type recorder struct {
	ln    net.Listener
	conns atomic.Int64
}

func newRecorder(t *testing.T, addr string) *recorder {
	t.Helper()
	r := &recorder{ln: listen(t, addr)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := r.ln.Accept()
			if err != nil {
				return
			}
			r.conns.Add(1)
			_ = c.Close()
		}
	}()
	t.Cleanup(func() { _ = r.ln.Close(); <-done })
	return r
}

func (r *recorder) port() string {
	_, port, _ := net.SplitHostPort(r.ln.Addr().String())
	return port
}

// client is an HTTP client that goes through p; with srv set it trusts srv's
// certificate.
func client(t *testing.T, p *Proxy, srv *httptest.Server) *http.Client {
	t.Helper()
	u, err := url.Parse(p.URL())
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{Proxy: http.ProxyURL(u), DisableKeepAlives: true}
	if srv != nil {
		tr.TLSClientConfig = &tls.Config{RootCAs: srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs}
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// get fetches rawURL through c and returns the status and body.
func get(t *testing.T, c *http.Client, rawURL string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", rawURL, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: body: %v", rawURL, err)
	}
	return resp.StatusCode, string(body)
}

// dialProxy opens a raw connection to the proxy.
func dialProxy(t *testing.T, p *Proxy) net.Conn {
	t.Helper()
	var d net.Dialer
	c, err := d.DialContext(context.Background(), "tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	return c
}

// connect sends CONNECT target over a raw connection and returns the
// connection, a reader positioned after the response head, the status code and,
// for a refusal, the response body.
func connect(t *testing.T, p *Proxy, target string) (net.Conn, *bufio.Reader, int, string) {
	t.Helper()
	c := dialProxy(t, p)
	if _, err := fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, target); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		t.Fatalf("CONNECT %s: %v", target, err)
	}
	if resp.StatusCode == http.StatusOK {
		return c, br, resp.StatusCode, "" // the body is the tunnel
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		t.Fatalf("CONNECT %s: body: %v", target, err)
	}
	return c, br, resp.StatusCode, string(body)
}
