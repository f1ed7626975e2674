package egress

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"syscall"

	"go.uber.org/zap"
)

// dest is a destination the proxy has resolved and checked: the request's
// connections go to addrs only, never to the name again.
type dest struct {
	hostport string       // as the client named it
	port     uint16       // the port to dial on each address
	addrs    []netip.Addr // the allowed addresses, in the resolver's order
}

// refusal is a destination every address of which is forbidden.
type refusal struct {
	hostport string
	addr     netip.Addr
	reason   string
}

func (r *refusal) Error() string {
	return fmt.Sprintf("egress: refused %s (%s): %s", r.hostport, r.addr, r.reason)
}

// errBadTarget is a request that names no usable destination.
var errBadTarget = errors.New("egress: bad destination")

// resolve looks host up once (a literal address is taken as it is) and keeps
// the addresses the policy allows. When the name has allowed and forbidden
// addresses, only the allowed ones are dialed; when it has none allowed, the
// request is refused with the first forbidden address.
func (p *Proxy) resolve(ctx context.Context, host string, port uint16) (dest, error) {
	d := dest{hostport: net.JoinHostPort(host, strconv.Itoa(int(port))), port: port}
	if host == "" || port == 0 {
		return d, fmt.Errorf("%w: %q", errBadTarget, d.hostport)
	}
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{a}
	} else {
		ctx, cancel := context.WithTimeout(ctx, p.params.DialTimeout)
		defer cancel()
		addrs, err = p.params.Resolver.LookupNetIP(ctx, "ip", host)
		if err != nil {
			return d, fmt.Errorf("egress: resolve %s: %w", host, err)
		}
	}
	var first *refusal
	for _, a := range addrs {
		a = a.WithZone("").Unmap()
		why := p.policy.refuse(a, port)
		if why == "" {
			d.addrs = append(d.addrs, a)
			continue
		}
		if first == nil {
			first = &refusal{hostport: d.hostport, addr: a, reason: why}
		}
	}
	switch {
	case len(d.addrs) > 0 && first != nil:
		p.params.Log.Info("egress: some addresses of a destination are forbidden; dialing only the others",
			zap.String("dest", d.hostport), zap.Stringer("skipped", first.addr), zap.String("reason", first.reason))
	case first != nil:
		return d, first
	case len(d.addrs) == 0:
		return d, fmt.Errorf("egress: resolve %s: no addresses", host)
	}
	return d, nil
}

// dial connects to the first of d's addresses that answers.
func (p *Proxy) dial(ctx context.Context, d dest) (net.Conn, error) {
	var errs []error
	for _, a := range d.addrs {
		c, err := p.dialer.DialContext(ctx, "tcp", netip.AddrPortFrom(a, d.port).String())
		if err == nil {
			return c, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, fmt.Errorf("egress: connect %s: %w", d.hostport, errors.Join(errs...))
}

// control is the dialer's last check, on the very address a socket is about to
// connect to: whatever path led to a dial, it never reaches a forbidden one.
func (p *Proxy) control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("egress: dial %q: not an address", address)
	}
	if why := p.policy.refuse(ap.Addr(), ap.Port()); why != "" {
		return &refusal{hostport: address, addr: ap.Addr().Unmap(), reason: why}
	}
	return nil
}

// splitHostPort splits a CONNECT target, "host:port" or "[v6]:port".
func splitHostPort(hostport string) (string, uint16, error) {
	host, portStr, err := net.SplitHostPort(hostport)
	if err != nil {
		return "", 0, fmt.Errorf("%w: %q", errBadTarget, hostport)
	}
	port, err := parsePort(portStr)
	return host, port, err
}

// parsePort parses a destination port, 1-65535.
func parsePort(s string) (uint16, error) {
	port, err := strconv.ParseUint(s, 10, 16)
	if err != nil || port == 0 {
		return 0, fmt.Errorf("%w: port %q", errBadTarget, s)
	}
	return uint16(port), nil
}

// fail answers a request the proxy will not carry: 403 for a refusal (and
// OnRefuse), 400 for a bad destination, 502 for one it could not reach.
func (p *Proxy) fail(w http.ResponseWriter, err error) {
	var ref *refusal
	switch {
	case errors.As(err, &ref):
		p.params.Log.Info("egress: refused", zap.String("dest", ref.hostport),
			zap.Stringer("addr", ref.addr), zap.String("reason", ref.reason))
		p.params.OnRefuse(ref.hostport, ref.addr, ref.reason)
		http.Error(w, ref.Error(), http.StatusForbidden)
	case errors.Is(err, errBadTarget):
		http.Error(w, err.Error(), http.StatusBadRequest)
	default:
		p.params.Log.Debug("egress: destination unreachable", zap.Error(err))
		http.Error(w, err.Error(), http.StatusBadGateway)
	}
}
