package egress

import (
	"net/netip"
	"strings"
	"testing"
)

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		addr string
		want string // a part of the reason; "" for an address the proxy may reach
	}{
		{"8.8.8.8", ""},
		{"151.101.1.69", ""},
		{"2606:4700:4700::1111", ""},
		{"64:ff9b::808:808", ""}, // NAT64 of 8.8.8.8
		{"2002:808:808::1", ""},  // 6to4 of 8.8.8.8
		{"::ffff:8.8.8.8", ""},   // mapped 8.8.8.8
		{"127.0.0.1", "loopback"},
		{"127.0.0.2", "loopback"},
		{"::1", "loopback"},
		{"::ffff:127.0.0.1", "loopback"},
		{"64:ff9b::7f00:1", "loopback (embeds 127.0.0.1)"},
		{"2002:7f00:1::", "loopback (embeds 127.0.0.1)"},
		{"2002:a9fe:a9fe::", "cloud metadata (embeds 169.254.169.254)"},
		{"10.0.0.1", "private"},
		{"172.16.5.4", "private"},
		{"172.31.255.255", "private"},
		{"192.168.1.1", "private"},
		{"::ffff:10.1.2.3", "private"},
		{"fc00::1", "private"},
		{"fd12:3456::1", "private"},
		{"169.254.169.254", "cloud metadata"},
		{"::ffff:169.254.169.254", "cloud metadata"},
		{"fd00:ec2::254", "cloud metadata"},
		{"100.100.100.200", "cloud metadata"},
		{"169.254.1.1", "link-local"},
		{"fe80::1", "link-local"},
		{"fe80::1%eth0", "link-local"},
		{"100.64.0.1", "CGNAT"},
		{"100.127.255.254", "CGNAT"},
		{"224.0.0.1", "multicast"},
		{"239.255.255.250", "multicast"},
		{"ff02::1", "multicast"},
		{"0.0.0.0", "unspecified"},
		{"0.1.2.3", "unspecified"},
		{"::", "unspecified"},
		{"255.255.255.255", "broadcast"},
		{"240.0.0.1", "reserved"},
		{"::7f00:1", "IPv4-compatible"},
		{"2001:db8::1", "documentation"},
		{"2001:0:4136:e378:8000:63bf:3fff:fdd2", "Teredo"},
		{"192.0.2.1", "documentation"},
		{"198.18.0.1", "benchmarking"},
	} {
		got := classify(netip.MustParseAddr(tc.addr))
		if tc.want == "" && got != "" || tc.want != "" && !strings.Contains(got, tc.want) {
			t.Errorf("classify(%s) = %q, want %q", tc.addr, got, tc.want)
		}
	}
}

func TestPolicyAllow(t *testing.T) {
	pol := policy{allow: Params{Allow: prefixes("127.0.0.1/32", "::ffff:10.0.0.0/104", "fd00::/8")}.withDefaults().Allow}
	for _, tc := range []struct {
		addr   string
		refuse bool
	}{
		{"127.0.0.1", false},
		{"::ffff:127.0.0.1", false}, // the same address, mapped
		{"127.0.0.2", true},
		{"10.9.8.7", false}, // allowed through the mapped prefix
		{"11.0.0.1", false}, // public anyway
		{"fd00:ec2::254", false},
		{"fc00::1", true},
		{"::1", true},
	} {
		if got := pol.refuse(netip.MustParseAddr(tc.addr), 80); (got != "") != tc.refuse {
			t.Errorf("refuse(%s) = %q, want refused %v", tc.addr, got, tc.refuse)
		}
	}
	self := policy{self: netip.MustParseAddrPort("127.0.0.1:3128"), allow: prefixes("127.0.0.0/8")}
	if got := self.refuse(netip.MustParseAddr("127.0.0.1"), 3128); got == "" {
		t.Error("the proxy's own address is a destination")
	}
	if got := self.refuse(netip.MustParseAddr("127.0.0.1"), 3129); got != "" {
		t.Errorf("127.0.0.1:3129 refused: %s", got)
	}
}

func TestEnv(t *testing.T) {
	got := strings.Join(Env("http://127.0.0.1:4321"), " ")
	want := "HTTP_PROXY=http://127.0.0.1:4321 HTTPS_PROXY=http://127.0.0.1:4321 ALL_PROXY=http://127.0.0.1:4321 " +
		"http_proxy=http://127.0.0.1:4321 https_proxy=http://127.0.0.1:4321 all_proxy=http://127.0.0.1:4321 NO_PROXY= no_proxy="
	if got != want {
		t.Errorf("Env:\n got %s\nwant %s", got, want)
	}
}
