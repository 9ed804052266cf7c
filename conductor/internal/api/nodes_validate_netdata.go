package api

// network_data (1.66) is checked as Ironic checks it against the network_data.json schema of Nova's metadata:
// links (physical, bond, VLAN), networks (IPv4, IPv6) and services (DNS), each with its required keys, its
// enumerated types and its address formats. The rules are written out here rather than loaded as a schema, so
// the messages can name the item and key at fault.

import (
	"fmt"
	"net/netip"
	"regexp"
	"slices"
)

// macRe is the schema's l2_address: six hex pairs separated by colons or dashes, any case.
var macRe = regexp.MustCompile(`(?i)^([0-9A-F]{2}[:-]){5}([0-9A-F]{2})$`)

// ndRule describes one kind of item: its required keys and the check of each key it knows.
type ndRule struct {
	required []string
	keys     map[string]func(v any) bool
}

// The checks of single values; JSON numbers arrive as float64.
func isStr(v any) bool { _, ok := v.(string); return ok }

// strIn accepts the schema's enumerated strings.
func strIn(vals ...string) func(any) bool {
	return func(v any) bool { s, ok := v.(string); return ok && slices.Contains(vals, s) }
}

func isMAC(v any) bool { s, ok := v.(string); return ok && macRe.MatchString(s) }

// isMTU is l2_mtu: a number from 1 to 65535, or null.
func isMTU(v any) bool {
	if v == nil {
		return true
	}
	f, ok := v.(float64)
	return ok && f >= 1 && f <= 65535
}

// isInt is JSON Schema's integer: a number without a fraction.
func isInt(v any) bool { f, ok := v.(float64); return ok && f == float64(int64(f)) }

// isIP accepts an address of family 4 or 6 (prefix lengths allowed for IPv6 hosts, as the schema does).
func isIP(family int) func(any) bool {
	return func(v any) bool {
		s, ok := v.(string)
		if !ok {
			return false
		}
		if family == 6 {
			if p, err := netip.ParsePrefix(s); err == nil {
				return p.Addr().Is6()
			}
		}
		a, err := netip.ParseAddr(s)
		return err == nil && (family == 4 && a.Is4() || family == 6 && a.Is6())
	}
}

// isMask accepts a dotted IPv4 netmask (contiguous ones) or an IPv6 address-form mask.
func isMask(family int) func(any) bool {
	return func(v any) bool {
		s, ok := v.(string)
		if !ok {
			return false
		}
		a, err := netip.ParseAddr(s)
		if err != nil || family == 4 && !a.Is4() || family == 6 && !a.Is6() {
			return false
		}
		if family == 6 {
			return true
		}
		b := a.As4()
		m := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
		return m != 0xffffffff && (^m)&(^m+1) == 0 // ones then zeros; /32 is not in the schema's list
	}
}

// linkRules are the L2 link kinds, in the schema's order: a physical-like interface, a bond, a VLAN.
func linkRules() []ndRule {
	common := func(extra map[string]func(any) bool) map[string]func(any) bool {
		m := map[string]func(any) bool{"id": isStr, "mtu": isMTU, "vif_id": isStr}
		for k, f := range extra {
			m[k] = f
		}
		return m
	}
	return []ndRule{
		{[]string{"ethernet_mac_address", "id", "type"}, common(map[string]func(any) bool{"ethernet_mac_address": isMAC,
			"type": strIn("bridge", "dvs", "hw_veb", "hyperv", "ovs", "tap", "vhostuser", "vif", "phy")})},
		{[]string{"ethernet_mac_address", "id", "type", "bond_mode", "bond_links"}, common(map[string]func(any) bool{
			"ethernet_mac_address": isMAC, "type": strIn("bond"),
			"bond_mode":  strIn("802.3ad", "balance-rr", "active-backup", "balance-xor", "broadcast", "balance-tlb", "balance-alb"),
			"bond_links": func(v any) bool { return listOf(v, isStr) }})},
		{[]string{"vlan_mac_address", "id", "type", "vlan_link", "vlan_id"}, common(map[string]func(any) bool{
			"vlan_mac_address": isMAC, "type": strIn("vlan"), "vlan_id": isInt, "vlan_link": isStr})},
	}
}

