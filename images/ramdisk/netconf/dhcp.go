// DHCPv4 through nclient4: one runner per NIC acquires a lease, applies it, renews it at T1 (unicast to the
// server, RENEWING) and rebinds at T2 (broadcast, REBINDING) as RFC 2131 §4.4.5 says, and starts over when the
// lease is lost. The raw packet socket nclient4 needs before the NIC has an address sees every IPv4 frame, so it
// is open only while an exchange runs, never during an image pull.

package netconf

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
	"github.com/insomniacslk/dhcp/dhcpv4/server4"
)

// lease is what one ACK gave, in the form the interface needs. It is immutable: a renewal makes a new one.
type lease struct {
	addr     netip.Prefix
	routes   []Route // the default route via the router, or the classless static routes (option 121)
	dns      []netip.Addr
	search   []string
	hostname string
	mtu      int
	server   netip.Addr
	// dur is the lease time (0: infinite); t1 and t2 the renewal and rebinding times, all from start, the moment
	// the request that won the lease was sent.
	dur, t1, t2 time.Duration
	start       time.Time
	raw         *nclient4.Lease
	notes       []string
}

// requested lists the options the client asks for.
func requested() []dhcpv4.OptionCode {
	return []dhcpv4.OptionCode{dhcpv4.OptionSubnetMask, dhcpv4.OptionRouter, dhcpv4.OptionDomainNameServer,
		dhcpv4.OptionHostName, dhcpv4.OptionDomainName, dhcpv4.OptionInterfaceMTU, dhcpv4.OptionIPAddressLeaseTime,
		dhcpv4.OptionRenewTimeValue, dhcpv4.OptionRebindingTimeValue, dhcpv4.OptionDNSDomainSearchList,
		dhcpv4.OptionClasslessStaticRoute}
}

// infinite is the lease time RFC 2131 reserves for "forever".
const infinite = time.Duration(0xffffffff) * time.Second

// parseLease reads an ACK (options missing from it are taken from the offer, as some servers leave them out of
// renewals). Untrusted values that would not be safe in resolv.conf or as a hostname are dropped with a note.
func parseLease(raw *nclient4.Lease, start time.Time) (*lease, error) {
	ack := raw.ACK
	get := func(code dhcpv4.OptionCode) []byte {
		if v := ack.GetOneOption(code); v != nil {
			return v
		}
		if raw.Offer != nil {
			return raw.Offer.GetOneOption(code)
		}
		return nil
	}
	ip, ok := netip.AddrFromSlice(ack.YourIPAddr.To4())
	if !ok || ip.IsUnspecified() {
		return nil, fmt.Errorf("DHCP ACK from %v carries no address (yiaddr %v)", ack.ServerIPAddr, ack.YourIPAddr)
	}
	l := &lease{start: start, raw: raw}
	// Without a subnet mask option, fall back to the address class as the kernel's ipconfig does.
	bits, _ := maskBits("", ip)
	if m := get(dhcpv4.OptionSubnetMask); len(m) == 4 {
		if ones, total := net.IPMask(m).Size(); total == 32 {
			bits = ones
		}
	}
	l.addr = netip.PrefixFrom(ip, bits)
	l.server, _ = netip.AddrFromSlice(raw.ACK.ServerIdentifier().To4())
	if v := get(dhcpv4.OptionClasslessStaticRoute); v != nil {
		var routes dhcpv4.Routes
		if err := routes.FromBytes(v); err == nil {
			for _, r := range routes {
				l.routes = append(l.routes, dhcpRoute(r))
			}
		}
	}
	if rs := (&dhcpv4.IPs{}); len(l.routes) == 0 && rs.FromBytes(get(dhcpv4.OptionRouter)) == nil && len(*rs) > 0 {
		// RFC 3442: with classless routes present the router option is ignored.
		if gw, ok := netip.AddrFromSlice((*rs)[0].To4()); ok {
			l.routes = []Route{{Dst: netip.PrefixFrom(netip.IPv4Unspecified(), 0), Gw: gw}}
		}
	}
	if ips := (&dhcpv4.IPs{}); ips.FromBytes(get(dhcpv4.OptionDomainNameServer)) == nil {
		for _, a := range *ips {
			if d, ok := netip.AddrFromSlice(a.To4()); ok {
				l.dns = append(l.dns, d)
			}
		}
	}
	// The search list (option 119, RFC 3397) is DNS wire format; the library decodes it. The decoded labels are
	// still untrusted text bound for resolv.conf, hence cleanDomains below.
	var names []string
	if v := get(dhcpv4.OptionDNSDomainSearchList); v != nil {
		d := dhcpv4.DHCPv4{Options: dhcpv4.Options{dhcpv4.OptionDNSDomainSearchList.Code(): v}}
		if labels := d.DomainSearch(); labels != nil {
			names = labels.Labels
		}
	}
	if v := get(dhcpv4.OptionDomainName); len(names) == 0 && v != nil {
		names = []string{strings.TrimRight(string(v), "\x00")} // option 15 is the search list when 119 is absent
	}
	var bad []string
	l.search, bad = cleanDomains(names)
	for _, b := range bad {
		l.notes = append(l.notes, fmt.Sprintf("DHCP domain %q is not a domain name; left out of resolv.conf", b))
	}
	if h := strings.TrimRight(string(get(dhcpv4.OptionHostName)), "\x00"); h != "" {
		if validHostname(h) {
			l.hostname = h
		} else {
			l.notes = append(l.notes, fmt.Sprintf("DHCP hostname %q is not a valid hostname; not set", h))
		}
	}
	// Option 26: clouds with overlay networks hand out 1450 or so; below 576 (the IPv4 minimum datagram a host
	// must accept) a value is nonsense and ignored.
	if v := get(dhcpv4.OptionInterfaceMTU); len(v) == 2 {
		if mtu := int(v[0])<<8 | int(v[1]); mtu >= 576 {
			l.mtu = mtu
		}
	}
	l.setTimes(get)
	return l, nil
}

