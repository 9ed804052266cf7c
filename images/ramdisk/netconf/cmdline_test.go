package netconf

import (
	"net"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func addr(s string) netip.Addr  { return netip.MustParseAddr(s) }

var defaultV4 = netip.PrefixFrom(netip.IPv4Unspecified(), 0)

func TestParseIPArg(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     Plan
		use      bool
		err      string
	}{
		{name: "dhcp", in: "dhcp", use: true, want: Plan{Source: SourceIPArg, DHCPAll: true}},
		{name: "on", in: "on", use: true, want: Plan{Source: SourceIPArg, DHCPAll: true}},
		{name: "off", in: "off"},
		{name: "none", in: "none"},
		{name: "dracut device:dhcp", in: "eth1:dhcp", use: true, want: Plan{Source: SourceIPArg, DHCP: []Match{{Name: "eth1"}}}},
		{name: "full static", in: "192.0.2.10:192.0.2.2:192.0.2.1:255.255.255.0:node7:eth0:off:192.0.2.53:198.51.100.53",
			use: true, want: Plan{Source: SourceIPArg, Hostname: "node7", DNS: []netip.Addr{addr("192.0.2.53"), addr("198.51.100.53")},
				Static: []Static{{Match: Match{Name: "eth0"}, Addrs: []netip.Prefix{pfx("192.0.2.10/24")},
					Routes: []Route{{Dst: defaultV4, Gw: addr("192.0.2.1")}}}}}},
		{name: "static without device, gateway or mask: classful /16", in: "172.16.5.4::::::none",
			use: true, want: Plan{Source: SourceIPArg, Static: []Static{{Addrs: []netip.Prefix{pfx("172.16.5.4/16")}}}}},
		{name: "prefix length as netmask", in: "10.1.2.3::10.1.0.1:16",
			use: true, want: Plan{Source: SourceIPArg, Static: []Static{{Addrs: []netip.Prefix{pfx("10.1.2.3/16")},
				Routes: []Route{{Dst: defaultV4, Gw: addr("10.1.0.1")}}}}}},
		{name: "no client ip: dhcp on the device, with hostname and dns", in: ":::: node8:eth2:dhcp:192.0.2.53",
			err: "hostname field"},
		{name: "no client ip: dhcp on the device", in: "::::node8:eth2:dhcp:192.0.2.53",
			use: true, want: Plan{Source: SourceIPArg, DHCP: []Match{{Name: "eth2"}}, Hostname: "node8", DNS: []netip.Addr{addr("192.0.2.53")}}},
		{name: "no client ip, autoconf off", in: ":::::eth0:off"},
		{name: "bad client", in: "300.1.1.1::::::off", err: "client-ip"},
		{name: "ipv6 client (the kernel syntax is IPv4)", in: "2001:db8::5", err: "client-ip"},
		{name: "bad gateway", in: "10.0.0.5::gw:255.0.0.0", err: "gw-ip"},
		{name: "non-contiguous mask", in: "10.0.0.5:::255.0.255.0", err: "netmask"},
		{name: "bad dns", in: "10.0.0.5::::::off:dns.example", err: "dns0-ip"},
		{name: "unknown autoconf", in: "::::::dhcp6", err: "autoconf"},
		{name: "unknown single word", in: "maybe", err: "autoconf"},
		{name: "hostname with a newline", in: "10.0.0.5::::a\nnameserver 6.6.6.6", err: "hostname"},
		{name: "too many fields", in: "1:2:3:4:5:6:7:8:9:10:11", err: "at most 10"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, use, err := ParseIPArg(tc.in)
			if tc.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.use, use)
			if tc.use {
				assert.Equal(t, tc.want, got)
			}
		})
	}
}

