// Choosing the configuration: the kernel command line's ip= first, then Ferric's own keys, then a
// network_data.json, else DHCP everywhere.

package netconf

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// Choose picks the configuration from the kernel command line and, when given, the contents of a
// network_data.json (ndName names it in notes). It always returns a usable plan: a source that cannot be parsed is
// skipped with a note naming the argument and the fix, and DHCP on every NIC is the last resort. ferric.dns= and
// ferric.search= override the DNS servers and search list of whichever source wins.
func Choose(cmdline string, networkData []byte, ndName string) Plan {
	var ipArg, fIP, fGW, fDNS, fSearch string
	var haveIPArg bool
	for _, w := range strings.Fields(cmdline) {
		k, v, _ := strings.Cut(w, "=")
		switch k { // the last occurrence wins, as in the kernel
		case "ip":
			ipArg, haveIPArg = v, true
		case "ferric.ip":
			fIP = v
		case "ferric.gw":
			fGW = v
		case "ferric.dns":
			fDNS = v
		case "ferric.search":
			fSearch = v
		}
	}
	// Sources in precedence order; ok says one of them produced a plan. A source that is present but broken does
	// not stop the search: a node that can still come up by the next source is better than one that cannot.
	var notes []string
	plan, ok := Plan{}, false
	if haveIPArg {
		p, use, err := ParseIPArg(ipArg)
		switch {
		case err != nil:
			notes = append(notes, fmt.Sprintf("kernel argument ip=%s skipped: %v", ipArg, err))
		case use:
			plan, ok = p, true
		}
	}
	if !ok && fIP != "" {
		p, err := parseFerric(fIP, fGW)
		if err != nil {
			notes = append(notes, err.Error())
		} else {
			plan, ok = p, true
		}
	}
	if !ok && networkData != nil {
		p, err := ParseNetworkData(networkData)
		if err != nil {
			notes = append(notes, fmt.Sprintf("%s skipped: %v", ndName, err))
		} else {
			plan, ok = p, true
		}
	}
	if !ok {
		plan = Plan{Source: SourceDHCP, DHCPAll: true}
	}
	if fDNS != "" {
		dns, err := parseAddrList(fDNS)
		if err != nil {
			notes = append(notes, fmt.Sprintf("kernel argument ferric.dns=%s skipped: %v; give comma-separated IP addresses", fDNS, err))
		} else {
			plan.DNS = dns
		}
	}
	if fSearch != "" {
		search, bad := cleanDomains(strings.Split(fSearch, ","))
		for _, b := range bad {
			notes = append(notes, fmt.Sprintf("kernel argument ferric.search: %q is not a domain name, left out", b))
		}
		plan.Search = search
	}
	plan.Notes = append(notes, plan.Notes...)
	return plan
}

// ParseIPArg parses the kernel's ip= value (Documentation/admin-guide/nfs/nfsroot.rst, IPv4 only):
//
//	ip=<client-ip>:<server-ip>:<gw-ip>:<netmask>:<hostname>:<device>:<autoconf>:<dns0-ip>:<dns1-ip>:<ntp0-ip>
//
// and its short forms ip=dhcp / ip=off and dracut's ip=<device>:dhcp. A client IP means a static address (as the
// kernel does for one device); without one, DHCP runs unless autoconf is off or none. use is false when ip= asks
// for no configuration, so the next source decides.
func ParseIPArg(v string) (plan Plan, use bool, err error) {
	// Kernel semantics, field by field: server-ip and ntp0-ip are accepted and unused (there is no NFS root or
	// NTP client here); the device, when empty, is the first NIC with a link.
	f := strings.Split(v, ":")
	if len(f) == 1 {
		return autoconf(v, "")
	}
	if len(f) == 2 && isAutoconfWord(f[1]) {
		return autoconf(f[1], f[0])
	}
	if len(f) > 10 {
		return Plan{}, false, fmt.Errorf("%d fields, the kernel's syntax has at most 10 (client:server:gw:netmask:hostname:device:autoconf:dns0:dns1:ntp0)", len(f))
	}
	f = append(f, make([]string, 10-len(f))...)
	hostname := f[4]
	if hostname != "" && !validHostname(hostname) {
		return Plan{}, false, fmt.Errorf("hostname field %q: use letters, digits, '-' and '.', at most 64 characters", hostname)
	}
	dns, err := parseOptionalAddrs(map[string]string{"dns0-ip": f[7], "dns1-ip": f[8]}, "dns0-ip", "dns1-ip")
	if err != nil {
		return Plan{}, false, err
	}
	if f[0] == "" {
		p, use, err := autoconf(f[6], f[5])
		p.Hostname, p.DNS = hostname, dns
		return p, use, err
	}
	client, err := netip.ParseAddr(f[0])
	if err != nil || !client.Is4() {
		return Plan{}, false, fmt.Errorf("client-ip %q is not an IPv4 address", f[0])
	}
	bits, err := maskBits(f[3], client)
	if err != nil {
		return Plan{}, false, fmt.Errorf("netmask %q: %w", f[3], err)
	}
	st := Static{Match: Match{Name: f[5]}, Addrs: []netip.Prefix{netip.PrefixFrom(client, bits)}}
	if f[2] != "" {
		gw, err := netip.ParseAddr(f[2])
		if err != nil || !gw.Is4() {
			return Plan{}, false, fmt.Errorf("gw-ip %q is not an IPv4 address", f[2])
		}
		st.Routes = []Route{{Dst: netip.PrefixFrom(netip.IPv4Unspecified(), 0), Gw: gw}}
	}
	return Plan{Source: SourceIPArg, Static: []Static{st}, DNS: dns, Hostname: hostname}, true, nil
}

