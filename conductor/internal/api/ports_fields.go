package api

// The request side of ports and portgroups: the field tables with their microversions, ?fields= and the common
// list query, and the checks of a POST or PATCH body as Ironic's schemas and argument validators make them. Ironic
// answers a field newer than the request with 406 (not 404, which is for endpoints) and a malformed value with
// 400 naming the argument; the messages below are Ironic's, so that clients matching on them keep working.

import (
	"net"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// fieldDef is one field of a port-like resource, in Ironic's output order, with the microversion that shows it.
type fieldDef struct {
	name  string
	since int
}

// notAcceptable is Ironic's NotAcceptable: a field or filter newer than the request's microversion.
func notAcceptable() error {
	return &httpError{http.StatusNotAcceptable, "Request not acceptable."}
}

// checkFields parses ?fields= against defs: fields need 1.8, an unknown name is 400, a name newer than the
// request 406 (Ironic's check_allow_specify_fields and check_allowed_*_fields). nil means "not given".
func checkFields(raw string, defs []fieldDef, version int) ([]string, error) {
	if raw == "" {
		return nil, nil
	}
	if version < 8 {
		return nil, notAcceptable()
	}
	since := map[string]int{}
	for _, f := range defs {
		since[f.name] = f.since
	}
	var out []string
	for _, f := range strings.Split(raw, ",") {
		v, ok := since[f]
		if !ok {
			return nil, badRequest("Field(s) \"%s\" are not valid", f)
		}
		if v > version {
			return nil, notAcceptable()
		}
		out = append(out, f)
	}
	return out, nil
}

// renderDefs builds the object of the fields of defs visible at version, in Ironic's order, keeping only fields
// (plus links) when fields is not nil.
func renderDefs(defs []fieldDef, vals map[string]any, version int, fields []string) *ordered {
	keep := map[string]bool{"links": true}
	for _, f := range fields {
		keep[f] = true
	}
	o := newOrdered()
	for _, f := range defs {
		if f.since <= version && (fields == nil || keep[f.name]) {
			o.set(f.name, vals[f.name])
		}
	}
	return o
}

// subList describes the list endpoints of one port-like resource for parseSubList.
type subList struct {
	defs     []fieldDef
	defaults []string // fields of a list without detail
	sortKeys []string
	filters  []string // resource-specific query parameters
}

// parseSubList checks the common query of a port or portgroup list: paging, sorting, fields and detail (1.43),
// as Ironic's get_request_return_fields. It returns the fields to render (nil: all).
func parseSubList(q url.Values, version int, detailPath bool, d subList) (*listQuery, []string, error) {
	known := map[string]bool{"fields": true, "detail": true, "limit": true, "marker": true, "sort_key": true,
		"sort_dir": true}
	for _, f := range d.filters {
		known[f] = true
	}
	for k := range q {
		if !known[k] {
			return nil, nil, badRequest("Unknown query parameter %q", k)
		}
	}
	lq := &listQuery{passOn: cloneWithout(q, "limit", "marker")}
	if err := parsePaging(q, lq, d.sortKeys); err != nil {
		return nil, nil, err
	}
	detail := detailPath
	if v := q.Get("detail"); v != "" {
		if version < 43 {
			return nil, nil, badRequest("Invalid query parameter ?detail=%s received.", v)
		}
		b, err := toBool("detail", v)
		if err != nil {
			return nil, nil, err
		}
		detail = detail || b
	}
	fields, err := checkFields(q.Get("fields"), d.defs, version)
	if err != nil {
		return nil, nil, err
	}
	if fields != nil && detail {
		return nil, nil, badRequest("Can not specify ?detail=True and fields in the same request.")
	}
	if fields == nil && !detail {
		fields = d.defaults
	}
	return lq, fields, nil
}

// portFieldGate answers 406 for a port field newer than the request (Ironic's _check_allowed_port_fields).
func portFieldGate(field string, version int) error {
	since := map[string]int{"pxe_enabled": 19, "local_link_connection": 19, "portgroup_uuid": 24,
		"physical_network": 34, "is_smartnic": 53, "name": 88, "node_ident": 94, "description": 97}[field]
	if since > version {
		return notAcceptable()
	}
	return nil
}

// macArg validates a MAC address argument (Ironic's args.mac_address) and returns it normalized.
func macArg(name string, v any) (string, error) {
	s, _ := v.(string)
	hw, err := net.ParseMAC(s)
	if err != nil || len(hw) != 6 {
		return "", badRequest("Expected valid MAC address for %s: %v", name, v)
	}
	return strings.ToLower(hw.String()), nil
}

// uuidArg validates a UUID argument (Ironic's args.uuid); nil and "" give "".
func uuidArg(name string, v any) (string, error) {
	if v == nil {
		return "", nil
	}
	s, ok := v.(string)
	if !ok || (s != "" && !isUUID(s)) {
		return "", badRequest("Expected UUID for %s: %v", name, v)
	}
	return strings.ToLower(s), nil
}

// objectArg accepts a JSON object or null (an empty object).
func objectArg(kind, name string, v any) (map[string]any, error) {
	if v == nil {
		return map[string]any{}, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, badRequest("Schema error for %s: %v is not of type 'object' (field %s)", kind, v, name)
	}
	return m, nil
}

// optString accepts a string or null ("") of at most max characters (0: unlimited).
func optString(kind, name string, v any, max int) (string, error) {
	if v == nil {
		return "", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", badRequest("Schema error for %s: %v is not of type 'string', 'null' (field %s)", kind, v, name)
	}
	if max > 0 && len([]rune(s)) > max {
		return "", badRequest("Schema error for %s: '%s' is too long (field %s: at most %d characters)", kind, s, name, max)
	}
	return s, nil
}

// localLink validates a local_link_connection as Ironic's LOCAL_LINK_CONN_SCHEMA (empty, or port_id with
// switch_id or hostname, or network_type unmanaged, or port_id with both vtep switches; string values of known
// keys only; network_type from 1.64, vtep keys from 1.90) and normalizes switch_id (a MAC or an OpenFlow
// datapath ID).
func localLink(v any, version int) (map[string]any, error) {
	m, err := objectArg("port", "local_link_connection", v)
	if err != nil || len(m) == 0 {
		return m, err
	}
	has := map[string]bool{}
	for k, x := range m {
		switch k {
		case "port_id", "switch_id", "hostname", "switch_info", "network_type", "vtep-logical-switch", "vtep-physical-switch":
		default:
			return nil, badRequest("Invalid local_link_connection: additional property '%s' is not allowed; use port_id, "+
				"switch_id, switch_info, hostname, network_type", k)
		}
		if _, ok := x.(string); !ok {
			return nil, badRequest("Invalid local_link_connection: %s must be a string", k)
		}
		has[k] = true
	}
	if has["network_type"] && version < 64 || (has["vtep-logical-switch"] || has["vtep-physical-switch"]) && version < 90 {
		return nil, notAcceptable()
	}
	nt, _ := m["network_type"].(string)
	if has["network_type"] && nt != "managed" && nt != "unmanaged" {
		return nil, badRequest("Invalid local_link_connection: network_type %q is not one of 'managed', 'unmanaged'", nt)
	}
	if has["vtep-logical-switch"] != has["vtep-physical-switch"] {
		return nil, badRequest("Invalid local_link_connection: vtep-logical-switch and vtep-physical-switch go together")
	}
	// The anyOf of LOCAL_LINK_CONN_SCHEMA: a switch port, a Smart NIC's host port, an OVN VTEP port, or an
	// unmanaged link (the empty object returned above is the fifth branch).
	ok := has["port_id"] && (has["switch_id"] || has["hostname"] || has["vtep-logical-switch"]) || nt == "unmanaged"
	if !ok {
		return nil, badRequest("Invalid local_link_connection: it needs port_id with switch_id (or hostname for a "+
			"Smart NIC), or network_type unmanaged; got %v", sortedKeys(m))
	}
	// Ironic's local_link_normalize: a switch is named by its MAC or by a 16-hex-digit OpenFlow datapath ID.
	if sw, ok := m["switch_id"].(string); ok {
		if hw, err := net.ParseMAC(sw); err == nil && len(hw) == 6 {
			m["switch_id"] = strings.ToLower(hw.String())
		} else if len(sw) == 16 && strings.Trim(strings.ToLower(sw), "0123456789abcdef") == "" {
			m["switch_id"] = strings.ToLower(sw)
		} else {
			return nil, badRequest("Expected a MAC address or OpenFlow datapath ID but received %s.", sw)
		}
	}
	return m, nil
}

func sortedKeys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// portDoc is a port as the document a JSON Patch applies to.
func portDoc(p *store.Port) map[string]any {
	return map[string]any{"address": p.Address, "node_uuid": p.NodeUUID, "extra": copyMap(p.Extra),
		"local_link_connection": copyMap(p.LocalLinkConnection), "pxe_enabled": p.PXEEnabled,
		"physical_network": strOrNil(p.PhysicalNetwork), "is_smartnic": p.IsSmartNIC, "name": strOrNil(p.Name),
		"description": strOrNil(p.Description), "portgroup_uuid": strOrNil(p.PortgroupUUID)}
}

// newPortFromDoc checks a POST /v1/ports body at version and returns the port it asks for; NodeUUID holds the
// node_uuid or node_ident given (the caller resolves it).
func newPortFromDoc(doc map[string]any, version int) (*store.Port, error) {
	for k := range doc {
		if err := portFieldGate(k, version); err != nil {
			return nil, err
		}
	}
	if _, ok := doc["address"]; !ok {
		return nil, badRequest("Schema error for port: 'address' is a required property")
	}
	_, byUUID := doc["node_uuid"]
	_, byIdent := doc["node_ident"]
	if byUUID == byIdent {
		return nil, badRequest("Schema error for port: exactly one of 'node_uuid' and 'node_ident' is required")
	}
	p := &store.Port{PXEEnabled: true, UUID: newUUID()}
	p.Normalize()
	if err := applyPortDoc(p, doc, version); err != nil {
		return nil, err
	}
	// Ironic checks this on create only: a Smart NIC's agent runs on the host named in its link.
	if p.IsSmartNIC {
		_, port := p.LocalLinkConnection["port_id"]
		_, host := p.LocalLinkConnection["hostname"]
		if !port || !host {
			return nil, badRequest("Smart NIC port must have port_id and hostname in local_link_connection")
		}
	}
	return p, nil
}

// applyPortDoc sets the fields of doc on p, validating each as Ironic's PORT_SCHEMA and PORT_VALIDATOR do.
func applyPortDoc(p *store.Port, doc map[string]any, version int) error {
	var err error
	for k, v := range doc {
		switch k {
		case "address":
			p.Address, err = macArg("address", v)
		case "node_uuid":
			// Ironic wants a UUID here. Ferric also takes a node name, as it always has (its CLI sends one).
			s, _ := v.(string)
			switch {
			case v == nil || s == "":
				err = badRequest("Schema error for port: 'node_uuid' is a required property")
			case !isUUID(s) && !validName(s):
				err = badRequest("Expected UUID for node_uuid: %v", v)
			}
			p.NodeUUID = s
		case "node_ident":
			s, ok := v.(string)
			if !ok || s == "" {
				err = badRequest("Schema error for port: node_ident must be a node UUID or name")
			}
			p.NodeUUID = s
		case "uuid":
			var u string
			if u, err = uuidArg("uuid", v); err == nil && u != "" {
				p.UUID = u
			}
		case "extra":
			p.Extra, err = objectArg("port", k, v)
		case "local_link_connection":
			p.LocalLinkConnection, err = localLink(v, version)
		case "pxe_enabled":
			p.PXEEnabled = true // null means the field's default
			if v != nil {
				p.PXEEnabled, err = toBool(k, v)
			}
		case "is_smartnic":
			p.IsSmartNIC, err = toBool(k, v)
		case "physical_network":
			p.PhysicalNetwork, err = optString("port", k, v, 64)
			if err == nil && v != nil && p.PhysicalNetwork == "" {
				err = badRequest("A non-empty value is required when setting physical_network")
			}
		case "portgroup_uuid":
			p.PortgroupUUID, err = uuidArg("portgroup_uuid", v)
		case "name":
			p.Name, err = optString("port", k, v, 255)
		case "description":
			p.Description, err = optString("port", k, v, 255)
		default:
			err = badRequest("Schema error for port: Additional properties are not allowed ('%s' was unexpected)", k)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
