// Applying a lease, DNS and hostname, and the one-line summary of each configured NIC.

package netconf

import (
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// dhcpMetric is the metric of a DHCP route: each NIC's default route coexists with the others', the
// lowest-numbered NIC preferred (static routes have metric 0 and win over all).
func dhcpMetric(index int) int { return 100 + index }

// applyLease puts a new or renewed lease on the NIC: the address with the lease's lifetime (the kernel drops it if
// no renewal comes), MTU, routes; the first NIC to get a lease writes resolv.conf and sets the hostname.
func (n *Network) applyLease(x nic, prev, l *lease) error {
	for _, note := range l.notes {
		if prev == nil {
			n.log.Warnf("dhcp on %s: %s", x.name, note)
		}
	}
	if prev != nil && prev.addr != l.addr {
		if err := addrDel(x.index, prev.addr); err != nil {
			n.log.Warn(err)
		}
	}
	if l.mtu > 0 {
		if err := setMTU(x.index, l.mtu); err != nil {
			n.log.Warnf("dhcp on %s: %v", x.name, err)
		}
	}
	if err := addrReplace(x.index, l.addr, int(l.dur/time.Second)); err != nil {
		return err
	}
	for _, r := range l.routes {
		if err := routeReplace(x.index, r, dhcpMetric(x.index), []netip.Prefix{l.addr}); err != nil {
			return err
		}
	}
	// "First lease wins" for DNS and hostname: with several NICs on different networks their servers may
	// disagree, and flapping resolv.conf between them would be worse than either.
	n.mu.Lock()
	owner := n.dnsOwner == "" || n.dnsOwner == x.name
	if owner {
		n.dnsOwner = x.name
	}
	n.mu.Unlock()
	if owner {
		n.writeDNS("dhcp on "+x.name, l.dns, l.search)
		if n.cfg.Plan.Hostname == "" && l.hostname != "" {
			n.setHostname(l.hostname)
		}
	}
	// The first lease of a NIC gets the full summary line; renewals a short one (operators reading the console
	// of a long install see that the lease is alive).
	if prev == nil {
		dns, search := l.dns, l.search
		if len(n.cfg.Plan.DNS) > 0 {
			dns = n.cfg.Plan.DNS
		}
		if len(n.cfg.Plan.Search) > 0 {
			search = n.cfg.Plan.Search
		}
		host := l.hostname
		if n.cfg.Plan.Hostname != "" || !owner {
			host = ""
		}
		n.logConfigured(x.name, []netip.Prefix{l.addr}, l.routes, dns, search, host, leaseText(l), fmt.Sprintf("dhcp from %v", l.server))
		n.leasedOnce.Do(func() { close(n.leased) })
	} else {
		n.log.Infof("dhcp on %s: lease on %s renewed by %v for %s", x.name, l.addr, l.server, leaseText(l))
	}
	return nil
}

// leaseText is the lease time as the summary line shows it.
func leaseText(l *lease) string {
	if l.dur == 0 {
		return "infinite"
	}
	return l.dur.String()
}

// writeDNS writes resolv.conf from the plan's DNS/search (which win) or the given ones, when it changed.
func (n *Network) writeDNS(source string, dns []netip.Addr, search []string) {
	if n.cfg.ResolvConf == "" {
		return
	}
	if len(n.cfg.Plan.DNS) > 0 {
		dns = n.cfg.Plan.DNS
	}
	if len(n.cfg.Plan.Search) > 0 {
		search = n.cfg.Plan.Search
	}
	if len(dns) == 0 && len(search) == 0 {
		return
	}
	content := RenderResolv(source, dns, search)
	n.mu.Lock()
	defer n.mu.Unlock()
	if content == n.resolv {
		return
	}
	if err := writeResolv(n.cfg.ResolvConf, content); err != nil {
		n.log.Errorf("%v; host names will not resolve", err)
		return
	}
	n.resolv = content
}

// setHostname sets the hostname once (the static one, or the first lease's).
func (n *Network) setHostname(h string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.hostSet || n.cfg.SetHostname == nil {
		return
	}
	if err := n.cfg.SetHostname(h); err != nil {
		n.log.Warnf("set hostname %s: %v", h, err)
		return
	}
	n.hostSet = true
}

// logConfigured logs (and records) the one-line summary of a configured NIC.
func (n *Network) logConfigured(name string, addrs []netip.Prefix, routes []Route, dns []netip.Addr, search []string, host, leaseTime, source string) {
	var b strings.Builder
	fmt.Fprintf(&b, "network %s: %s", name, joinStrings(addrs))
	var gws []string
	for _, r := range routes {
		if r.Dst.Bits() == 0 {
			gws = append(gws, r.Gw.String())
		}
	}
	fmt.Fprintf(&b, " gw %s dns %s search %s", orNone(gws), orNone(toStrings(dns)), orNone(search))
	if host != "" {
		fmt.Fprintf(&b, " hostname %s", host)
	}
	if leaseTime != "" {
		fmt.Fprintf(&b, " lease %s", leaseTime)
	}
	if extra := len(routes) - len(gws); extra > 0 {
		fmt.Fprintf(&b, " (+%d routes)", extra)
	}
	fmt.Fprintf(&b, " [source %s]", source)
	n.mu.Lock()
	n.configured = append(n.configured, b.String())
	n.mu.Unlock()
	n.log.Info(b.String())
}

// joinStrings, toStrings and orNone format lists for the summary line ("-" for none, so fields stay aligned).
func joinStrings[T fmt.Stringer](xs []T) string { return strings.Join(toStrings(xs), ",") }

func toStrings[T fmt.Stringer](xs []T) []string {
	var out []string
	for _, x := range xs {
		out = append(out, x.String())
	}
	return out
}

func orNone(xs []string) string {
	if len(xs) == 0 {
		return "-"
	}
	return strings.Join(xs, ",")
}