// serviceRule is a DNS server of one address family.
func serviceRule(family int) ndRule {
	return ndRule{[]string{"address", "type"}, map[string]func(any) bool{"address": isIP(family), "type": strIn("dns")}}
}

// networkRule is an L3 network of one family, with its routes (each needing network, netmask and gateway).
func networkRule(family int, types ...string) ndRule {
	route := ndRule{[]string{"gateway", "netmask", "network"}, map[string]func(any) bool{
		"network": isIP(family), "netmask": isMask(family), "gateway": isIP(family),
		"services": func(v any) bool { return listOf(v, serviceRule(family).ok) }}}
	return ndRule{[]string{"id", "link", "network_id", "type"}, map[string]func(any) bool{
		"id": isStr, "link": isStr, "network_id": isStr, "type": strIn(types...),
		"ip_address": isIP(family), "netmask": isMask(family),
		"routes": func(v any) bool { return listOf(v, route.ok) }}}
}

// ok reports whether v is an object meeting the rule (unknown keys are allowed, as in the schema).
func (r ndRule) ok(v any) bool { return r.problem(v) == "" }

// problem names what is wrong with v, "" when nothing is.
func (r ndRule) problem(v any) string {
	m, ok := v.(map[string]any)
	if !ok {
		return "is not an object"
	}
	for _, k := range r.required {
		if _, ok := m[k]; !ok {
			return fmt.Sprintf("'%s' is a required property", k)
		}
	}
	for k, check := range r.keys {
		if val, ok := m[k]; ok && !check(val) {
			return fmt.Sprintf("%q has an invalid value %v", k, val)
		}
	}
	return ""
}

// listOf reports whether v is a JSON array whose every element passes ok.
func listOf(v any, ok func(any) bool) bool {
	l, isList := v.([]any)
	if !isList {
		return false
	}
	for _, e := range l {
		if !ok(e) {
			return false
		}
	}
	return true
}

// matchOne checks item against alternatives: with exactly one it is the schema's oneOf, otherwise anyOf. The
// message is the first alternative's whose type matches the item's, so it points at the real mistake.
func matchOne(item any, rules []ndRule, exactlyOne bool) string {
	n, first := 0, ""
	for _, r := range rules {
		if p := r.problem(item); p == "" {
			n++
		} else if first == "" || typeMatches(item, r) {
			first = p
		}
	}
	switch {
	case n == 0:
		return first
	case n > 1 && exactlyOne:
		return "matches more than one item kind"
	}
	return ""
}

// typeMatches reports whether item's "type" is one the rule accepts.
func typeMatches(item any, r ndRule) bool {
	m, ok := item.(map[string]any)
	if !ok || r.keys["type"] == nil {
		return false
	}
	t, ok := m["type"]
	return ok && r.keys["type"](t)
}

// validateNetworkData checks a network_data document; the error is Ironic's "Invalid network_data: ..." (400).
func validateNetworkData(v any) error {
	bad := func(format string, a ...any) error {
		return badRequest("Invalid network_data: %s", fmt.Sprintf(format, a...))
	}
	m, ok := v.(map[string]any)
	if !ok {
		return bad("%v is not of type 'object'", v)
	}
	for _, k := range []string{"links", "networks", "services"} {
		if _, ok := m[k]; !ok {
			return bad("'%s' is a required property", k)
		}
	}
	sections := []struct {
		key        string
		rules      []ndRule
		exactlyOne bool
	}{
		{"links", linkRules(), true},
		{"networks", []ndRule{networkRule(4, "ipv4", "ipv4_dhcp"), networkRule(6, "ipv6", "ipv6_dhcp", "ipv6_slaac")}, true},
		{"services", []ndRule{serviceRule(4), serviceRule(6)}, false},
	}
	for _, s := range sections {
		items, ok := m[s.key].([]any)
		if !ok {
			return bad("%s: %v is not of type 'array'", s.key, m[s.key])
		}
		for i, item := range items {
			if p := matchOne(item, s.rules, s.exactlyOne); p != "" {
				return bad("%s[%d]: %s", s.key, i, p)
			}
		}
	}
	return nil
}
