package api

// Portgroups (API 1.23; mode and properties 1.26; /v1/nodes/{node}/portgroups and /v1/portgroups/{pg}/ports
// 1.24), as Ironic's portgroup controller serves them. Writes go through the engine under the node's reservation.

import (
	"errors"
	"net/http"

	"github.com/gorilla/mux"

	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// defaultPortgroupMode is Ironic's [DEFAULT]default_portgroup_mode.
const defaultPortgroupMode = "active-backup"

// portgroupDefs lists the portgroup fields in Ironic's output order with the version of each (physical_network
// and category come after Ferric's 1.95).
var portgroupDefs = []fieldDef{{"uuid", 23}, {"created_at", 23}, {"updated_at", 23}, {"address", 23},
	{"extra", 23}, {"internal_info", 23}, {"mode", 26}, {"name", 23}, {"properties", 26},
	{"standalone_ports_supported", 23}, {"node_uuid", 23}, {"links", 23}, {"ports", 24}}

// portgroupList is the list contract shared by /v1/portgroups and /v1/nodes/{node}/portgroups: Ironic's
// default fields (uuid, address, name), the sortable columns, and the two filters a list accepts.
var portgroupList = subList{defs: portgroupDefs, defaults: []string{"uuid", "address", "name"},
	sortKeys: store.PortgroupSortKeys(), filters: []string{"node", "address"}}

// since wraps h so that requests older than microversion 1.min get Ironic's 404.
func (s *Server) since(min int, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := requireVersion(r, min); err != nil {
			s.writeError(w, r, err)
			return
		}
		h(w, r)
	}
}

// portgroupsRoutes registers the portgroup endpoints, the portgroup-scoped port lists and the node's VIFs.
func (s *Server) portgroupsRoutes(v *mux.Router) {
	for _, p := range []string{"/portgroups", "/portgroups/"} {
		v.HandleFunc(p, s.since(23, s.listPortgroups)).Methods(http.MethodGet)
		v.HandleFunc(p, s.since(23, s.createPortgroup)).Methods(http.MethodPost)
	}
	v.HandleFunc("/portgroups/detail", s.since(23, s.listPortgroupsDetail)).Methods(http.MethodGet)
	v.HandleFunc("/portgroups/{pg}", s.since(23, s.getPortgroup)).Methods(http.MethodGet)
	v.HandleFunc("/portgroups/{pg}", s.since(23, s.patchPortgroup)).Methods(http.MethodPatch)
	v.HandleFunc("/portgroups/{pg}", s.since(23, s.deletePortgroup)).Methods(http.MethodDelete)
	// Sub-resources arrived in 1.24, a version after portgroups themselves, hence their own gate.
	v.HandleFunc("/portgroups/{pg}/ports", s.since(24, func(w http.ResponseWriter, r *http.Request) {
		s.doListPorts(w, r, "", mux.Vars(r)["pg"], false)
	})).Methods(http.MethodGet)
	v.HandleFunc("/portgroups/{pg}/ports/detail", s.since(24, func(w http.ResponseWriter, r *http.Request) {
		s.doListPorts(w, r, "", mux.Vars(r)["pg"], true)
	})).Methods(http.MethodGet)
	v.HandleFunc("/nodes/{node}/portgroups", s.since(24, func(w http.ResponseWriter, r *http.Request) {
		s.doListPortgroups(w, r, mux.Vars(r)["node"], false)
	})).Methods(http.MethodGet)
	v.HandleFunc("/nodes/{node}/portgroups/detail", s.since(24, func(w http.ResponseWriter, r *http.Request) {
		s.doListPortgroups(w, r, mux.Vars(r)["node"], true)
	})).Methods(http.MethodGet)
	// VIFs attach to ports or portgroups, so their routes are registered with this group.
	s.vifsRoutes(v)
}

// renderPortgroup renders a portgroup as Ironic's convert_with_links, with the link to its ports (1.24).
func (s *Server) renderPortgroup(g *store.Portgroup, version int, fields []string) *ordered {
	val := map[string]any{"uuid": g.UUID, "created_at": isoTime(g.CreatedAt), "updated_at": timeOrNil(g.UpdatedAt),
		"address": strOrNil(g.Address), "extra": g.Extra, "internal_info": g.InternalInfo, "mode": g.Mode,
		"name": strOrNil(g.Name), "properties": g.Properties, "standalone_ports_supported": g.StandalonePortsSupported,
		"node_uuid": g.NodeUUID, "links": links(s.cfg.PublicURL, "portgroups", g.UUID, ""),
		"ports": links(s.cfg.PublicURL, "portgroups", g.UUID, "ports")}
	// renderDefs drops the fields newer than the request's version (mode and properties before 1.26).
	return renderDefs(portgroupDefs, val, version, fields)
}