func TestChoosePrecedence(t *testing.T) {
	nd := []byte(`{"links":[{"id":"l0","type":"phy","ethernet_mac_address":"52:54:00:12:34:56"}],
		"networks":[{"id":"n0","type":"ipv4","link":"l0","ip_address":"198.51.100.7","netmask":"255.255.255.0"}]}`)
	for _, tc := range []struct {
		name, cmdline string
		nd            []byte
		source        Source
		dhcpAll       bool
		addr          string
		dns           []netip.Addr
		search        []string
		notes         int
	}{
		{name: "nothing: dhcp everywhere", cmdline: "quiet", source: SourceDHCP, dhcpAll: true},
		{name: "ip= wins over ferric.ip and network_data", cmdline: "ip=192.0.2.10::192.0.2.1:255.255.255.0 ferric.ip=10.0.0.2/8",
			nd: nd, source: SourceIPArg, addr: "192.0.2.10/24"},
		{name: "last ip= wins", cmdline: "ip=192.0.2.10:::255.255.255.0 ip=dhcp", source: SourceIPArg, dhcpAll: true},
		{name: "ip=off falls through to ferric.ip", cmdline: "ip=off ferric.ip=10.0.0.2/8 ferric.gw=10.0.0.1", source: SourceFerric, addr: "10.0.0.2/8"},
		{name: "bare ferric.ip is a /32", cmdline: "ferric.ip=10.0.0.2", source: SourceFerric, addr: "10.0.0.2/32"},
		{name: "ferric.ip wins over network_data", cmdline: "ferric.ip=10.0.0.2/8", nd: nd, source: SourceFerric, addr: "10.0.0.2/8"},
		{name: "network_data when the command line has nothing", cmdline: "", nd: nd, source: SourceNetworkData, addr: "198.51.100.7/24"},
		{name: "malformed ip= is noted and skipped", cmdline: "ip=10.0.0.999::::::off", nd: nd, source: SourceNetworkData, addr: "198.51.100.7/24", notes: 1},
		{name: "malformed ferric.gw is noted, dhcp", cmdline: "ferric.ip=10.0.0.2/8 ferric.gw=x", source: SourceDHCP, dhcpAll: true, notes: 1},
		{name: "broken network_data is noted, dhcp", nd: []byte(`{"links":`), source: SourceDHCP, dhcpAll: true, notes: 1},
		{name: "ferric.dns and ferric.search override any source", cmdline: "ip=dhcp ferric.dns=192.0.2.53,2001:db8::53 ferric.search=lab.example,bad!name",
			source: SourceIPArg, dhcpAll: true, dns: []netip.Addr{addr("192.0.2.53"), addr("2001:db8::53")}, search: []string{"lab.example"}, notes: 1},
		{name: "bad ferric.dns is noted", cmdline: "ferric.dns=resolver.example", source: SourceDHCP, dhcpAll: true, notes: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := Choose(tc.cmdline, tc.nd, "network_data.json")
			assert.Equal(t, tc.source, p.Source)
			assert.Equal(t, tc.dhcpAll, p.DHCPAll)
			if tc.addr != "" {
				require.Len(t, p.Static, 1)
				assert.Equal(t, pfx(tc.addr), p.Static[0].Addrs[0])
			} else {
				assert.Empty(t, p.Static)
			}
			if tc.dns != nil {
				assert.Equal(t, tc.dns, p.DNS)
			}
			if tc.search != nil {
				assert.Equal(t, tc.search, p.Search)
			}
			assert.Len(t, p.Notes, tc.notes, "notes: %v", p.Notes)
		})
	}
}

func TestMatch(t *testing.T) {
	mac, _ := net.ParseMAC("52:54:00:aa:bb:cc")
	other, _ := net.ParseMAC("52:54:00:aa:bb:cd")
	n := nic{name: "eth0", mac: mac}
	assert.True(t, Match{}.matches(n))
	assert.True(t, Match{Name: "eth0"}.matches(n))
	assert.False(t, Match{Name: "eth1"}.matches(n))
	assert.True(t, Match{MAC: mac}.matches(n))
	assert.False(t, Match{MAC: other}.matches(n))
}
