package egress

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// tunnel serves CONNECT host:port: it checks and dials the destination, answers
// 200, then copies bytes both ways until both sides are done, the tunnel has
// been idle for IdleTimeout, or the proxy closes.
func (p *Proxy) tunnel(w http.ResponseWriter, r *http.Request) {
	up, err := p.connect(r.Context(), r.Host)
	if err != nil {
		p.fail(w, err)
		return
	}
	p.splice(w, up)
}

// connect resolves, checks and dials a CONNECT target.
func (p *Proxy) connect(ctx context.Context, hostport string) (net.Conn, error) {
	host, port, err := splitHostPort(hostport)
	if err != nil {
		return nil, err
	}
	d, err := p.resolve(ctx, host, port)
	if err != nil {
		return nil, err
	}
	p.params.Log.Debug("egress: tunnel", zap.String("dest", d.hostport))
	return p.dial(ctx, d)
}

// splice takes the client's connection over from the HTTP server and joins it
// to up.
func (p *Proxy) splice(w http.ResponseWriter, up net.Conn) {
	client, buf, err := http.NewResponseController(w).Hijack()
	if err != nil {
		_ = up.Close()
		http.Error(w, "egress: cannot take the connection over: "+err.Error(), http.StatusInternalServerError)
		return
	}
	if !p.track(client, up) {
		_ = client.Close()
		_ = up.Close()
		return
	}
	defer p.untrack(client, up)
	act := newActivity()
	c, u := newIdleConn(client, p.params.IdleTimeout, act), newIdleConn(up, p.params.IdleTimeout, act)
	defer func() { _ = c.Close() }()
	defer func() { _ = u.Close() }()
	if _, err := io.WriteString(c, "HTTP/1.1 200 Connection Established\r\n\r\n"); err != nil {
		return
	}
	// Bytes the client sent right after its request (a TLS ClientHello), which
	// the server had already read.
	if n := buf.Reader.Buffered(); n > 0 {
		early, _ := buf.Peek(n)
		if _, err := u.Write(early); err != nil {
			return
		}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		pipe(u, c)
	}()
	pipe(c, u)
	<-done
}

// pipe copies src to dst. At src's end it half-closes dst, so that the peer
// sees the end too while the other way goes on; after an error it closes both,
// which ends the other way as well.
func pipe(dst, src *idleConn) {
	if _, err := io.Copy(dst, src); err != nil {
		_ = dst.Close()
		_ = src.Close()
		return
	}
	if cw, ok := dst.Conn.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
		return
	}
	_ = dst.Close()
}

// activity is the time of the last byte through a connection, or through
// either connection of a tunnel, in Unix nanoseconds.
type activity struct{ last atomic.Int64 }

func newActivity() *activity {
	a := &activity{}
	a.touch()
	return a
}

func (a *activity) touch()               { a.last.Store(time.Now().UnixNano()) }
func (a *activity) since() time.Duration { return time.Since(time.Unix(0, a.last.Load())) }

// idleConn is a connection that fails a read or write once no byte has gone
// through it (or its tunnel partner, which shares act) for idle. Its methods
// hide the embedded conn's ReadFrom and WriteTo, so every byte counts.
type idleConn struct {
	net.Conn
	idle time.Duration
	act  *activity
}

func newIdleConn(c net.Conn, idle time.Duration, act *activity) *idleConn {
	return &idleConn{Conn: c, idle: idle, act: act}
}

func (c *idleConn) Read(b []byte) (int, error) {
	for {
		if err := c.SetReadDeadline(time.Now().Add(c.idle)); err != nil {
			return 0, err
		}
		n, err := c.Conn.Read(b)
		if n > 0 {
			c.act.touch()
		}
		// This way was quiet, but the other way was not: wait on.
		if n == 0 && errors.Is(err, os.ErrDeadlineExceeded) && c.act.since() < c.idle {
			continue
		}
		return n, err
	}
}

func (c *idleConn) Write(b []byte) (int, error) {
	if err := c.SetWriteDeadline(time.Now().Add(c.idle)); err != nil {
		return 0, err
	}
	n, err := c.Conn.Write(b)
	if n > 0 {
		c.act.touch()
	}
	return n, err
}
