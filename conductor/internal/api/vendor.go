package api

// Node vendor passthru (every microversion, as Ironic): GET /v1/nodes/{node}/vendor_passthru/methods describes the
// methods of the node's vendor interface; GET/POST/PUT/PATCH/DELETE /v1/nodes/{node}/vendor_passthru?method=NAME
// (or .../vendor_passthru/NAME) calls one with the JSON body as its arguments. Synchronous methods answer 200 with their return value as JSON,
// asynchronous ones 202 with no body (Ironic's PassthruResponse). The engine checks the method and the verb.

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/gorilla/mux"
)

// vendorRoutes registers the vendor passthru endpoints.
func (s *Server) vendorRoutes(v *mux.Router) {
	v.HandleFunc("/nodes/{node}/vendor_passthru/methods", s.vendorMethods).Methods(http.MethodGet)
	verbs := []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}
	v.HandleFunc("/nodes/{node}/vendor_passthru", s.vendorPassthru).Methods(verbs...)
	// The method may also be the last path segment, as Ironic's routing allows and the baremetal CLI sends it
	// (registered after .../methods, which wins for GET).
	v.HandleFunc("/nodes/{node}/vendor_passthru/{method}", s.vendorPassthru).Methods(verbs...)
}

// vendorMethods answers {method: {http_methods, async, description, attach, require_exclusive_lock}}.
func (s *Server) vendorMethods(w http.ResponseWriter, r *http.Request) {
	ident := mux.Vars(r)["node"]
	m, err := s.eng.VendorMethods(r.Context(), ident)
	if err != nil {
		s.writeError(w, r, lockedOr404(ident, err))
		return
	}
	writeJSON(w, http.StatusOK, m)
}

// vendorPassthru calls ?method= with the body's object as arguments (none for an empty body).
func (s *Server) vendorPassthru(w http.ResponseWriter, r *http.Request) {
	ident := mux.Vars(r)["node"]
	method := mux.Vars(r)["method"]
	if method == "" {
		method = r.URL.Query().Get("method")
	}
	if method == "" {
		s.writeError(w, r, badRequest("Method not specified; name it in ?method=, see GET /v1/nodes/%s/vendor_passthru/methods", ident))
		return
	}
	body, err := readBody(w, r, maxBody)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	data := map[string]any{}
	if len(strings.TrimSpace(string(body))) > 0 {
		if err := json.Unmarshal(body, &data); err != nil || data == nil {
			s.writeError(w, r, badRequest("Invalid JSON in request body: the arguments of a vendor method are a JSON object"))
			return
		}
	}
	res, err := s.eng.VendorPassthru(r.Context(), ident, method, r.Method, data)
	if err != nil {
		s.writeError(w, r, lockedOr404(ident, err))
		return
	}
	if res.Async {
		w.WriteHeader(http.StatusAccepted)
		return
	}
	writeJSON(w, http.StatusOK, res.Return)
}
