package egress

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Defaults for the zero values of Params.
const (
	DefaultListen        = "127.0.0.1:0"
	DefaultDialTimeout   = 10 * time.Second
	DefaultHeaderTimeout = 10 * time.Second
	DefaultIdleTimeout   = 5 * time.Minute
)

// responseHeaderTimeout bounds how long a plain-HTTP destination may take to
// answer a request it has read; the body then streams under the idle timeout.
const responseHeaderTimeout = 2 * time.Minute

// Resolver looks a host name up; *net.Resolver satisfies it. Tests give one
// that answers what they need (a name resolving to loopback, an answer that
// changes between two lookups).
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Params configures a Proxy. Only Allow is usually set; the rest have defaults.
type Params struct {
	// Allow lists prefixes the proxy connects to even though they are forbidden
	// (download.egress_allow: a test server on 127.0.0.1/32).
	Allow []netip.Prefix
	// Resolver resolves destination names; nil is net.DefaultResolver.
	Resolver Resolver
	// OnRefuse is called once per refused request, from the request's
	// goroutine (so possibly from several at once): hostport is the
	// destination as the client named it ("localhost:6379", "[::1]:80"), addr
	// the forbidden address it resolved to, reason why it is forbidden
	// ("loopback", "cloud metadata", ...). Nil: refusals are only logged.
	OnRefuse func(hostport string, addr netip.Addr, reason string)
	// Log gets a debug line for each request and an info line for each
	// refusal (and for addresses of a name left undialed); nil is a no-op.
	Log *zap.Logger
	// Listen is the proxy's listening address; empty is DefaultListen. Keep
	// it on loopback: the proxy asks its clients for no credentials.
	Listen string
	// DialTimeout bounds resolving and connecting to a destination.
	DialTimeout time.Duration
	// HeaderTimeout bounds reading a client's request line and headers.
	HeaderTimeout time.Duration
	// IdleTimeout closes a tunnel, a destination connection or an idle client
	// connection after that long without a byte either way.
	IdleTimeout time.Duration
}

func (p Params) withDefaults() Params {
	if p.Resolver == nil {
		p.Resolver = net.DefaultResolver
	}
	if p.Log == nil {
		p.Log = zap.NewNop()
	}
	if p.OnRefuse == nil {
		p.OnRefuse = func(string, netip.Addr, string) {}
	}
	if p.Listen == "" {
		p.Listen = DefaultListen
	}
	if p.DialTimeout <= 0 {
		p.DialTimeout = DefaultDialTimeout
	}
	if p.HeaderTimeout <= 0 {
		p.HeaderTimeout = DefaultHeaderTimeout
	}
	if p.IdleTimeout <= 0 {
		p.IdleTimeout = DefaultIdleTimeout
	}
	allow := make([]netip.Prefix, 0, len(p.Allow))
	for _, pre := range p.Allow {
		allow = append(allow, unmapPrefix(pre))
	}
	p.Allow = allow
	return p
}

// unmapPrefix turns ::ffff:a.b.c.d/N into a.b.c.d/(N-96), the form addresses
// are compared in.
func unmapPrefix(p netip.Prefix) netip.Prefix {
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(a.Unmap(), p.Bits()-96).Masked()
	}
	return p.Masked()
}

// Proxy is a running guard proxy. Its methods are safe for concurrent use.
type Proxy struct {
	params Params
	policy policy
	ln     net.Listener
	srv    *http.Server
	fwd    *httputil.ReverseProxy
	tr     *http.Transport
	dialer *net.Dialer
	cancel context.CancelFunc // cancels every request's context

	mu       sync.Mutex
	stop     func() bool // stops the context.AfterFunc of Start
	closed   bool
	tunnels  map[net.Conn]struct{} // both ends of every open tunnel
	handlers sync.WaitGroup        // requests being served, tunnels included
	served   chan struct{}         // closed when Serve has returned
	serveErr error
}

// Start listens on params.Listen and serves until Close, or until ctx is done
// (which closes the proxy too; Close must still be called to wait for it).
func Start(ctx context.Context, params Params) (*Proxy, error) {
	params = params.withDefaults()
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", params.Listen)
	if err != nil {
		return nil, fmt.Errorf("egress proxy: listen on %s: %w", params.Listen, err)
	}
	self, _ := netip.ParseAddrPort(ln.Addr().String())
	base, cancel := context.WithCancel(context.WithoutCancel(ctx))
	p := &Proxy{
		params:  params,
		policy:  policy{allow: params.Allow, self: netip.AddrPortFrom(self.Addr().Unmap(), self.Port())},
		ln:      ln,
		cancel:  cancel,
		tunnels: map[net.Conn]struct{}{},
		served:  make(chan struct{}),
	}
	p.dialer = &net.Dialer{Timeout: params.DialTimeout, Control: p.control}
	p.tr, p.fwd = p.newForwarder()
	p.srv = &http.Server{
		Handler:           p,
		ReadHeaderTimeout: params.HeaderTimeout,
		IdleTimeout:       params.IdleTimeout,
		BaseContext:       func(net.Listener) context.Context { return base },
		ErrorLog:          zap.NewStdLog(params.Log.Named("http")),
	}
	go p.serve()
	stop := context.AfterFunc(ctx, func() { _ = p.Close() })
	p.mu.Lock()
	p.stop = stop // nil until here: a Close that ran already needs no stop
	p.mu.Unlock()
	return p, nil
}

func (p *Proxy) serve() {
	defer close(p.served)
	if err := p.srv.Serve(p.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		p.serveErr = fmt.Errorf("egress proxy: serve: %w", err)
	}
}

// Addr is the proxy's listening address, "127.0.0.1:PORT".
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// URL is the proxy's URL for a client, "http://127.0.0.1:PORT".
func (p *Proxy) URL() string { return "http://" + p.Addr() }

// Close stops the proxy: it closes the listener, every client connection, every
// tunnel and every destination connection, then waits for the requests being
// served to return. It returns the error that stopped serving early, if one
// did. Calling it again waits the same way and returns the same.
func (p *Proxy) Close() error {
	p.mu.Lock()
	already, stop := p.closed, p.stop
	p.closed = true
	conns := make([]net.Conn, 0, len(p.tunnels))
	for c := range p.tunnels {
		conns = append(conns, c)
	}
	p.mu.Unlock()
	if !already {
		if stop != nil {
			stop()
		}
		p.cancel()
		_ = p.srv.Close() // the listener and every connection not hijacked
		for _, c := range conns {
			_ = c.Close()
		}
	}
	p.handlers.Wait()
	<-p.served
	p.tr.CloseIdleConnections()
	return p.serveErr
}

// enter counts a request as being served; false once the proxy is closing.
func (p *Proxy) enter() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.handlers.Add(1)
	return true
}

// track adds a tunnel's connections to the set Close closes; false (after
// closing them) once the proxy is closing.
func (p *Proxy) track(conns ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		for _, c := range conns {
			_ = c.Close()
		}
		return false
	}
	for _, c := range conns {
		p.tunnels[c] = struct{}{}
	}
	return true
}

func (p *Proxy) untrack(conns ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range conns {
		delete(p.tunnels, c)
	}
}

// ServeHTTP serves one client request: CONNECT opens a tunnel, an absolute-form
// request is forwarded, anything else is refused as not meant for a proxy.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !p.enter() {
		http.Error(w, "egress: the guard proxy is closing", http.StatusServiceUnavailable)
		return
	}
	defer p.handlers.Done()
	if r.Method == http.MethodConnect {
		p.tunnel(w, r)
		return
	}
	p.forward(w, r)
}