// setTimes reads the lease time and T1/T2 (defaults 0.5 and 0.875 of the lease, RFC 2131 §4.4.5); a lease without
// a time, or an infinite one, is never renewed.
func (l *lease) setTimes(get func(dhcpv4.OptionCode) []byte) {
	secs := func(code dhcpv4.OptionCode) time.Duration {
		if v := get(code); len(v) == 4 {
			return time.Duration(uint32(v[0])<<24|uint32(v[1])<<16|uint32(v[2])<<8|uint32(v[3])) * time.Second
		}
		return 0
	}
	l.dur = secs(dhcpv4.OptionIPAddressLeaseTime)
	if l.dur == 0 || l.dur >= infinite {
		if l.dur == 0 {
			l.notes = append(l.notes, "DHCP server gave no lease time; the address is kept without renewal")
		}
		l.dur = 0
		return
	}
	l.t1, l.t2 = secs(dhcpv4.OptionRenewTimeValue), secs(dhcpv4.OptionRebindingTimeValue)
	if l.t2 <= 0 || l.t2 >= l.dur {
		l.t2 = l.dur * 7 / 8
	}
	if l.t1 <= 0 || l.t1 >= l.t2 {
		l.t1 = l.dur / 2
	}
}

// dhcpRoute converts a classless static route; router 0.0.0.0 means the destination is on the link (RFC 3442).
func dhcpRoute(r *dhcpv4.Route) Route {
	ones, _ := r.Dest.Mask.Size()
	dst, _ := netip.AddrFromSlice(r.Dest.IP.To4())
	out := Route{Dst: netip.PrefixFrom(dst, ones).Masked()}
	if gw, ok := netip.AddrFromSlice(r.Router.To4()); ok && !gw.IsUnspecified() {
		out.Gw = gw
	}
	return out
}

// request runs DISCOVER/OFFER/REQUEST/ACK once on the NIC.
func (n *Network) request(ctx context.Context, name string) (*lease, error) {
	c, err := nclient4.New(name, nclient4.WithTimeout(n.cfg.DHCPTimeout), nclient4.WithRetry(3))
	if err != nil {
		return nil, fmt.Errorf("DHCP client on %s: %w", name, err)
	}
	defer c.Close()     // closes the raw packet socket: it must not outlive the exchange
	start := time.Now() // lease times count from the request, not from the answer (RFC 2131 §4.4.1)
	raw, err := c.Request(ctx, dhcpv4.WithRequestedOptions(requested()...))
	if err != nil {
		return nil, fmt.Errorf("no DHCP lease on %s: %w", name, err)
	}
	return parseLease(raw, start)
}

// renewOnce sends one REQUEST for the lease: unicast to its server from the leased address (RENEWING), or
// broadcast on the raw socket (REBINDING, any server may answer).
func (n *Network) renewOnce(ctx context.Context, name string, l *lease, unicast bool) (*lease, error) {
	c, err := n.renewClient(name, l, unicast)
	if err != nil {
		return nil, fmt.Errorf("DHCP client on %s: %w", name, err)
	}
	defer c.Close()
	start := time.Now()
	raw, err := c.Renew(ctx, l.raw, dhcpv4.WithRequestedOptions(requested()...))
	if err != nil {
		return nil, err
	}
	return parseLease(raw, start)
}

