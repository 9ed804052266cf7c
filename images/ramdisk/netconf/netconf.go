// Package netconf owns the agent ramdisk's network bring-up: it chooses a configuration (the kernel's ip=, the
// ferric.ip=/ferric.gw=/ferric.dns=/ferric.search= keys, an OpenStack network_data.json, else DHCPv4 on every NIC
// with a link), applies it through netlink, writes /etc/resolv.conf and the hostname, and keeps DHCP leases
// renewed (RFC 2131 RENEWING at T1 by unicast, REBINDING at T2 by broadcast) for installs that outlast them.
//
// DHCPv4 comes from github.com/insomniacslk/dhcp (nclient4). IPv6 is SLAAC only: router advertisements are
// accepted on every link; there is no DHCPv6 client.
package netconf

import (
	"net"
	"net/netip"
	"time"
)

// Source names where the chosen configuration came from; it appears in the console summary.
type Source string

// The configuration sources, in order of precedence.
const (
	SourceIPArg       Source = "ip="
	SourceFerric      Source = "ferric.ip"
	SourceNetworkData Source = "network_data"
	SourceDHCP        Source = "dhcp"
)

// Match picks one NIC by name or by MAC; with both empty it means "the first NIC with a link".
type Match struct {
	Name string
	MAC  net.HardwareAddr
}

// Route is one static route; a zero Dst (0.0.0.0/0 or ::/0) is the default route.
type Route struct {
	Dst netip.Prefix
	Gw  netip.Addr
}

// Static is the configuration of one NIC without DHCP.
type Static struct {
	Match
	Addrs  []netip.Prefix
	Routes []Route
	MTU    int // 0 keeps the driver's MTU
}

// Plan is the chosen configuration before it touches any interface.
type Plan struct {
	Source Source
	Static []Static
	// DHCPAll runs DHCPv4 on every NIC that has a link; DHCP lists the NICs to run it on otherwise.
	DHCPAll bool
	DHCP    []Match
	// DNS and Search, when set, win over what DHCP offers (ferric.dns= and ferric.search= override any source).
	DNS      []netip.Addr
	Search   []string
	Hostname string
	// Notes lists what was skipped while choosing (a malformed ip=, an unsupported bond); the caller logs them.
	Notes []string
}

// Config says where bring-up reads and writes. The ramdisk's init fills it with the real paths; tests point it at
// temporary files and a recording SetHostname.
type Config struct {
	Plan        Plan
	ResolvConf  string             // file to write (the ramdisk: /etc/resolv.conf); "" writes none
	SetHostname func(string) error // the ramdisk: unix.Sethostname; nil leaves the hostname alone
	ProcSys     string             // /proc/sys, for IPv6 router advertisements; "" skips it
	// LinkWait bounds the wait for NICs to appear and for a carrier when a static entry names no NIC (default 10s).
	LinkWait time.Duration
	// LeaseWait bounds how long Up waits for the first DHCP lease (default 30s); DHCP keeps trying afterwards.
	LeaseWait time.Duration
	// DHCPTimeout bounds one DHCP exchange attempt (default 2s, doubled on each of 3 tries by nclient4).
	DHCPTimeout time.Duration
}

// defaults fills the zero durations; Up calls it on its copy, so callers may leave them out.
func (c *Config) defaults() {
	if c.LinkWait == 0 {
		c.LinkWait = 10 * time.Second
	}
	if c.LeaseWait == 0 {
		c.LeaseWait = 30 * time.Second
	}
	if c.DHCPTimeout == 0 {
		c.DHCPTimeout = 2 * time.Second
	}
}
