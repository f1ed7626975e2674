package egress

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"strings"
	"time"

	"go.uber.org/zap"
)

// destKey carries a request's checked dest to the transport's dial.
type destKey struct{}

// newForwarder returns the transport and reverse proxy that carry plain
// requests. The transport never resolves a name: its dial connects to the
// addresses the request's dest holds, and uses no proxy of its own.
func (p *Proxy) newForwarder() (*http.Transport, *httputil.ReverseProxy) {
	tr := &http.Transport{
		Proxy:                 nil, // never HTTP_PROXY from the worker's environment
		DialContext:           p.dialForward,
		TLSHandshakeTimeout:   p.params.DialTimeout,
		ResponseHeaderTimeout: responseHeaderTimeout,
		ExpectContinueTimeout: time.Second,
		IdleConnTimeout:       p.params.IdleTimeout,
		MaxIdleConnsPerHost:   4,
	}
	rp := &httputil.ReverseProxy{
		Rewrite:       rewrite,
		Transport:     tr,
		FlushInterval: -1, // stream: each chunk is sent on as it comes
		ErrorLog:      zap.NewStdLog(p.params.Log.Named("forward")),
		ErrorHandler:  func(w http.ResponseWriter, _ *http.Request, err error) { p.fail(w, err) },
	}
	return tr, rp
}

// rewrite prepares the outgoing request. httputil.ReverseProxy has already
// removed the hop-by-hop headers (those Connection names among them) and any
// X-Forwarded-*; rewrite removes every other Proxy-* header and sets Host from
// the URL, as a proxy must for a request in absolute form (RFC 9112, 3.2.2).
func rewrite(pr *httputil.ProxyRequest) {
	for k := range pr.Out.Header {
		if strings.HasPrefix(k, "Proxy-") {
			delete(pr.Out.Header, k)
		}
	}
	pr.Out.Host = ""
}

// forward carries a request in absolute form (GET http://host/path) to its
// destination, streaming both bodies.
func (p *Proxy) forward(w http.ResponseWriter, r *http.Request) {
	if !r.URL.IsAbs() || r.URL.Host == "" {
		http.Error(w, "egress: not a proxy request (want GET http://host/path or CONNECT host:port)", http.StatusBadRequest)
		return
	}
	defPort := map[string]string{"http": "80", "https": "443"}[r.URL.Scheme]
	if defPort == "" {
		http.Error(w, fmt.Sprintf("egress: scheme %q is not forwarded", r.URL.Scheme), http.StatusBadRequest)
		return
	}
	if r.Header.Get("Upgrade") != "" {
		http.Error(w, "egress: protocol upgrades are not forwarded; use CONNECT", http.StatusNotImplemented)
		return
	}
	portStr := r.URL.Port()
	if portStr == "" {
		portStr = defPort
	}
	port, err := parsePort(portStr)
	if err != nil {
		p.fail(w, err)
		return
	}
	d, err := p.resolve(r.Context(), r.URL.Hostname(), port)
	if err != nil {
		p.fail(w, err)
		return
	}
	p.params.Log.Debug("egress: forward", zap.String("method", r.Method), zap.String("dest", d.hostport))
	p.fwd.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), destKey{}, d)))
}

// dialForward is the transport's dial: it connects to the checked addresses of
// the request the connection is made for, never to the name in addr.
func (p *Proxy) dialForward(ctx context.Context, _, addr string) (net.Conn, error) {
	d, ok := ctx.Value(destKey{}).(dest)
	if !ok {
		return nil, fmt.Errorf("egress: dial %s without a checked destination", addr)
	}
	c, err := p.dial(ctx, d)
	if err != nil {
		return nil, err
	}
	return newIdleConn(c, p.params.IdleTimeout, newActivity()), nil
}
