package api

// Boot mode and secure boot (Ironic API 1.76): PUT /v1/nodes/{node}/states/boot_mode {"target": "uefi"|"bios"} and
// PUT /v1/nodes/{node}/states/secure_boot {"target": true|false}. Both answer 202 with a Location, as Ironic; the
// new values show in the node's boot_mode and secure_boot fields (1.75). The engine does the change under the
// node's reservation (engine/bootmode.go).

import (
	"encoding/json"
	"net/http"
	"net/url"

	"github.com/gorilla/mux"
)

// bootModeVersion is the microversion of the boot mode and secure boot endpoints.
const bootModeVersion = 76

// bootModeRoutes registers the two endpoints.
func (s *Server) bootModeRoutes(v *mux.Router) {
	v.HandleFunc("/nodes/{node}/states/boot_mode", s.putBootMode).Methods(http.MethodPut)
	v.HandleFunc("/nodes/{node}/states/secure_boot", s.putSecureBoot).Methods(http.MethodPut)
}

// bootModeGate checks the node exists, then the version, in Ironic's order (both 404).
func (s *Server) bootModeGate(r *http.Request, ident string) error {
	if _, err := s.getNodeOr404(r, ident); err != nil {
		return err
	}
	if versionOf(r) < bootModeVersion {
		return notFound("This endpoint is supported starting with the API version 1.%d", bootModeVersion)
	}
	return nil
}

// putBootMode switches the node's boot mode.
func (s *Server) putBootMode(w http.ResponseWriter, r *http.Request) {
	ident := mux.Vars(r)["node"]
	if err := s.bootModeGate(r, ident); err != nil {
		s.writeError(w, r, err)
		return
	}
	args, err := bodyArgs(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	// Anything but a string (missing, null, a number) is an invalid mode; the engine checks the value.
	target, ok := args["target"].(string)
	if !ok {
		s.writeError(w, r, badRequest("Invalid boot mode %s requested for node. Allowed boot modes are: bios, uefi",
			pyRepr(args["target"])))
		return
	}
	if err := s.eng.SetBootMode(r.Context(), ident, target); err != nil {
		s.writeError(w, r, lockedOr404(ident, err))
		return
	}
	s.location(w, "nodes/"+url.PathEscape(ident)+"/states")
	w.WriteHeader(http.StatusAccepted)
}

// putSecureBoot turns secure boot on or off; the target is a boolean (or "true"/"false", as Ironic's args.boolean).
func (s *Server) putSecureBoot(w http.ResponseWriter, r *http.Request) {
	ident := mux.Vars(r)["node"]
	if err := s.bootModeGate(r, ident); err != nil {
		s.writeError(w, r, err)
		return
	}
	args, err := bodyArgs(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	raw, ok := args["target"]
	var target bool
	if ok && raw != nil {
		target, err = toBool("target", raw)
	}
	if !ok || raw == nil || err != nil {
		s.writeError(w, r, badRequest("Invalid secure_boot %s requested for node. Allowed secure_boot states are: True, False)",
			pyRepr(raw)))
		return
	}
	if err := s.eng.SetSecureBoot(r.Context(), ident, target); err != nil {
		s.writeError(w, r, lockedOr404(ident, err))
		return
	}
	s.location(w, "nodes/"+url.PathEscape(ident)+"/states")
	w.WriteHeader(http.StatusAccepted)
}

// pyRepr spells a JSON value as Ironic's messages show it (None for a missing or null value).
func pyRepr(v any) string {
	switch x := v.(type) {
	case nil:
		return "None"
	case string:
		return x
	}
	b, _ := json.Marshal(v)
	return abbreviate(string(b))
}
