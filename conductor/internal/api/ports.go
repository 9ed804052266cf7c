package api

// Ports: GET/POST /v1/ports, /v1/ports/detail, GET/PATCH/DELETE /v1/ports/{port} (UUID, MAC address or name),
// /v1/nodes/{node}/ports and (1.24) /v1/portgroups/{pg}/ports. Reads come from the store; every write goes through
// the engine, which takes the node's reservation and applies Ironic's state rules (engine/ports.go).

import (
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/gorilla/mux"

	"github.com/ferric-metal/ferric/conductor/internal/engine"
	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// portDefs lists the port fields in Ironic's output order (convert_with_links) with the version of each.
var portDefs = []fieldDef{{"uuid", 1}, {"created_at", 1}, {"updated_at", 1}, {"address", 1}, {"extra", 1},
	{"internal_info", 18}, {"is_smartnic", 53}, {"local_link_connection", 19}, {"physical_network", 34},
	{"pxe_enabled", 19}, {"node_uuid", 1}, {"name", 88}, {"description", 97}, {"links", 1}, {"portgroup_uuid", 24}}

// portList describes GET /v1/ports.
// Default list fields are Ironic's (uuid, address); the four filters are the only query keys beyond paging.
var portList = subList{defs: portDefs, defaults: []string{"uuid", "address"}, sortKeys: store.PortSortKeys(),
	filters: []string{"node", "node_uuid", "address", "portgroup"}}

// renderPort renders a port as Ironic's convert_with_links: the fields visible at version, or only fields (plus
// links) when the request named some.
func (s *Server) renderPort(p *store.Port, version int, fields []string) *ordered {
	val := map[string]any{
		"uuid": p.UUID, "created_at": isoTime(p.CreatedAt), "updated_at": timeOrNil(p.UpdatedAt), "address": p.Address,
		"extra": p.Extra, "internal_info": p.InternalInfo, "is_smartnic": p.IsSmartNIC,
		"local_link_connection": p.LocalLinkConnection, "physical_network": strOrNil(p.PhysicalNetwork),
		"pxe_enabled": p.PXEEnabled, "node_uuid": p.NodeUUID, "links": links(s.cfg.PublicURL, "ports", p.UUID, ""),
		"portgroup_uuid": strOrNil(p.PortgroupUUID), "name": strOrNil(p.Name), "description": strOrNil(p.Description),
	}
	// Before 1.90 a link with OVN VTEP switches is shown empty (the key stays: older clients expect it).
	_, vtep := p.LocalLinkConnection["vtep-logical-switch"]
	// Clients older than 1.90 cannot parse the VTEP keys, so the whole connection is hidden from them.
	if _, phys := p.LocalLinkConnection["vtep-physical-switch"]; (vtep || phys) && version < 90 {
		val["local_link_connection"] = map[string]any{}
	}
	return renderDefs(portDefs, val, version, fields)
}

// normalizeMAC validates a MAC address and returns it lower-case with colons.
func normalizeMAC(s string) (string, error) {
	hw, err := net.ParseMAC(s)
	if err != nil || len(hw) != 6 {
		// Six bytes only: net.ParseMAC also accepts 8- and 20-byte addresses, which Ironic's MAC type refuses.
		return "", badRequest("Expected a MAC address but received %s.", s)
	}
	return strings.ToLower(hw.String()), nil
}

// The four port list routes differ only in the parent they filter by and in detail.
func (s *Server) listPorts(w http.ResponseWriter, r *http.Request) {
	s.doListPorts(w, r, "", "", false)
}
func (s *Server) listPortsDetail(w http.ResponseWriter, r *http.Request) {
	s.doListPorts(w, r, "", "", true)
}
func (s *Server) listNodePorts(w http.ResponseWriter, r *http.Request) {
	s.doListPorts(w, r, mux.Vars(r)["node"], "", false)
}
func (s *Server) listNodePortsDetail(w http.ResponseWriter, r *http.Request) {
	s.doListPorts(w, r, mux.Vars(r)["node"], "", true)
}

// portFilter resolves the node, portgroup and address filters of a port list. Ironic applies one of them: the
// portgroup, else the node, else the address; a node and a portgroup together are refused.
func (s *Server) portFilter(r *http.Request, q url.Values, nodeIdent, groupIdent string) (store.PortFilter, error) {
	var f store.PortFilter
	version := versionOf(r)
	// node_uuid (the 1.0 filter) and node (1.5, UUID or name) mean the same; a path's node wins over both.
	for _, k := range []string{"node_uuid", "node"} {
		if v := q.Get(k); v != "" && nodeIdent == "" {
			nodeIdent = v
		}
	}
	if v := q.Get("portgroup"); v != "" && groupIdent == "" {
		// The portgroup filter is a 1.24 parameter: an older client gets 406.
		if version < 24 {
			return f, notAcceptable()
		}
		groupIdent = v
	}
	if nodeIdent != "" && groupIdent != "" {
		// Ironic's answer to a node and a portgroup in one list request is this 403, not a 400.
		return f, &httpError{http.StatusForbidden, "Operation not permitted."}
	}
	switch {
	case groupIdent != "":
		g, err := s.getPortgroupOr404(r, groupIdent)
		if err != nil {
			return f, err
		}
		f.PortgroupUUID = g.UUID
	case nodeIdent != "":
		// Naming a node by name arrived in 1.5; before it the node must be a UUID.
		if version < 5 && !isUUID(nodeIdent) {
			return f, notAcceptable()
		}
		n, err := s.getNodeOr404(r, nodeIdent)
		if err != nil {
			return f, err
		}
		f.NodeUUID = n.UUID
	case q.Get("address") != "":
		mac, err := normalizeMAC(q.Get("address"))
		if err != nil {
			return f, err
		}
		f.Address = mac
	}
	return f, nil
}

// doListPorts serves every port list: the parent node or portgroup of the path (if any) wins over the query's
// filters, as Ironic's sub-controllers do.
func (s *Server) doListPorts(w http.ResponseWriter, r *http.Request, nodeIdent, groupIdent string, detail bool) {
	version := versionOf(r)
	q := r.URL.Query()
	// Each step runs only if the one before succeeded; the single error check below writes whichever failed.
	lq, fields, err := parseSubList(q, version, detail, portList)
	if err == nil {
		lq.portFilter, err = s.portFilter(r, q, nodeIdent, groupIdent)
	}
	var ports []*store.Port
	if err == nil {
		ports, err = s.eng.Store().ListPorts(r.Context(), lq.portFilter, lq.opts)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	items, n, last := s.recs.ports.page(ports, version, fields)
	s.writeList(w, "ports", detail, lq, items, n, last)
}

// cloneWithout copies a query without the given keys (the next link sets limit and marker itself).
func cloneWithout(q map[string][]string, drop ...string) map[string][]string {
	out := map[string][]string{}
	for k, v := range q {
		out[k] = v
	}
	for _, d := range drop {
		delete(out, d)
	}
	return out
}

// getPortOr404 finds a port by UUID, MAC address or name, as Ironic's Port.get does.
func (s *Server) getPortOr404(r *http.Request, id string) (*store.Port, error) {
	// Port.get in Ironic tries UUID, then MAC address, then name: a MAC never looks like a UUID or a name clash.
	if hw, err := net.ParseMAC(id); err == nil && len(hw) == 6 && !isUUID(id) {
		ps, err := s.eng.Store().ListPorts(r.Context(), store.PortFilter{Address: strings.ToLower(hw.String())},
			store.ListOptions{Limit: 1})
		if err != nil {
			return nil, err
		}
		if len(ps) == 1 {
			return ps[0], nil
		}
		return nil, notFound("Port %s could not be found.", id)
	}
	p, err := s.eng.Store().GetPort(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, notFound("Port %s could not be found.", id)
	}
	return p, err
}

// getPort serves GET /v1/ports/{port}.
func (s *Server) getPort(w http.ResponseWriter, r *http.Request) {
	id := mux.Vars(r)["port"]
	// A port is never called "detail": whichever route matched, the path names the detail list.
	if id == "detail" {
		s.listPortsDetail(w, r)
		return
	}
	p, err := s.getPortOr404(r, id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	fields, err := checkFields(r.URL.Query().Get("fields"), portDefs, versionOf(r))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.renderPort(p, versionOf(r), fields))
}

// createPort serves POST /v1/ports: the body is checked here (schema, microversion gates), the node must exist
// (400 otherwise, as Ironic), and the engine stores the port under the node's reservation.
func (s *Server) createPort(w http.ResponseWriter, r *http.Request) {
	var doc map[string]any
	if err := decodeBody(w, r, maxBody, &doc); err != nil {
		s.writeError(w, r, err)
		return
	}
	// Schema, field types and version gates of the body; the node is looked up only for a valid body.
	p, err := newPortFromDoc(doc, versionOf(r))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	n, err := s.getNodeOr404(r, p.NodeUUID)
	if err != nil {
		s.writeError(w, r, badRequest("Node %s could not be found.", p.NodeUUID))
		return
	}
	// The body may name the node by name; the port stores the UUID.
	p.NodeUUID = n.UUID
	if err := s.eng.CreatePort(r.Context(), p); err != nil {
		s.writeError(w, r, lockedOr404(n.UUID, err))
		return
	}
	s.location(w, "ports/"+p.UUID)
	writeJSON(w, http.StatusCreated, s.renderPort(p, versionOf(r), nil))
}

// portPatchable are the port fields PATCH may change (Ironic's PATCH_ALLOWED_FIELDS up to 1.95).
var portPatchable = []string{"address", "description", "extra", "is_smartnic", "local_link_connection", "name",
	"node_uuid", "physical_network", "portgroup_uuid", "pxe_enabled"}

// patchPort serves PATCH /v1/ports/{port}. The patch is applied inside the engine's update, to the port as read
// under the node's reservation, so that two concurrent patches cannot lose one another's change.
func (s *Server) patchPort(w http.ResponseWriter, r *http.Request) {
	id := mux.Vars(r)["port"]
	version := versionOf(r)
	ops, err := readPatch(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	// Gates first, as Ironic: a field newer than the request is 406 whatever the port's state.
	for _, op := range ops {
		if err := portFieldGate(splitPointer(op.Path)[0], version); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	// Resolve a MAC or name to the UUID first: the engine's update takes the UUID to find the node to reserve.
	cur, err := s.getPortOr404(r, id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	p, err := s.eng.UpdatePort(r.Context(), cur.UUID, func(p *store.Port) error {
		doc := portDoc(p)
		if err := applyPatch(doc, ops, portPatchable); err != nil {
			return err
		}
		// A root "remove" leaves null; address is the one port field that cannot be unset.
		if doc["address"] == nil {
			return badRequest("Schema error for port: 'address' is a required property")
		}
		return applyPortDoc(p, doc, version)
	})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.renderPort(p, version, nil))
}

// deletePort serves DELETE /v1/ports/{port}: refused while the port carries a VIF (unless the node is in
// maintenance), 404 for an unknown port.
func (s *Server) deletePort(w http.ResponseWriter, r *http.Request) {
	p, err := s.getPortOr404(r, mux.Vars(r)["port"])
	if err == nil {
		err = s.eng.DeletePort(r.Context(), p.UUID)
	}
	if err != nil {
		// A port gone between lookup and delete is a 404 quoting the client's ident; an error the engine marked
		// as invalid input keeps its 400 even when it wraps a not-found.
		if errors.Is(err, store.ErrNotFound) && !errors.Is(err, engine.ErrInvalidInput) {
			err = notFound("Port %s could not be found.", mux.Vars(r)["port"])
		}
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