// renewClient opens the client for one renewal. RENEWING uses an ordinary UDP socket on port 68 bound to the NIC
// (not to the leased address: some servers, QEMU's user networking among them, answer renewals by broadcast, which
// a socket bound to a unicast address would not receive); the kernel sends from the leased address.
func (n *Network) renewClient(name string, l *lease, unicast bool) (*nclient4.Client, error) {
	opts := []nclient4.ClientOpt{nclient4.WithTimeout(n.cfg.DHCPTimeout), nclient4.WithRetry(2)}
	if !unicast || !l.server.IsValid() {
		return nclient4.New(name, opts...)
	}
	ifc, err := net.InterfaceByName(name)
	if err != nil {
		return nil, err
	}
	conn, err := server4.NewIPv4UDPConn(name, &net.UDPAddr{Port: nclient4.ClientPort})
	if err != nil {
		return nil, err
	}
	opts = append(opts, nclient4.WithServerAddr(&net.UDPAddr{IP: l.server.AsSlice(), Port: nclient4.ServerPort}))
	c, err := nclient4.NewWithConn(conn, ifc.HardwareAddr, opts...)
	if err != nil {
		conn.Close()
	}
	return c, err
}

// errPhaseOver ends RENEWING at T2 and REBINDING at the lease's end.
var errPhaseOver = errors.New("no answer before the phase ended")

// renewUntil retries renewal until deadline: after a failed try it waits half the time left, at least minRetry
// (RFC 2131 §4.4.5 says 60 s; short leases get a tenth of their length). A NAK ends it at once.
func (n *Network) renewUntil(ctx context.Context, name string, l *lease, deadline time.Time, unicast bool) (*lease, error) {
	minRetry := min(60*time.Second, l.dur/10)
	for {
		if time.Until(deadline) <= 0 {
			return nil, errPhaseOver
		}
		tryCtx, cancel := context.WithDeadline(ctx, deadline)
		next, err := n.renewOnce(tryCtx, name, l, unicast)
		cancel()
		if err == nil {
			return next, nil
		}
		var nak *nclient4.ErrNak
		if errors.As(err, &nak) || ctx.Err() != nil {
			return nil, err
		}
		n.log.Debugf("dhcp on %s: renewal (unicast=%v) got no answer: %v", name, unicast, err)
		wait := max(time.Until(deadline)/2, minRetry)
		if time.Now().Add(wait).After(deadline) {
			return nil, errPhaseOver
		}
		if !sleepCtx(ctx, wait) {
			return nil, ctx.Err()
		}
	}
}

// keep holds l until T1, then renews or rebinds it; it returns the renewed lease, (nil, nil) when ctx ends or the
// lease is infinite, or an error when the lease is lost (NAK, or no answer before it ran out).
func (n *Network) keep(ctx context.Context, name string, l *lease) (*lease, error) {
	if l.dur == 0 {
		<-ctx.Done()
		return nil, nil
	}
	if !sleepCtx(ctx, time.Until(l.start.Add(l.t1))) {
		return nil, nil
	}
	next, err := n.renewUntil(ctx, name, l, l.start.Add(l.t2), true)
	if err == nil || ctx.Err() != nil {
		return next, nil
	}
	if !errors.Is(err, errPhaseOver) {
		return nil, err
	}
	n.log.Warnf("dhcp on %s: server %v did not renew the lease by T2 (%s); rebinding by broadcast", name, l.server, l.t2)
	next, err = n.renewUntil(ctx, name, l, l.start.Add(l.dur), false)
	if err == nil || ctx.Err() != nil {
		return next, nil
	}
	return nil, fmt.Errorf("lease on %s ran out (%w)", l.addr, err)
}

// runDHCP is the life of one NIC's DHCP: acquire (retrying with backoff up to 30 s), apply, keep; when the lease is
// lost, remove its address and start over. It ends with ctx.
func (n *Network) runDHCP(ctx context.Context, x nic) {
	defer n.wg.Done()
	backoff, failures := time.Second, 0
	// Failures are logged on the first try and every tenth after, so a NIC on a network without DHCP does not
	// flood the console while the deploy runs on another NIC.
	for ctx.Err() == nil {
		l, err := n.request(ctx, x.name)
		if err != nil {
			if failures++; failures == 1 || failures%10 == 0 {
				n.log.Warnf("dhcp on %s: %v (try %d; retrying)", x.name, err, failures)
			}
			sleepCtx(ctx, backoff)
			backoff = min(backoff*2, 30*time.Second)
			continue
		}
		backoff, failures = time.Second, 0
		var prev *lease
		for l != nil {
			if err := n.applyLease(x, prev, l); err != nil {
				n.log.Errorf("dhcp on %s: %v; asking for a new lease", x.name, err)
				prev = l
				sleepCtx(ctx, backoff)
				break
			}
			prev = l
			if l, err = n.keep(ctx, x.name, l); err != nil {
				n.log.Warnf("dhcp on %s: %v; address removed, asking for a new lease", x.name, err)
			}
		}
		if err := addrDel(x.index, prev.addr); err != nil && ctx.Err() == nil {
			n.log.Warnf("dhcp on %s: %v", x.name, err)
		}
	}
}

// sleepCtx waits d or until ctx ends; it reports whether the full wait passed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