// getPortgroupOr404 finds a portgroup by UUID or name; anything else is Ironic's 400.
func (s *Server) getPortgroupOr404(r *http.Request, ident string) (*store.Portgroup, error) {
	// An ident that can be neither is refused before the store is asked, as Ironic's get_rpc_portgroup does.
	if !isUUID(ident) && !validName(ident) {
		return nil, badRequest("Expected UUID or name for portgroup: %s", ident)
	}
	g, err := s.eng.Store().GetPortgroup(r.Context(), ident)
	if errors.Is(err, store.ErrNotFound) {
		return nil, notFound("Portgroup %s could not be found.", ident)
	}
	return g, err
}

// listPortgroups and listPortgroupsDetail serve /v1/portgroups and /v1/portgroups/detail.
func (s *Server) listPortgroups(w http.ResponseWriter, r *http.Request) {
	s.doListPortgroups(w, r, "", false)
}

// listPortgroupsDetail serves /v1/portgroups/detail (every field, no fields=).
func (s *Server) listPortgroupsDetail(w http.ResponseWriter, r *http.Request) {
	s.doListPortgroups(w, r, "", true)
}

// doListPortgroups serves every portgroup list. Ironic applies one filter: a node and an address together are
// refused rather than combined.
func (s *Server) doListPortgroups(w http.ResponseWriter, r *http.Request, nodeIdent string, detail bool) {
	version := versionOf(r)
	q := r.URL.Query()
	lq, fields, err := parseSubList(q, version, detail, portgroupList)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var f store.PortgroupFilter
	// The path's node (/v1/nodes/{node}/portgroups) wins over ?node=.
	if nodeIdent == "" {
		nodeIdent = q.Get("node")
	}
	// Ironic refuses combined filters rather than intersecting them; the message is its own (shard included).
	if nodeIdent != "" && q.Get("address") != "" {
		s.writeError(w, r, badRequest("Filtering by node, address, or shard simultaneously is not supported."))
		return
	}
	if nodeIdent != "" {
		// The node may be named by UUID or name; resolve it so the store filters on the UUID, and an unknown node
		// is a 404 rather than an empty list.
		n, err := s.getNodeOr404(r, nodeIdent)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		f.NodeUUID = n.UUID
	}
	if a := q.Get("address"); a != "" {
		// A malformed MAC is a 400 naming the parameter; a well-formed one is normalised before comparing.
		if f.Address, err = macArg("address", a); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	// A read: straight from the store, no reservation needed.
	groups, err := s.eng.Store().ListPortgroups(r.Context(), f, lq.opts)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	items, n, last := s.recs.portgroups.page(groups, version, fields)
	s.writeList(w, "portgroups", detail, lq, items, n, last)
}

// getPortgroup serves GET /v1/portgroups/{pg} (UUID or name).
func (s *Server) getPortgroup(w http.ResponseWriter, r *http.Request) {
	id := mux.Vars(r)["pg"]
	g, err := s.getPortgroupOr404(r, id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	fields, err := checkFields(r.URL.Query().Get("fields"), portgroupDefs, versionOf(r))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.renderPortgroup(g, versionOf(r), fields))
}

// applyPortgroupDoc sets the fields of doc on g, validating each as Ironic's PORTGROUP_SCHEMA and its
// validators do; mode and properties need 1.26 (406 before).
func applyPortgroupDoc(g *store.Portgroup, doc map[string]any, version int) error {
	var err error
	for k, v := range doc {
		switch k {
		// null or an absent value clears the address (a portgroup may have none).
		case "address":
			g.Address = ""
			if v != nil {
				g.Address, err = macArg("address", v)
			}
		// A portgroup always belongs to a node: node_uuid may change, but never to null or "".
		case "node_uuid":
			var u string
			if u, err = uuidArg("node_uuid", v); err == nil && u == "" {
				err = badRequest("Schema error for portgroup: 'node_uuid' is a required property")
			}
			g.NodeUUID = u
		case "uuid":
			var u string
			if u, err = uuidArg("uuid", v); err == nil && u != "" {
				g.UUID = u
			}
		case "name":
			g.Name, err = optString("portgroup", k, v, 255)
		case "mode":
			g.Mode, err = optString("portgroup", k, v, 255)
		// null restores Ironic's default, true.
		case "standalone_ports_supported":
			g.StandalonePortsSupported = true
			if v != nil {
				g.StandalonePortsSupported, err = toBool(k, v)
			}
		case "extra":
			g.Extra, err = objectArg("portgroup", k, v)
		case "properties":
			g.Properties, err = objectArg("portgroup", k, v)
		default:
			err = badRequest("Schema error for portgroup: Additional properties are not allowed ('%s' was unexpected)", k)
		}
		if err != nil {
			return err
		}
	}
	// Ironic checks the values, not the keys: a null or empty mode or properties passes before 1.26.
	mode, _ := doc["mode"].(string)
	props, _ := doc["properties"].(map[string]any)
	if (mode != "" || len(props) > 0) && version < 26 {
		return notAcceptable()
	}
	return nil
}

// createPortgroup serves POST /v1/portgroups: node_uuid is required and must be a UUID (Ironic's validator),
// mode defaults to active-backup, standalone_ports_supported to true; a name must be a valid logical name.
func (s *Server) createPortgroup(w http.ResponseWriter, r *http.Request) {
	version := versionOf(r)
	var doc map[string]any
	if err := decodeBody(w, r, maxBody, &doc); err != nil {
		s.writeError(w, r, err)
		return
	}
	if _, ok := doc["node_uuid"]; !ok {
		s.writeError(w, r, badRequest("Schema error for portgroup: 'node_uuid' is a required property"))
		return
	}
	// Defaults first (a fresh UUID, standalone ports allowed); the body overrides them.
	g := &store.Portgroup{UUID: newUUID(), StandalonePortsSupported: true}
	g.Normalize()
	if err := applyPortgroupDoc(g, doc, version); err != nil {
		s.writeError(w, r, err)
		return
	}
	// Ironic fills mode from [DEFAULT]default_portgroup_mode when the body has none (also before 1.26, where the
	// field is hidden but stored).
	if g.Mode == "" {
		g.Mode = defaultPortgroupMode
	}
	if g.Name != "" && !validName(g.Name) {
		s.writeError(w, r, badRequest("Cannot create portgroup with invalid name '%s'", g.Name))
		return
	}
	n, err := s.getNodeOr404(r, g.NodeUUID)
	if err != nil {
		// The node is part of the body, not the path: Ironic answers a missing one with 400, not 404.
		s.writeError(w, r, badRequest("Node %s could not be found.", g.NodeUUID))
		return
	}
	// The engine creates it under the node's reservation; a busy node is a 409 the client may retry.
	if err := s.eng.CreatePortgroup(r.Context(), g); err != nil {
		s.writeError(w, r, lockedOr404(n.UUID, err))
		return
	}
	s.location(w, "portgroups/"+g.UUID)
	writeJSON(w, http.StatusCreated, s.renderPortgroup(g, version, nil))
}

// portgroupPatchable are the portgroup fields PATCH may change up to 1.95.
var portgroupPatchable = []string{"address", "extra", "mode", "name", "node_uuid", "properties",
	"standalone_ports_supported"}

// patchPortgroup serves PATCH /v1/portgroups/{pg}; the patch applies to the portgroup as read under its node's
// reservation. mode may change but not go away.
func (s *Server) patchPortgroup(w http.ResponseWriter, r *http.Request) {
	id := mux.Vars(r)["pg"]
	version := versionOf(r)
	ops, err := readPatch(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	// The gate is on the operations, not on the result: a pre-1.26 client must not touch fields it cannot see,
	// while its patch of other fields still carries the stored mode and properties.
	for _, op := range ops {
		root := splitPointer(op.Path)[0]
		if (root == "mode" || root == "properties") && version < 26 {
			s.writeError(w, r, notAcceptable())
			return
		}
	}
	// Resolve a name to the UUID first: the engine's update takes the UUID to find the node to reserve.
	cur, err := s.getPortgroupOr404(r, id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	g, err := s.eng.UpdatePortgroup(r.Context(), cur.UUID, func(g *store.Portgroup) error {
		doc := map[string]any{"address": strOrNil(g.Address), "extra": copyMap(g.Extra), "mode": g.Mode,
			"name": strOrNil(g.Name), "node_uuid": g.NodeUUID, "properties": copyMap(g.Properties),
			"standalone_ports_supported": g.StandalonePortsSupported}
		if err := applyPatch(doc, ops, portgroupPatchable); err != nil {
			return err
		}
		// A remove of /mode would leave a bond with no mode; Ironic refuses it rather than falling back to the default.
		if doc["mode"] == nil {
			return badRequest("'mode' is a mandatory attribute and can not be removed")
		}
		if name, _ := doc["name"].(string); name != "" && !validName(name) {
			return badRequest("Portgroup %s: Cannot change name to invalid name '%s'", id, name)
		}
		// The 1.26 gate was checked on the operations: the document holds mode and properties whatever the version.
		return applyPortgroupDoc(g, doc, MaxVersion)
	})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.renderPortgroup(g, version, nil))
}

// deletePortgroup serves DELETE /v1/portgroups/{pg}: refused (400, Ironic's PortgroupNotEmpty) while ports belong to it.
func (s *Server) deletePortgroup(w http.ResponseWriter, r *http.Request) {
	g, err := s.getPortgroupOr404(r, mux.Vars(r)["pg"])
	// The engine deletes under the node's reservation and refuses while ports still belong to the group.
	if err == nil {
		err = s.eng.DeletePortgroup(r.Context(), g.UUID)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
