package api

import (
	"errors"
	"net"
	"net/http"
	"strings"

	"github.com/gorilla/mux"

	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// portFields lists the port fields in Ironic's output order with the version that introduced each.
func portFields() []struct {
	name  string
	since int
} {
	return []struct {
		name  string
		since int
	}{{"uuid", 1}, {"created_at", 1}, {"updated_at", 1}, {"address", 1}, {"extra", 1}, {"internal_info", 18},
		{"is_smartnic", 53}, {"local_link_connection", 19}, {"physical_network", 34}, {"pxe_enabled", 19},
		{"node_uuid", 1}, {"links", 1}, {"portgroup_uuid", 24}, {"name", 88}, {"description", 97}}
}

func (s *Server) renderPort(p *store.Port, version int, fields []string) *ordered {
	val := map[string]any{
		"uuid": p.UUID, "created_at": isoTime(p.CreatedAt), "updated_at": timeOrNil(p.UpdatedAt), "address": p.Address,
		"extra": p.Extra, "internal_info": p.InternalInfo, "is_smartnic": p.IsSmartNIC,
		"local_link_connection": p.LocalLinkConnection, "physical_network": strOrNil(p.PhysicalNetwork),
		"pxe_enabled": p.PXEEnabled, "node_uuid": p.NodeUUID, "links": links(s.cfg.PublicURL, "ports", p.UUID, ""),
		"portgroup_uuid": strOrNil(p.PortgroupUUID), "name": strOrNil(p.Name), "description": strOrNil(p.Description),
	}
	o := newOrdered()
	if fields != nil {
		for _, f := range fields {
			o.set(f, val[f])
		}
		return o
	}
	for _, f := range portFields() {
		if f.since <= version {
			o.set(f.name, val[f.name])
		}
	}
	return o
}

func portFieldSet(raw string, version int) ([]string, error) {
	if raw == "" {
		return nil, nil
	}
	known := map[string]int{}
	for _, f := range portFields() {
		known[f.name] = f.since
	}
	out := []string{"uuid"}
	for _, f := range strings.Split(raw, ",") {
		since, ok := known[f]
		if !ok || since > version {
			return nil, badRequest("Field(s) \"%s\" are not valid", f)
		}
		if f != "uuid" {
			out = append(out, f)
		}
	}
	return append(out, "links"), nil
}

// normalizeMAC validates a MAC address and returns it lower-case with colons.
func normalizeMAC(s string) (string, error) {
	hw, err := net.ParseMAC(s)
	if err != nil || len(hw) != 6 {
		return "", badRequest("Expected a MAC address but received %s.", s)
	}
	return strings.ToLower(hw.String()), nil
}

func (s *Server) listPorts(w http.ResponseWriter, r *http.Request) { s.doListPorts(w, r, "", false) }
func (s *Server) listPortsDetail(w http.ResponseWriter, r *http.Request) {
	s.doListPorts(w, r, "", true)
}
func (s *Server) listNodePorts(w http.ResponseWriter, r *http.Request) {
	s.doListPorts(w, r, mux.Vars(r)["node"], false)
}
func (s *Server) listNodePortsDetail(w http.ResponseWriter, r *http.Request) {
	s.doListPorts(w, r, mux.Vars(r)["node"], true)
}

func (s *Server) doListPorts(w http.ResponseWriter, r *http.Request, nodeIdent string, detail bool) {
	version := versionOf(r)
	q := r.URL.Query()
	lq := &listQuery{passOn: q}
	for k := range q {
		switch k {
		case "node", "node_uuid", "address", "fields", "detail", "limit", "marker", "sort_key", "sort_dir", "portgroup":
		default:
			s.writeError(w, r, badRequest("Unknown query parameter %q", k))
			return
		}
	}
	lq.passOn = cloneWithout(q, "limit", "marker")
	if err := parsePaging(q, lq, store.PortSortKeys()); err != nil {
		s.writeError(w, r, err)
		return
	}
	if d := q.Get("detail"); d != "" {
		b, err := toBool("detail", d)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		detail = detail || b
	}
	fields, err := portFieldSet(q.Get("fields"), version)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if fields != nil && detail {
		s.writeError(w, r, badRequest("Can not specify ?detail=True and fields in the same request."))
		return
	}
	for _, k := range []string{"node", "node_uuid"} {
		if v := q.Get(k); v != "" {
			nodeIdent = v
		}
	}
	if nodeIdent != "" {
		n, err := s.getNodeOr404(r, nodeIdent)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		lq.portFilter.NodeUUID = n.UUID
	}
	if a := q.Get("address"); a != "" {
		mac, err := normalizeMAC(a)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		lq.portFilter.Address = mac
	}
	ports, err := s.eng.Store().ListPorts(r.Context(), lq.portFilter, lq.opts)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if fields == nil && !detail {
		fields = []string{"uuid", "address", "links"}
	}
	items := make([]any, 0, len(ports))
	for _, p := range ports {
		items = append(items, s.renderPort(p, version, fields))
	}
	out := newOrdered()
	out.set("ports", items)
	if len(ports) > 0 {
		path := "ports"
		if detail {
			path = "ports/detail"
		}
		s.nextLinks(out, "ports", path, lq, len(ports), ports[len(ports)-1].UUID)
	}
	writeJSON(w, http.StatusOK, out)
}

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

func (s *Server) getPortOr404(r *http.Request, id string) (*store.Port, error) {
	p, err := s.eng.Store().GetPort(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, notFound("Port %s could not be found.", id)
	}
	return p, err
}

func (s *Server) getPort(w http.ResponseWriter, r *http.Request) {
	id := mux.Vars(r)["port"]
	if id == "detail" {
		s.listPortsDetail(w, r)
		return
	}
	p, err := s.getPortOr404(r, id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	fields, err := portFieldSet(r.URL.Query().Get("fields"), versionOf(r))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.renderPort(p, versionOf(r), fields))
}

// portDoc holds the settable fields of a port.
func applyPortDoc(p *store.Port, doc map[string]any) error {
	for k, v := range doc {
		switch k {
		case "address":
			a, _ := v.(string)
			mac, err := normalizeMAC(a)
			if err != nil {
				return err
			}
			p.Address = mac
		case "node_uuid", "node_ident":
			u, _ := v.(string)
			p.NodeUUID = u
		case "uuid":
			u, _ := v.(string)
			if !isUUID(u) {
				return badRequest("Invalid uuid %q: expected a UUID", u)
			}
			p.UUID = u
		case "extra", "local_link_connection":
			m, ok := v.(map[string]any)
			if v != nil && !ok {
				return badRequest("Invalid %s: %v is not an object", k, v)
			}
			if m == nil {
				m = map[string]any{}
			}
			if k == "extra" {
				p.Extra = m
			} else {
				p.LocalLinkConnection = m
			}
		case "pxe_enabled", "is_smartnic":
			b, err := toBool(k, v)
			if err != nil {
				return err
			}
			if k == "pxe_enabled" {
				p.PXEEnabled = b
			} else {
				p.IsSmartNIC = b
			}
		case "physical_network", "name", "description", "portgroup_uuid":
			str, ok := v.(string)
			if v != nil && !ok {
				return badRequest("Invalid %s: %v is not a string", k, v)
			}
			switch k {
			case "physical_network":
				p.PhysicalNetwork = str
			case "name":
				p.Name = str
			case "description":
				p.Description = str
			case "portgroup_uuid":
				p.PortgroupUUID = str
			}
		default:
			return badRequest("Schema error for port: Additional properties are not allowed ('%s' was unexpected)", k)
		}
	}
	return nil
}

func (s *Server) createPort(w http.ResponseWriter, r *http.Request) {
	var doc map[string]any
	if err := decodeBody(w, r, maxBody, &doc); err != nil {
		s.writeError(w, r, err)
		return
	}
	if _, ok := doc["address"]; !ok {
		s.writeError(w, r, badRequest("Schema error for port: 'address' is a required property"))
		return
	}
	p := &store.Port{PXEEnabled: true, UUID: newUUID()}
	p.Normalize()
	if err := applyPortDoc(p, doc); err != nil {
		s.writeError(w, r, err)
		return
	}
	if p.NodeUUID == "" {
		s.writeError(w, r, badRequest("Schema error for port: 'node_uuid' is a required property"))
		return
	}
	n, err := s.getNodeOr404(r, p.NodeUUID)
	if err != nil {
		s.writeError(w, r, badRequest("Node %s could not be found; create the port with the UUID or name of an existing node", p.NodeUUID))
		return
	}
	p.NodeUUID = n.UUID
	p.CreatedAt = nowUTC()
	if err := s.eng.Store().CreatePort(r.Context(), p); err != nil {
		if errors.Is(err, store.ErrDuplicate) {
			err = conflict("A port with MAC address %s already exists.", p.Address)
		}
		s.writeError(w, r, err)
		return
	}
	s.location(w, "ports/"+p.UUID)
	writeJSON(w, http.StatusCreated, s.renderPort(p, versionOf(r), nil))
}

func (s *Server) patchPort(w http.ResponseWriter, r *http.Request) {
	id := mux.Vars(r)["port"]
	body, err := readBody(w, r, maxBody)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	ops, err := parsePatch(body)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	p, err := s.getPortOr404(r, id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	doc := map[string]any{"address": p.Address, "node_uuid": p.NodeUUID, "extra": copyMap(p.Extra),
		"local_link_connection": copyMap(p.LocalLinkConnection), "pxe_enabled": p.PXEEnabled,
		"physical_network": strOrNil(p.PhysicalNetwork), "is_smartnic": p.IsSmartNIC, "name": strOrNil(p.Name),
		"description": strOrNil(p.Description), "portgroup_uuid": strOrNil(p.PortgroupUUID)}
	allowed := []string{"address", "description", "extra", "is_smartnic", "local_link_connection", "name", "node_uuid",
		"physical_network", "portgroup_uuid", "pxe_enabled"}
	if err := applyPatch(doc, ops, allowed); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := applyPortDoc(p, doc); err != nil {
		s.writeError(w, r, err)
		return
	}
	n, err := s.getNodeOr404(r, p.NodeUUID)
	if err != nil {
		s.writeError(w, r, badRequest("Node %s could not be found", p.NodeUUID))
		return
	}
	p.NodeUUID = n.UUID
	if err := s.eng.Store().UpdatePort(r.Context(), p); err != nil {
		if errors.Is(err, store.ErrDuplicate) {
			err = conflict("A port with MAC address %s already exists.", p.Address)
		}
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.renderPort(p, versionOf(r), nil))
}

func (s *Server) deletePort(w http.ResponseWriter, r *http.Request) {
	id := mux.Vars(r)["port"]
	if err := s.eng.Store().DeletePort(r.Context(), id); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			err = notFound("Port %s could not be found.", id)
		}
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
