// network_data.json (OpenStack/Ironic form): links, networks on them (static ipv4/ipv6 with routes, or DHCP), and
// DNS services. Only physical links are configured; bonds and VLANs are noted and skipped.

package netconf

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// ndLink is one entry of "links": a NIC (phy, ethernet, vif... anything that is not a bond or VLAN), found on the
// machine by ethernet_mac_address, or by name when the generator wrote one.
type ndLink struct {
	ID   string `json:"id"`
	Type string `json:"type"`
	MAC  string `json:"ethernet_mac_address"`
	Name string `json:"name"`
	MTU  *int   `json:"mtu"`
}

// ndRoute is one route of a network; network 0.0.0.0 (or ::) with netmask 0.0.0.0 (or ::) is the default route.
type ndRoute struct {
	Network string `json:"network"`
	Netmask string `json:"netmask"`
	Gateway string `json:"gateway"`
}

// ndService is a service entry; only "dns" is used (cloud-init reads the same).
type ndService struct {
	Type    string `json:"type"`
	Address string `json:"address"`
}

// ndNetwork is one entry of "networks". ip_address may carry its prefix length ("10.0.0.5/24") or come with a
// netmask; dns_nameservers and dns_search are the Neutron subnet fields some generators add.
type ndNetwork struct {
	ID             string      `json:"id"`
	Type           string      `json:"type"`
	Link           string      `json:"link"`
	IPAddress      string      `json:"ip_address"`
	Netmask        string      `json:"netmask"`
	Routes         []ndRoute   `json:"routes"`
	Services       []ndService `json:"services"`
	DNSNameservers []string    `json:"dns_nameservers"`
	DNSSearch      []string    `json:"dns_search"`
}

// networkData is the whole document; unknown fields are ignored (the format grows).
type networkData struct {
	Links    []ndLink    `json:"links"`
	Networks []ndNetwork `json:"networks"`
	Services []ndService `json:"services"`
}

// ParseNetworkData turns a network_data.json into a plan. Networks it cannot configure (bond or VLAN links, DHCPv6)
// become notes; it fails only when the JSON is broken or nothing in it can be configured.
func ParseNetworkData(b []byte) (Plan, error) {
	var nd networkData
	if err := json.Unmarshal(b, &nd); err != nil {
		return Plan{}, fmt.Errorf("not network_data JSON: %w", err)
	}
	nb := &ndBuilder{plan: Plan{Source: SourceNetworkData}, links: map[string]ndLink{}, statics: map[string]*Static{}}
	for _, l := range nd.Links {
		nb.links[l.ID] = l
	}
	for _, s := range nd.Services { // top-level DNS services come first, as cloud-init orders them
		if s.Type == "dns" {
			nb.dns = append(nb.dns, s.Address)
		}
	}
	for i, n := range nd.Networks {
		nb.add(i, n)
	}
	return nb.finish()
}

// ndBuilder collects a plan from network_data's networks, one at a time.
type ndBuilder struct {
	plan    Plan
	links   map[string]ndLink
	statics map[string]*Static // by link id; several networks on one link share its Static
	order   []string           // link ids in first-seen order, so the plan is deterministic
	dns     []string           // unparsed: bad entries become notes in finish
}

// add takes one network: DHCP, left to SLAAC, a static address (merged per link), or a note saying why not.
func (nb *ndBuilder) add(i int, n ndNetwork) {
	name := n.ID
	if name == "" {
		name = fmt.Sprintf("networks[%d]", i)
	}
	note := func(format string, a ...any) {
		nb.plan.Notes = append(nb.plan.Notes, "network_data: network "+name+" "+fmt.Sprintf(format, a...))
	}
	l, ok := nb.links[n.Link]
	if !ok {
		note("names link %q, which is not in links; skipped", n.Link)
		return
	}
	m, err := linkMatch(l)
	if err != nil {
		note("skipped: %v", err)
		return
	}
	switch n.Type {
	case "ipv4_dhcp":
		nb.plan.DHCP = append(nb.plan.DHCP, m)
		return
	case "ipv6_slaac", "ipv6_dhcpv6-stateless", "ipv6_dhcpv6-stateful", "ipv6_dhcp":
		note("(%s) left to SLAAC: the ramdisk has no DHCPv6 client", n.Type)
		return
	case "ipv4", "ipv6":
	default:
		note("has type %q; skipped (ipv4, ipv6 and ipv4_dhcp are configured)", n.Type)
		return
	}
	addr, routes, err := ndStatic(n)
	if err != nil {
		note("skipped: %v", err)
		return
	}
	st := nb.statics[l.ID]
	if st == nil {
		st = &Static{Match: m}
		if l.MTU != nil {
			st.MTU = *l.MTU
		}
		nb.statics[l.ID] = st
		nb.order = append(nb.order, l.ID)
	}
	st.Addrs = append(st.Addrs, addr)
	st.Routes = append(st.Routes, routes...)
	for _, s := range n.Services {
		if s.Type == "dns" {
			nb.dns = append(nb.dns, s.Address)
		}
	}
	nb.dns = append(nb.dns, n.DNSNameservers...)
	nb.plan.Search = append(nb.plan.Search, n.DNSSearch...)
}