// isAutoconfWord tells dracut's ip=<device>:<method> apart from a two-field kernel ip= (client:server).
func isAutoconfWord(w string) bool {
	switch w {
	case "off", "none", "on", "any", "dhcp", "bootp", "rarp", "both":
		return true
	}
	return false
}

// autoconf turns an autoconf method into a plan: DHCP on device (or on every NIC), or nothing for off/none.
func autoconf(method, device string) (Plan, bool, error) {
	switch method {
	case "off", "none":
		return Plan{}, false, nil
	case "", "on", "any", "dhcp", "bootp", "rarp", "both":
		p := Plan{Source: SourceIPArg, DHCPAll: device == ""}
		if device != "" {
			p.DHCP = []Match{{Name: device}}
		}
		return p, true, nil
	}
	return Plan{}, false, fmt.Errorf("autoconf %q: use dhcp, on, any, off or none (DHCPv6 is not supported; IPv6 uses SLAAC)", method)
}

// maskBits reads a netmask (dotted or a prefix length); empty means the class of the address, as the kernel does.
func maskBits(s string, a netip.Addr) (int, error) {
	if s == "" {
		switch b := a.As4()[0]; {
		case b < 128:
			return 8, nil
		case b < 192:
			return 16, nil
		default:
			return 24, nil
		}
	}
	return parseMask(s, a.BitLen())
}

// parseMask reads a prefix length or a contiguous mask in address form, for an address of maxBits bits.
func parseMask(s string, maxBits int) (int, error) {
	var n int
	if _, err := fmt.Sscanf(s, "%d", &n); err == nil && fmt.Sprint(n) == s {
		if n < 0 || n > maxBits {
			return 0, fmt.Errorf("prefix length %d out of range 0-%d", n, maxBits)
		}
		return n, nil
	}
	m := net.ParseIP(s)
	if m == nil {
		return 0, fmt.Errorf("not a netmask; write 255.255.255.0 or 24")
	}
	if maxBits == 32 {
		m = m.To4()
	}
	if m == nil {
		return 0, fmt.Errorf("not an IPv%d netmask", map[int]int{32: 4, 128: 6}[maxBits])
	}
	ones, bits := net.IPMask(m).Size()
	if bits == 0 {
		return 0, fmt.Errorf("not a contiguous netmask")
	}
	return ones, nil
}

// parseFerric reads ferric.ip= (an address with or without /prefix; without, a /32 whose gateway is on-link) and
// ferric.gw=.
func parseFerric(ip, gw string) (Plan, error) {
	pfx, err := netip.ParsePrefix(ip)
	if err != nil {
		a, err2 := netip.ParseAddr(ip)
		if err2 != nil {
			return Plan{}, fmt.Errorf("kernel argument ferric.ip=%s skipped: not an address; write ferric.ip=192.0.2.10/24", ip)
		}
		pfx = netip.PrefixFrom(a, a.BitLen())
	}
	st := Static{Addrs: []netip.Prefix{pfx}}
	if gw != "" {
		g, err := netip.ParseAddr(gw)
		if err != nil || g.Is4() != pfx.Addr().Is4() {
			return Plan{}, fmt.Errorf("kernel argument ferric.gw=%s skipped with ferric.ip: not an address of the same family as ferric.ip=%s", gw, ip)
		}
		st.Routes = []Route{{Dst: netip.PrefixFrom(unspecified(g), 0), Gw: g}}
	}
	return Plan{Source: SourceFerric, Static: []Static{st}}, nil
}

// unspecified is 0.0.0.0 or :: in a's family: the destination of a default route.
func unspecified(a netip.Addr) netip.Addr {
	if a.Is4() {
		return netip.IPv4Unspecified()
	}
	return netip.IPv6Unspecified()
}

// parseAddrList reads comma-separated IP addresses.
func parseAddrList(s string) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, p := range strings.Split(s, ",") {
		a, err := netip.ParseAddr(strings.TrimSpace(p))
		if err != nil {
			return nil, fmt.Errorf("%q is not an IP address", p)
		}
		out = append(out, a)
	}
	return out, nil
}

// parseOptionalAddrs reads the named fields (in order) that are not empty.
func parseOptionalAddrs(fields map[string]string, order ...string) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, name := range order {
		if fields[name] == "" {
			continue
		}
		a, err := netip.ParseAddr(fields[name])
		if err != nil {
			return nil, fmt.Errorf("%s %q is not an IP address", name, fields[name])
		}
		out = append(out, a)
	}
	return out, nil
}
