package egress

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func TestForwardAllowed(t *testing.T) {
	var seen http.Header
	var host string
	srv := newServer(t, "127.0.0.1:0", false, func(w http.ResponseWriter, r *http.Request) {
		seen, host = r.Header.Clone(), r.Host
		_, _ = io.WriteString(w, "course page")
	})
	res := newResolver(map[string][]string{"course.test": {"127.0.0.1"}})
	p, refused := startProxy(t, Params{Allow: prefixes("127.0.0.1/32"), Resolver: res})

	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, "http://course.test:"+srv.port+"/lesson", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Proxy-Authorization", "Basic c2VjcmV0")
	req.Header.Set("Proxy-Foo", "bar")
	req.Header.Set("Connection", "X-Hop")
	req.Header.Set("X-Hop", "1")
	req.Header.Set("X-Kept", "yes")
	resp, err := client(t, p, nil).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "course page" {
		t.Fatalf("GET through the proxy: %d %q", resp.StatusCode, body)
	}
	if host != "course.test:"+srv.port {
		t.Errorf("Host at the destination = %q, want the name the client asked for", host)
	}
	for _, k := range []string{"Proxy-Authorization", "Proxy-Foo", "Proxy-Connection", "X-Hop", "X-Forwarded-For"} {
		if v := seen.Get(k); v != "" {
			t.Errorf("%s reached the destination: %q", k, v)
		}
	}
	if seen.Get("X-Kept") != "yes" {
		t.Errorf("an end-to-end header was dropped: %v", seen)
	}
	if r := refused.get(); len(r) > 0 {
		t.Errorf("refusals: %v", r)
	}
}

func TestConnectAllowed(t *testing.T) {
	srv := newServer(t, "127.0.0.1:0", true, text("secure course page"))
	// httptest's certificate names example.com: the client checks the name
	// while the proxy dials the address the name resolved to.
	res := newResolver(map[string][]string{"example.com": {"127.0.0.1"}})
	p, _ := startProxy(t, Params{Allow: prefixes("127.0.0.1/32"), Resolver: res})
	for _, host := range []string{"example.com", "127.0.0.1"} {
		code, body := get(t, client(t, p, srv.Server), "https://"+host+":"+srv.port+"/")
		if code != http.StatusOK || body != "secure course page" {
			t.Errorf("GET https://%s through CONNECT: %d %q", host, code, body)
		}
	}
	if srv.hits.Load() != 2 {
		t.Errorf("the server had %d requests, want 2", srv.hits.Load())
	}
}

func TestRefused(t *testing.T) {
	lo := newRecorder(t, "127.0.0.1:0")
	lo2 := newRecorder(t, "127.0.0.2:0")
	lo6 := newRecorder(t, "[::1]:0")
	res := newResolver(map[string][]string{"localhost.test": {"127.0.0.1"}, "split.test": {"10.0.0.1,127.0.0.1"}})
	for _, tc := range []struct {
		hostport string
		addr     string
		reason   string
		rec      *recorder
	}{
		{"127.0.0.2:" + lo2.port(), "127.0.0.2", "loopback", lo2},
		{"[::1]:" + lo6.port(), "::1", "loopback", lo6},
		{"[::ffff:127.0.0.1]:" + lo.port(), "127.0.0.1", "loopback", lo},
		{"0.0.0.0:" + lo.port(), "0.0.0.0", "unspecified", lo},
		{"localhost.test:" + lo.port(), "127.0.0.1", "loopback", lo},
		{"split.test:" + lo.port(), "10.0.0.1", "private", lo},
		{"[::]:" + lo6.port(), "::", "unspecified", lo6},
		{"169.254.169.254:80", "169.254.169.254", "cloud metadata", nil},
		{"[fd00:ec2::254]:80", "fd00:ec2::254", "cloud metadata", nil},
		{"100.100.100.200:80", "100.100.100.200", "cloud metadata", nil},
		{"10.0.0.1:80", "10.0.0.1", "private", nil},
		{"100.64.0.1:443", "100.64.0.1", "shared address space (CGNAT)", nil},
		{"[fe80::1]:80", "fe80::1", "link-local", nil},
		{"224.0.0.1:80", "224.0.0.1", "multicast", nil},
		{"[64:ff9b::7f00:1]:80", "64:ff9b::7f00:1", "loopback (embeds 127.0.0.1)", nil},
	} {
		for _, how := range []string{"http", "connect"} {
			t.Run(how+" "+tc.hostport, func(t *testing.T) {
				p, refused := startProxy(t, Params{Resolver: res})
				var code int
				var body string
				if how == "http" {
					code, body = get(t, client(t, p, nil), "http://"+tc.hostport+"/internal-secret")
				} else {
					_, _, code, body = connect(t, p, tc.hostport)
				}
				if code != http.StatusForbidden || !strings.Contains(body, tc.reason) {
					t.Errorf("%d %q, want 403 saying %q", code, body, tc.reason)
				}
				want := fmt.Sprintf("%s %s %s", tc.hostport, tc.addr, tc.reason)
				if r := refused.get(); len(r) != 1 || !strings.HasPrefix(r[0], want) {
					t.Errorf("OnRefuse calls %q, want one %q", r, want)
				}
				if tc.rec != nil && tc.rec.conns.Load() != 0 {
					t.Errorf("the target had %d connections", tc.rec.conns.Load())
				}
			})
		}
	}
}