// finish checks something can be configured and cleans the DNS servers and search domains.
func (nb *ndBuilder) finish() (Plan, error) {
	plan := nb.plan
	for _, id := range nb.order {
		plan.Static = append(plan.Static, *nb.statics[id])
	}
	if len(plan.Static) == 0 && len(plan.DHCP) == 0 {
		return Plan{}, errors.New(strings.Join(append([]string{"no network in it can be configured"}, plan.Notes...), "; "))
	}
	seen := map[netip.Addr]bool{}
	for _, d := range nb.dns {
		a, err := netip.ParseAddr(d)
		if err != nil {
			plan.Notes = append(plan.Notes, fmt.Sprintf("network_data: dns service %q is not an IP address; left out", d))
			continue
		}
		if !seen[a] {
			seen[a] = true
			plan.DNS = append(plan.DNS, a)
		}
	}
	var bad []string
	plan.Search, bad = cleanDomains(plan.Search)
	for _, b := range bad {
		plan.Notes = append(plan.Notes, fmt.Sprintf("network_data: dns_search %q is not a domain name; left out", b))
	}
	return plan, nil
}

// linkMatch finds the NIC of a physical link by MAC (or by name when no MAC is given).
func linkMatch(l ndLink) (Match, error) {
	switch l.Type {
	case "bond", "vlan":
		return Match{}, fmt.Errorf("link %s is a %s; the agent ramdisk configures physical links only", l.ID, l.Type)
	}
	if l.MAC != "" {
		mac, err := net.ParseMAC(l.MAC)
		if err != nil {
			return Match{}, fmt.Errorf("link %s: ethernet_mac_address %q: %w", l.ID, l.MAC, err)
		}
		return Match{MAC: mac}, nil
	}
	if l.Name != "" {
		return Match{Name: l.Name}, nil
	}
	return Match{}, fmt.Errorf("link %s has neither ethernet_mac_address nor name", l.ID)
}

// ndStatic reads a static network's address (ip_address with /prefix, or with netmask) and its routes.
func ndStatic(n ndNetwork) (netip.Prefix, []Route, error) {
	addr, err := ndPrefix(n.IPAddress, n.Netmask)
	if err != nil {
		return netip.Prefix{}, nil, fmt.Errorf("ip_address %q netmask %q: %w", n.IPAddress, n.Netmask, err)
	}
	if addr.Addr().Is4() != (n.Type == "ipv4") {
		return netip.Prefix{}, nil, fmt.Errorf("ip_address %s does not match type %s", n.IPAddress, n.Type)
	}
	var routes []Route
	for j, r := range n.Routes {
		dst, err := ndPrefix(r.Network, r.Netmask)
		if err != nil {
			return netip.Prefix{}, nil, fmt.Errorf("routes[%d] network %q netmask %q: %w", j, r.Network, r.Netmask, err)
		}
		gw, err := netip.ParseAddr(r.Gateway)
		if err != nil || gw.Is4() != dst.Addr().Is4() {
			return netip.Prefix{}, nil, fmt.Errorf("routes[%d] gateway %q is not an address of the route's family", j, r.Gateway)
		}
		routes = append(routes, Route{Dst: dst.Masked(), Gw: gw})
	}
	return addr, routes, nil
}

// ndPrefix reads "addr/len", or an address with a netmask in address or length form.
func ndPrefix(addr, mask string) (netip.Prefix, error) {
	if strings.Contains(addr, "/") {
		return netip.ParsePrefix(addr)
	}
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return netip.Prefix{}, errors.New("not an IP address")
	}
	if mask == "" {
		return netip.Prefix{}, errors.New("no netmask; give netmask or write ip_address as address/length")
	}
	bits, err := parseMask(mask, a.BitLen())
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, bits), nil
}
