package netconf

import (
	"net"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// ironicND is network_data.json as Ironic/Nova write it: a physical link with a static IPv4 network, a second link
// on DHCP, a bond and a VLAN the ramdisk does not configure, an IPv6 static network and DNS services.
const ironicND = `{
 "links": [
  {"id": "port-a", "type": "phy", "ethernet_mac_address": "52:54:00:12:34:56", "mtu": 9000},
  {"id": "port-b", "type": "ethernet", "ethernet_mac_address": "52:54:00:12:34:57", "mtu": null},
  {"id": "bond0", "type": "bond", "bond_links": ["port-a", "port-b"], "ethernet_mac_address": "52:54:00:12:34:58"},
  {"id": "vlan101", "type": "vlan", "vlan_link": "port-a", "vlan_id": 101}
 ],
 "networks": [
  {"id": "net-v4", "type": "ipv4", "link": "port-a", "ip_address": "192.0.2.10", "netmask": "255.255.255.0",
   "routes": [{"network": "0.0.0.0", "netmask": "0.0.0.0", "gateway": "192.0.2.1"},
              {"network": "198.51.100.0", "netmask": "255.255.255.0", "gateway": "192.0.2.254"}],
   "services": [{"type": "dns", "address": "192.0.2.53"}], "dns_search": ["lab.example", "lab.example."]},
  {"id": "net-v6", "type": "ipv6", "link": "port-a", "ip_address": "2001:db8::10/64",
   "routes": [{"network": "::", "netmask": "::", "gateway": "2001:db8::1"}]},
  {"id": "net-dhcp", "type": "ipv4_dhcp", "link": "port-b"},
  {"id": "net-bond", "type": "ipv4", "link": "bond0", "ip_address": "203.0.113.5", "netmask": "255.255.255.0"},
  {"id": "net-slaac", "type": "ipv6_slaac", "link": "port-b"}
 ],
 "services": [{"type": "dns", "address": "8.8.8.8"}, {"type": "dns", "address": "192.0.2.53"}, {"type": "ntp", "address": "192.0.2.123"}]
}`

func TestParseNetworkData(t *testing.T) {
	macA, _ := net.ParseMAC("52:54:00:12:34:56")
	macB, _ := net.ParseMAC("52:54:00:12:34:57")
	for _, tc := range []struct {
		name  string
		in    string
		want  Plan
		notes []string
		err   string
	}{
		{name: "ironic example", in: ironicND, want: Plan{Source: SourceNetworkData,
			Static: []Static{{Match: Match{MAC: macA}, MTU: 9000,
				Addrs: []netip.Prefix{pfx("192.0.2.10/24"), pfx("2001:db8::10/64")},
				Routes: []Route{{Dst: defaultV4, Gw: addr("192.0.2.1")}, {Dst: pfx("198.51.100.0/24"), Gw: addr("192.0.2.254")},
					{Dst: pfx("::/0"), Gw: addr("2001:db8::1")}}}},
			DHCP:   []Match{{MAC: macB}},
			DNS:    []netip.Addr{addr("8.8.8.8"), addr("192.0.2.53")},
			Search: []string{"lab.example"}},
			notes: []string{"net-bond skipped: link bond0 is a bond", "net-slaac (ipv6_slaac) left to SLAAC"}},
		{name: "address with prefix, link by name", in: `{"links":[{"id":"l","name":"eno1"}],
			"networks":[{"type":"ipv4","link":"l","ip_address":"10.0.0.5/8"}]}`,
			want: Plan{Source: SourceNetworkData, Static: []Static{{Match: Match{Name: "eno1"}, Addrs: []netip.Prefix{pfx("10.0.0.5/8")}}}}},
		{name: "netmask as a length", in: `{"links":[{"id":"l","ethernet_mac_address":"52:54:00:12:34:56"}],
			"networks":[{"type":"ipv4","link":"l","ip_address":"10.0.0.5","netmask":"16"}]}`,
			want: Plan{Source: SourceNetworkData, Static: []Static{{Match: Match{MAC: macA}, Addrs: []netip.Prefix{pfx("10.0.0.5/16")}}}}},
		{name: "a bad network is noted, the good one kept", in: `{"links":[{"id":"l","ethernet_mac_address":"52:54:00:12:34:56"}],
			"networks":[{"id":"bad","type":"ipv4","link":"l","ip_address":"10.0.0.5"},{"type":"ipv4_dhcp","link":"l"}]}`,
			want: Plan{Source: SourceNetworkData, DHCP: []Match{{MAC: macA}}}, notes: []string{"bad skipped: ip_address \"10.0.0.5\" netmask \"\": no netmask"}},
		{name: "only a bond: nothing to configure", in: `{"links":[{"id":"b","type":"bond"}],"networks":[{"type":"ipv4","link":"b","ip_address":"10.0.0.5/8"}]}`,
			err: "no network in it can be configured"},
		{name: "unknown link", in: `{"links":[],"networks":[{"id":"n","type":"ipv4","link":"x","ip_address":"10.0.0.5/8"}]}`,
			err: `names link "x"`},
		{name: "family mismatch", in: `{"links":[{"id":"l","name":"e"}],"networks":[{"id":"n","type":"ipv6","link":"l","ip_address":"10.0.0.5/8"}]}`,
			err: "does not match type ipv6"},
		{name: "bad gateway", in: `{"links":[{"id":"l","name":"e"}],"networks":[{"id":"n","type":"ipv4","link":"l","ip_address":"10.0.0.5/8",
			"routes":[{"network":"0.0.0.0","netmask":"0.0.0.0","gateway":"2001:db8::1"}]}]}`, err: "routes[0] gateway"},
		{name: "bad MAC", in: `{"links":[{"id":"l","ethernet_mac_address":"zz"}],"networks":[{"type":"ipv4_dhcp","link":"l"}]}`,
			err: "ethernet_mac_address"},
		{name: "not JSON", in: `links: []`, err: "not network_data JSON"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseNetworkData([]byte(tc.in))
			if tc.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.err)
				return
			}
			require.NoError(t, err)
			require.Len(t, got.Notes, len(tc.notes), "notes: %v", got.Notes)
			for i, n := range tc.notes {
				assert.Contains(t, got.Notes[i], n)
			}
			got.Notes = nil
			assert.Equal(t, tc.want, got)
		})
	}
}