func TestAllowListLetsPrefixThrough(t *testing.T) {
	srv := newServer(t, "127.0.0.2:0", false, text("test course server"))
	for _, tc := range []struct {
		allow []string
		want  int
	}{
		{nil, http.StatusForbidden},
		{[]string{"127.0.0.1/32"}, http.StatusForbidden},
		{[]string{"127.0.0.2/32"}, http.StatusOK},
		{[]string{"127.0.0.0/8"}, http.StatusOK},
		{[]string{"::ffff:127.0.0.0/104"}, http.StatusOK},
	} {
		p, _ := startProxy(t, Params{Allow: prefixes(tc.allow...)})
		if code, body := get(t, client(t, p, nil), srv.URL); code != tc.want {
			t.Errorf("allow %v: %d %q, want %d", tc.allow, code, body, tc.want)
		}
	}
	if srv.hits.Load() != 3 {
		t.Errorf("the server had %d requests, want 3", srv.hits.Load())
	}
}

// A name that resolves to an allowed address when checked and to a forbidden
// one when connected (DNS rebinding) reaches the allowed one: the proxy
// resolves once per request and dials the address it checked.
func TestDNSAnswerChangesAfterCheck(t *testing.T) {
	allowed := newServer(t, "127.0.0.1:0", false, text("allowed"))
	internal := newServer(t, "127.0.0.2:"+allowed.port, false, text("INTERNAL SECRET"))
	res := newResolver(map[string][]string{
		"rebind.test":  {"127.0.0.1", "127.0.0.2"},
		"rebind2.test": {"127.0.0.1", "127.0.0.2"},
		"mixed.test":   {"127.0.0.2,127.0.0.1"},
	})
	p, refused := startProxy(t, Params{Allow: prefixes("127.0.0.1/32"), Resolver: res})
	c := client(t, p, nil)

	if code, body := get(t, c, "http://rebind.test:"+allowed.port+"/"); code != http.StatusOK || body != "allowed" {
		t.Errorf("http: %d %q", code, body)
	}
	if n := res.lookups("rebind.test"); n != 1 {
		t.Errorf("rebind.test looked up %d times for one request, want 1", n)
	}
	conn, br, code, body := connect(t, p, "rebind2.test:"+allowed.port)
	if code != http.StatusOK {
		t.Fatalf("CONNECT: %d %q", code, body)
	}
	if _, err := io.WriteString(conn, "GET / HTTP/1.1\r\nHost: rebind2.test\r\nConnection: close\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(br)
	if !strings.HasSuffix(string(rest), "allowed") {
		t.Errorf("through the tunnel: %q", rest)
	}
	if n := res.lookups("rebind2.test"); n != 1 {
		t.Errorf("rebind2.test looked up %d times for one CONNECT, want 1", n)
	}
	// Of a name with a forbidden and an allowed address only the allowed one
	// is dialed, and the request is not refused.
	if code, body := get(t, c, "http://mixed.test:"+allowed.port+"/"); code != http.StatusOK || body != "allowed" {
		t.Errorf("mixed answer: %d %q", code, body)
	}
	if r := refused.get(); len(r) != 0 {
		t.Errorf("refusals before the answer changed: %v", r)
	}
	// The next request sees the changed answer, and is refused.
	if code, _ := get(t, c, "http://rebind.test:"+allowed.port+"/"); code != http.StatusForbidden {
		t.Errorf("after the answer changed to 127.0.0.2: %d, want 403", code)
	}
	if internal.hits.Load() != 0 {
		t.Errorf("the internal server had %d requests", internal.hits.Load())
	}
}

// Whatever leads to a dial, the dialer itself refuses a forbidden address.
func TestDialerRefusesForbiddenAddress(t *testing.T) {
	rec := newRecorder(t, "127.0.0.2:0")
	p, _ := startProxy(t, Params{Allow: prefixes("127.0.0.1/32")})
	_, err := p.dialer.DialContext(context.Background(), "tcp", "127.0.0.2:"+rec.port())
	var ref *refusal
	if !errors.As(err, &ref) || ref.reason != "loopback" {
		t.Errorf("dial 127.0.0.2: %v, want a refusal", err)
	}
	if _, err := p.dialForward(context.Background(), "tcp", "127.0.0.2:"+rec.port()); err == nil {
		t.Error("the transport dialed without a checked destination")
	}
	if rec.conns.Load() != 0 {
		t.Errorf("the target had %d connections", rec.conns.Load())
	}
}

func TestBadRequests(t *testing.T) {
	res := newResolver(map[string][]string{"course.test": {"127.0.0.1"}})
	p, refused := startProxy(t, Params{Allow: prefixes("127.0.0.1/32"), Resolver: res})
	_, port, _ := net.SplitHostPort(p.Addr())
	for _, tc := range []struct {
		request string
		want    int
	}{
		{"GET / HTTP/1.1\r\nHost: course.test\r\n\r\n", http.StatusBadRequest},
		{"GET ftp://course.test/x HTTP/1.1\r\nHost: course.test\r\n\r\n", http.StatusBadRequest},
		{"CONNECT course.test HTTP/1.1\r\nHost: course.test\r\n\r\n", http.StatusBadRequest},
		{"CONNECT course.test:0 HTTP/1.1\r\nHost: course.test:0\r\n\r\n", http.StatusBadRequest},
		{"GET http://nowhere.test/ HTTP/1.1\r\nHost: nowhere.test\r\n\r\n", http.StatusBadGateway},
		{"GET http://course.test:" + port + "/ HTTP/1.1\r\nHost: x\r\n\r\n", http.StatusForbidden}, // the proxy itself
		{"GET http://course.test/ HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", http.StatusNotImplemented},
	} {
		c := dialProxy(t, p)
		if _, err := io.WriteString(c, tc.request); err != nil {
			t.Fatal(err)
		}
		line, _ := readStatus(c)
		if !strings.Contains(line, fmt.Sprint(tc.want)) {
			t.Errorf("%q: %q, want %d", tc.request, line, tc.want)
		}
	}
	if r := refused.get(); len(r) != 1 || !strings.Contains(r[0], "the guard proxy itself") {
		t.Errorf("refusals: %q", r)
	}
}

// readStatus reads a response's status line.
func readStatus(c net.Conn) (string, error) {
	buf := make([]byte, 64)
	n, err := io.ReadAtLeast(c, buf, 12)
	line, _, _ := strings.Cut(string(buf[:n]), "\r\n")
	return line, err
}

func TestURL(t *testing.T) {
	p, _ := startProxy(t, Params{})
	u, err := url.Parse(p.URL())
	if err != nil || u.Scheme != "http" || u.Hostname() != "127.0.0.1" || u.Port() == "0" || u.Port() == "" {
		t.Errorf("URL() = %q", p.URL())
	}
}
