package netconf

import (
	"net"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
	"github.com/insomniacslk/dhcp/rfc1035label"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func ack(t *testing.T, yiaddr string, opts ...dhcpv4.Option) *dhcpv4.DHCPv4 {
	t.Helper()
	m, err := dhcpv4.New(dhcpv4.WithMessageType(dhcpv4.MessageTypeAck), dhcpv4.WithYourIP(net.ParseIP(yiaddr)),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.ParseIP("192.0.2.1"))))
	require.NoError(t, err)
	for _, o := range opts {
		m.UpdateOption(o)
	}
	return m
}

func TestParseLease(t *testing.T) {
	start := time.Unix(1000, 0)
	_, dst, _ := net.ParseCIDR("10.20.0.0/16")
	for _, tc := range []struct {
		name  string
		ack   []dhcpv4.Option
		offer []dhcpv4.Option
		check func(t *testing.T, l *lease)
	}{
		{name: "typical", ack: []dhcpv4.Option{dhcpv4.OptSubnetMask(net.CIDRMask(24, 32)), dhcpv4.OptRouter(net.ParseIP("192.0.2.1"), net.ParseIP("192.0.2.2")),
			dhcpv4.OptDNS(net.ParseIP("192.0.2.53")), dhcpv4.OptDomainSearch(&rfc1035label.Labels{Labels: []string{"lab.example", "example.org"}}),
			dhcpv4.OptHostName("node-7"), dhcpv4.OptIPAddressLeaseTime(time.Hour), dhcpv4.OptGeneric(dhcpv4.OptionInterfaceMTU, []byte{0x05, 0xaa})},
			check: func(t *testing.T, l *lease) {
				assert.Equal(t, pfx("192.0.2.50/24"), l.addr)
				assert.Equal(t, []Route{{Dst: defaultV4, Gw: addr("192.0.2.1")}}, l.routes, "first router only")
				assert.Equal(t, addr("192.0.2.1"), l.server)
				assert.Equal(t, []string{"lab.example", "example.org"}, l.search)
				assert.Equal(t, "node-7", l.hostname)
				assert.Equal(t, 1450, l.mtu)
				assert.Equal(t, []time.Duration{time.Hour, 30 * time.Minute, 52*time.Minute + 30*time.Second}, []time.Duration{l.dur, l.t1, l.t2}, "RFC 2131 defaults 0.5 and 0.875")
				assert.Empty(t, l.notes)
			}},
		{name: "explicit T1/T2 and domain name as search", ack: []dhcpv4.Option{dhcpv4.OptIPAddressLeaseTime(100 * time.Second),
			dhcpv4.OptRenewTimeValue(20 * time.Second), dhcpv4.OptRebindingTimeValue(40 * time.Second), dhcpv4.OptDomainName("corp.example")},
			check: func(t *testing.T, l *lease) {
				assert.Equal(t, []time.Duration{100 * time.Second, 20 * time.Second, 40 * time.Second}, []time.Duration{l.dur, l.t1, l.t2})
				assert.Equal(t, []string{"corp.example"}, l.search)
				assert.Equal(t, pfx("192.0.2.50/24"), l.addr, "no mask option: classful")
			}},
		{name: "nonsense T1/T2 fall back to defaults", ack: []dhcpv4.Option{dhcpv4.OptIPAddressLeaseTime(100 * time.Second),
			dhcpv4.OptRenewTimeValue(90 * time.Second), dhcpv4.OptRebindingTimeValue(200 * time.Second)},
			check: func(t *testing.T, l *lease) {
				assert.Equal(t, []time.Duration{50 * time.Second, 87500 * time.Millisecond}, []time.Duration{l.t1, l.t2})
			}},
		{name: "infinite lease", ack: []dhcpv4.Option{dhcpv4.OptIPAddressLeaseTime(infinite)},
			check: func(t *testing.T, l *lease) { assert.Zero(t, l.dur); assert.Empty(t, l.notes) }},
		{name: "no lease time", check: func(t *testing.T, l *lease) {
			assert.Zero(t, l.dur)
			assert.Contains(t, l.notes[0], "no lease time")
		}},
		{name: "classless routes win over the router option", ack: []dhcpv4.Option{dhcpv4.OptRouter(net.ParseIP("192.0.2.1")),
			dhcpv4.OptClasslessStaticRoute(&dhcpv4.Route{Dest: &net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)}, Router: net.ParseIP("192.0.2.254")},
				&dhcpv4.Route{Dest: dst, Router: net.IPv4zero})},
			check: func(t *testing.T, l *lease) {
				assert.Equal(t, []Route{{Dst: defaultV4, Gw: addr("192.0.2.254")}, {Dst: pfx("10.20.0.0/16")}}, l.routes)
			}},
		{name: "hostile hostname and domain are dropped", ack: []dhcpv4.Option{dhcpv4.OptHostName("x\nnameserver 6.6.6.6"),
			dhcpv4.OptDomainName("evil example")},
			check: func(t *testing.T, l *lease) {
				assert.Empty(t, l.hostname)
				assert.Empty(t, l.search)
				assert.Len(t, l.notes, 3) // domain, hostname, no lease time
			}},
		{name: "options missing from the ACK come from the offer", ack: []dhcpv4.Option{dhcpv4.OptIPAddressLeaseTime(time.Hour)},
			offer: []dhcpv4.Option{dhcpv4.OptSubnetMask(net.CIDRMask(26, 32)), dhcpv4.OptDNS(net.ParseIP("192.0.2.53"))},
			check: func(t *testing.T, l *lease) {
				assert.Equal(t, pfx("192.0.2.50/26"), l.addr)
				assert.Equal(t, []string{"192.0.2.53"}, toStrings(l.dns))
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := &nclient4.Lease{ACK: ack(t, "192.0.2.50", tc.ack...), Offer: ack(t, "192.0.2.50", tc.offer...)}
			l, err := parseLease(raw, start)
			require.NoError(t, err)
			assert.Equal(t, start, l.start)
			tc.check(t, l)
		})
	}
	_, err := parseLease(&nclient4.Lease{ACK: ack(t, "0.0.0.0")}, start)
	assert.ErrorContains(t, err, "carries no address")
}
