package api

// PUT /v1/nodes/{node}/management/inject_nmi (Ironic API 1.29): 204 once the management interface injected the
// interrupt; older versions 404 (Ironic's NotFound, after nothing else is looked at).

import (
	"net/http"

	"github.com/gorilla/mux"
)

// injectNMIVersion is the microversion of the inject_nmi endpoint.
const injectNMIVersion = 29

// putInjectNMI injects a non-maskable interrupt into the node.
func (s *Server) putInjectNMI(w http.ResponseWriter, r *http.Request) {
	ident := mux.Vars(r)["node"]
	if versionOf(r) < injectNMIVersion {
		s.writeError(w, r, notFound("The resource could not be found."))
		return
	}
	if err := s.eng.InjectNMI(r.Context(), ident); err != nil {
		s.writeError(w, r, lockedOr404(ident, err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
