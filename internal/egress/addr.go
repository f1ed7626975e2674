package egress

import (
	"fmt"
	"net/netip"
)

// forbidden lists the address ranges the proxy refuses, most specific first: the
// first prefix holding an address names the reason. IPv4-mapped IPv6 addresses
// are unmapped before the lookup; NAT64 and 6to4 addresses are judged by the
// IPv4 address they embed.
var forbidden = []struct {
	prefix netip.Prefix
	reason string
}{
	// IPv4.
	{netip.MustParsePrefix("169.254.169.254/32"), "cloud metadata"},
	{netip.MustParsePrefix("100.100.100.200/32"), "cloud metadata"},
	{netip.MustParsePrefix("0.0.0.0/8"), "unspecified (this network)"},
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback"},
	{netip.MustParsePrefix("10.0.0.0/8"), "private"},
	{netip.MustParsePrefix("172.16.0.0/12"), "private"},
	{netip.MustParsePrefix("192.168.0.0/16"), "private"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local"},
	{netip.MustParsePrefix("100.64.0.0/10"), "shared address space (CGNAT)"},
	{netip.MustParsePrefix("192.0.0.0/24"), "reserved (IETF protocol assignments)"},
	{netip.MustParsePrefix("192.0.2.0/24"), "reserved (documentation)"},
	{netip.MustParsePrefix("198.51.100.0/24"), "reserved (documentation)"},
	{netip.MustParsePrefix("203.0.113.0/24"), "reserved (documentation)"},
	{netip.MustParsePrefix("198.18.0.0/15"), "reserved (benchmarking)"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast"},
	{netip.MustParsePrefix("255.255.255.255/32"), "broadcast"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved"},
	// IPv6.
	{netip.MustParsePrefix("fd00:ec2::254/128"), "cloud metadata"},
	{netip.MustParsePrefix("::/128"), "unspecified"},
	{netip.MustParsePrefix("::1/128"), "loopback"},
	{netip.MustParsePrefix("::/96"), "reserved (IPv4-compatible IPv6)"},
	{netip.MustParsePrefix("::ffff:0:0:0/96"), "reserved (IPv4-translated IPv6)"},
	{netip.MustParsePrefix("64:ff9b:1::/48"), "reserved (local-use NAT64)"},
	{netip.MustParsePrefix("100::/64"), "reserved (discard)"},
	{netip.MustParsePrefix("2001::/32"), "reserved (Teredo)"},
	{netip.MustParsePrefix("2001:db8::/32"), "reserved (documentation)"},
	{netip.MustParsePrefix("fc00::/7"), "private (unique local)"},
	{netip.MustParsePrefix("fe80::/10"), "link-local"},
	{netip.MustParsePrefix("fec0::/10"), "reserved (site-local)"},
	{netip.MustParsePrefix("ff00::/8"), "multicast"},
}

var (
	nat64     = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour = netip.MustParsePrefix("2002::/16")
)

// classify returns why a is forbidden, or "" for an address the proxy may
// reach. It ignores the allow list (see policy.refuse).
func classify(a netip.Addr) string {
	a = a.WithZone("").Unmap()
	if !a.IsValid() {
		return "invalid address"
	}
	if a.Is6() {
		b := a.As16()
		var v4 netip.Addr
		switch {
		case nat64.Contains(a):
			v4 = netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})
		case sixToFour.Contains(a):
			v4 = netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]})
		}
		if v4.IsValid() {
			if why := classify(v4); why != "" {
				return fmt.Sprintf("%s (embeds %s)", why, v4)
			}
			return ""
		}
	}
	for _, f := range forbidden {
		if f.prefix.Contains(a) {
			return f.reason
		}
	}
	return ""
}

// policy decides which addresses the proxy may connect to.
type policy struct {
	allow []netip.Prefix
	self  netip.AddrPort // the proxy's own listening address: never a destination
}

// refuse returns why the proxy must not connect to a:port, or "" when it may: a
// is outside every forbidden range, or inside an allowed prefix.
func (pol policy) refuse(a netip.Addr, port uint16) string {
	a = a.WithZone("").Unmap()
	if pol.self.IsValid() && a == pol.self.Addr() && port == pol.self.Port() {
		return "the guard proxy itself"
	}
	why := classify(a)
	if why == "" {
		return ""
	}
	for _, p := range pol.allow {
		if p.Contains(a) {
			return ""
		}
	}
	return why
}
