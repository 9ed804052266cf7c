// Interfaces, addresses and routes through netlink (github.com/vishvananda/netlink): typed errors and no parsing of
// ip(8) output, at about 250 KB of static binary.

package netconf

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sort"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// nic is one Ethernet interface as the last scan saw it.
type nic struct {
	name    string
	index   int
	mac     net.HardwareAddr
	carrier bool
}

// matches says whether n is the NIC m names; an empty Match matches every NIC (the caller adds "with a link").
func (m Match) matches(n nic) bool {
	switch {
	case m.Name != "":
		return m.Name == n.name
	case m.MAC != nil:
		return macEqual(m.MAC, n.mac)
	}
	return true
}

// macEqual compares MACs by value (network_data may write them in upper case; ParseMAC normalises both).
func macEqual(a, b net.HardwareAddr) bool { return len(a) == len(b) && a.String() == b.String() }

// scanNICs lists the Ethernet interfaces (not loopback, a 6-byte hardware address), sorted by index.
func scanNICs() ([]nic, error) {
	links, err := netlink.LinkList()
	if err != nil {
		return nil, fmt.Errorf("list network interfaces: %w", err)
	}
	var out []nic
	for _, l := range links {
		a := l.Attrs()
		// Ethernet only: tunnels (sit0, ip6tnl0 exist in every namespace) have no 6-byte address and no DHCP.
		if a.Flags&net.FlagLoopback != 0 || len(a.HardwareAddr) != 6 {
			continue
		}
		// IFF_LOWER_UP is the carrier as the driver reports it; OperState lags behind on some drivers.
		out = append(out, nic{name: a.Name, index: a.Index, mac: a.HardwareAddr, carrier: a.RawFlags&unix.IFF_LOWER_UP != 0})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].index < out[j].index })
	return out, nil
}

// linkUp sets an interface administratively up; the carrier follows when a cable (or the veth peer) is there.
func linkUp(name string) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return fmt.Errorf("interface %s: %w", name, err)
	}
	if err := netlink.LinkSetUp(l); err != nil {
		return fmt.Errorf("set %s up: %w", name, err)
	}
	return nil
}

// acceptRA makes the kernel take IPv6 router advertisements and SLAAC addresses on name (its defaults, written
// anyway so a kernel built otherwise still gets IPv6). A kernel without IPv6 has no such files: nothing to do.
func acceptRA(procSys, name string) {
	if procSys == "" {
		return
	}
	for _, k := range []string{"accept_ra", "autoconf"} {
		p := filepath.Join(procSys, "net", "ipv6", "conf", name, k)
		if _, err := os.Stat(p); err == nil {
			_ = os.WriteFile(p, []byte("1\n"), 0o644) // best effort: IPv6 is a bonus here, IPv4 carries the deploy
		}
	}
}

// addrReplace sets an address on the interface; lifetime 0 keeps it forever, otherwise the kernel removes it when
// the lease runs out unless a renewal replaces it first.
func addrReplace(index int, p netip.Prefix, lifetimeSec int) error {
	l, err := netlink.LinkByIndex(index)
	if err != nil {
		return fmt.Errorf("interface %d: %w", index, err)
	}
	a := &netlink.Addr{IPNet: prefixNet(p), ValidLft: lifetimeSec, PreferedLft: lifetimeSec}
	if err := netlink.AddrReplace(l, a); err != nil {
		return fmt.Errorf("add %s to %s: %w", p, l.Attrs().Name, err)
	}
	return nil
}

// addrDel removes an address; one that is already gone (the kernel expired it) is not an error.
func addrDel(index int, p netip.Prefix) error {
	l, err := netlink.LinkByIndex(index)
	if err != nil {
		return fmt.Errorf("interface %d: %w", index, err)
	}
	if err := netlink.AddrDel(l, &netlink.Addr{IPNet: prefixNet(p)}); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
		return fmt.Errorf("remove %s from %s: %w", p, l.Attrs().Name, err)
	}
	return nil
}

// routeReplace installs r on the interface with the given metric. A gateway outside every prefix of the interface
// is marked on-link (a /32 address with a router, as some clouds hand out); an invalid Gw is an on-link route.
func routeReplace(index int, r Route, metric int, prefixes []netip.Prefix) error {
	rt := &netlink.Route{LinkIndex: index, Dst: prefixNet(r.Dst), Priority: metric}
	if r.Dst.Bits() == 0 {
		rt.Dst = nil // the default route
		rt.Family = netlink.FAMILY_V4
		if r.Dst.Addr().Is6() {
			rt.Family = netlink.FAMILY_V6
		}
	}
	if r.Gw.IsValid() {
		rt.Gw = r.Gw.AsSlice()
		inside := false
		for _, p := range prefixes {
			inside = inside || p.Masked().Contains(r.Gw)
		}
		if !inside {
			rt.Flags = int(netlink.FLAG_ONLINK)
		}
	} else {
		rt.Scope = netlink.SCOPE_LINK
	}
	if err := netlink.RouteReplace(rt); err != nil {
		return fmt.Errorf("route %s via %v: %w", r.Dst, r.Gw, err)
	}
	return nil
}

// setMTU changes the interface MTU when it differs.
func setMTU(index, mtu int) error {
	l, err := netlink.LinkByIndex(index)
	if err != nil {
		return fmt.Errorf("interface %d: %w", index, err)
	}
	if l.Attrs().MTU == mtu {
		return nil
	}
	if err := netlink.LinkSetMTU(l, mtu); err != nil {
		return fmt.Errorf("set MTU %d on %s: %w", mtu, l.Attrs().Name, err)
	}
	return nil
}

// prefixNet converts to the net.IPNet netlink takes, keeping the host part (an address, not a network).
func prefixNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}
