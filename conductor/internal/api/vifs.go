package api

// A node's VIFs (API 1.28): GET/POST /v1/nodes/{node}/vifs, DELETE /v1/nodes/{node}/vifs/{vif}. The engine
// records them on the node's ports and portgroups (see engine/vifs.go).

import (
	"net/http"

	"github.com/gorilla/mux"

	"github.com/ferric-metal/ferric/conductor/internal/engine"
)

// vifsRoutes registers the VIF endpoints; portgroupsRoutes calls it (one registration line in api.go per slice).
func (s *Server) vifsRoutes(v *mux.Router) {
	v.HandleFunc("/nodes/{node}/vifs", s.since(28, s.listVIFs)).Methods(http.MethodGet)
	v.HandleFunc("/nodes/{node}/vifs", s.since(28, s.attachVIF)).Methods(http.MethodPost)
	v.HandleFunc("/nodes/{node}/vifs/{vif}", s.since(28, s.detachVIF)).Methods(http.MethodDelete)
}

// vifIdent checks a VIF ID as Ironic's args.uuid_or_name.
func vifIdent(name, id string) error {
	if !isUUID(id) && (!validName(id) || id == "" || len(id) > 255) {
		return badRequest("Expected UUID or name for %s: %s", name, id)
	}
	return nil
}

// listVIFs serves GET /v1/nodes/{node}/vifs as {"vifs": [{"id": ...}]}.
func (s *Server) listVIFs(w http.ResponseWriter, r *http.Request) {
	ident := mux.Vars(r)["node"]
	ids, err := s.eng.VIFs(r.Context(), ident)
	if err != nil {
		s.writeError(w, r, lockedOr404(ident, err))
		return
	}
	vifs := make([]any, 0, len(ids))
	for _, id := range ids {
		vifs = append(vifs, map[string]any{"id": id})
	}
	writeJSON(w, http.StatusOK, map[string]any{"vifs": vifs})
}

// attachVIF serves POST /v1/nodes/{node}/vifs (204). The node must exist (404); the engine picks the port or
// portgroup and refuses with Ironic's 409 (already attached) or 400 (no free port).
func (s *Server) attachVIF(w http.ResponseWriter, r *http.Request) {
	ident := mux.Vars(r)["node"]
	var doc map[string]any
	if err := decodeBody(w, r, maxBody, &doc); err != nil {
		s.writeError(w, r, err)
		return
	}
	req, err := vifRequest(doc, versionOf(r))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if _, err := s.getNodeOr404(r, ident); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.eng.AttachVIF(r.Context(), ident, req); err != nil {
		s.writeError(w, r, lockedOr404(ident, err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// vifRequest checks a VIF attach body (Ironic's VIF_VALIDATOR: an "id", other keys allowed): port_uuid and
// portgroup_uuid pick the port-like object, and from 1.67 they may not both be given.
func vifRequest(doc map[string]any, version int) (engine.VIFRequest, error) {
	var req engine.VIFRequest
	raw, ok := doc["id"]
	if !ok {
		return req, badRequest("Schema error for vif: 'id' is a required property")
	}
	id, ok := raw.(string)
	if !ok {
		return req, badRequest("Schema error for vif: %v is not of type 'string'", raw)
	}
	if err := vifIdent("id", id); err != nil {
		return req, err
	}
	req.ID = id
	_, hasPort := doc["port_uuid"]
	_, hasGroup := doc["portgroup_uuid"]
	if hasPort && hasGroup && version >= 67 {
		return req, badRequest("Cannot specify both port_uuid and portgroup_uuid")
	}
	req.PortUUID, _ = doc["port_uuid"].(string)
	req.PortgroupUUID, _ = doc["portgroup_uuid"].(string)
	if hasPort && hasGroup {
		req.PortgroupUUID = "" // Ironic's driver takes port_uuid first
	}
	return req, nil
}

// detachVIF serves DELETE /v1/nodes/{node}/vifs/{vif} (204; 400 when the VIF is not attached to the node).
func (s *Server) detachVIF(w http.ResponseWriter, r *http.Request) {
	ident, id := mux.Vars(r)["node"], mux.Vars(r)["vif"]
	if err := vifIdent("vif_id", id); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.eng.DetachVIF(r.Context(), ident, id); err != nil {
		s.writeError(w, r, lockedOr404(ident, err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
