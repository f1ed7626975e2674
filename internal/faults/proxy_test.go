package faults

import (
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
	"testing"
)

// proxy is a TCP proxy on a loopback port of its own in front of a server: a
// worker configured with its address reaches the server through it, and the
// test cuts that worker off (every connection closed, new ones refused) and
// lets it back.
type proxy struct {
	t      *testing.T
	addr   string
	target string

	mu    sync.Mutex
	l     net.Listener // nil while cut
	conns map[net.Conn]bool
}

// startProxy listens on a free port and forwards every connection to target.
func startProxy(t *testing.T, target string) *proxy {
	t.Helper()
	p := &proxy{t: t, addr: "127.0.0.1:" + strconv.Itoa(freePort(t)), target: target, conns: map[net.Conn]bool{}}
	p.restore()
	t.Cleanup(p.cut)
	return p
}

// restore listens again: new connections go through.
func (p *proxy) restore() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.l != nil {
		return
	}
	var lc net.ListenConfig
	l, err := lc.Listen(p.t.Context(), "tcp", p.addr)
	if err != nil {
		p.t.Fatalf("proxy listen on %s: %v", p.addr, err)
	}
	p.l = l
	go p.serve(l)
}

// cut closes every connection and the listener: connecting is refused.
func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.l != nil {
		_ = p.l.Close()
		p.l = nil
	}
	for c := range p.conns {
		_ = c.Close()
	}
	clear(p.conns)
}

func (p *proxy) serve(l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				p.t.Logf("proxy accept: %v", err)
			}
			return
		}
		go p.pipe(c)
	}
}

// pipe copies both ways between c and a new connection to the target, until
// either side closes or the proxy is cut.
func (p *proxy) pipe(c net.Conn) {
	var d net.Dialer
	up, err := d.DialContext(p.t.Context(), "tcp", p.target)
	if err != nil {
		_ = c.Close()
		return
	}
	if !p.track(c, up) {
		return
	}
	done := make(chan struct{}, 2)
	copyHalf := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		done <- struct{}{}
	}
	go copyHalf(up, c)
	go copyHalf(c, up)
	<-done
	_ = c.Close()
	_ = up.Close()
	<-done
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, up)
	p.mu.Unlock()
}

// track notes a pair of connections, or closes them when the proxy was cut
// meanwhile.
func (p *proxy) track(c, up net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.l == nil {
		_ = c.Close()
		_ = up.Close()
		return false
	}
	p.conns[c], p.conns[up] = true, true
	return true
}
