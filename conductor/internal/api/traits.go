package api

// Node traits (Ironic API 1.37): GET/PUT/DELETE /v1/nodes/{node}/traits and PUT/DELETE
// /v1/nodes/{node}/traits/{trait}. The handlers translate HTTP to the engine's trait methods, which write under the
// node's reservation; a node's traits also show in its "traits" field (nodefields.go).

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/gorilla/mux"

	"github.com/ferric-metal/ferric/conductor/internal/engine"
)

// traitsVersion is the microversion that introduced node traits.
const traitsVersion = 37

// traitsRoutes registers the node traits endpoints.
func (s *Server) traitsRoutes(v *mux.Router) {
	v.HandleFunc("/nodes/{node}/traits", s.getTraits).Methods(http.MethodGet)
	v.HandleFunc("/nodes/{node}/traits", s.putTraits).Methods(http.MethodPut)
	v.HandleFunc("/nodes/{node}/traits", s.deleteTraits).Methods(http.MethodDelete)
	v.HandleFunc("/nodes/{node}/traits/{trait}", s.putTrait).Methods(http.MethodPut)
	v.HandleFunc("/nodes/{node}/traits/{trait}", s.deleteTraits).Methods(http.MethodDelete)
}

// traitError gives engine errors of the traits calls Ironic's messages: an unknown node or trait is a 404.
func traitError(ident string, err error) error {
	var nf *engine.TraitNotFoundError
	if errors.As(err, &nf) {
		return notFound("%s", nf.Error())
	}
	return lockedOr404(ident, err)
}

// getTraits answers {"traits": [...]}, sorted. A read: no lock, so it may miss a change being written.
func (s *Server) getTraits(w http.ResponseWriter, r *http.Request) {
	if err := requireVersion(r, traitsVersion); err != nil {
		s.writeError(w, r, err)
		return
	}
	ident := mux.Vars(r)["node"]
	traits, err := s.eng.Traits(r.Context(), ident)
	if err != nil {
		s.writeError(w, r, traitError(ident, err))
		return
	}
	o := newOrdered()
	o.set("traits", traits)
	writeJSON(w, http.StatusOK, o)
}

// errTraitsUsage is Ironic's answer to a PUT that is neither form.
func errTraitsUsage() error {
	return badRequest("A single node trait may be added via PUT /v1/nodes/<node identifier>/traits/<trait> with no body, " +
		"or all node traits may be replaced via PUT /v1/nodes/<node identifier>/traits with the list of traits " +
		"specified in the request body.")
}

// putTraits replaces the node's traits with the body's {"traits": [...]}.
func (s *Server) putTraits(w http.ResponseWriter, r *http.Request) {
	if err := requireVersion(r, traitsVersion); err != nil {
		s.writeError(w, r, err)
		return
	}
	ident := mux.Vars(r)["node"]
	body, err := readBody(w, r, maxBody)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	// Ironic's two forms are exclusive: a list in the body here, one trait in the path there. A PUT with neither
	// is told both.
	if len(strings.TrimSpace(string(body))) == 0 {
		s.writeError(w, r, errTraitsUsage())
		return
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(body, &doc); err != nil {
		s.writeError(w, r, badRequest("Invalid JSON in request body: %v; send {\"traits\": [\"CUSTOM_...\", ...]}", err))
		return
	}
	// Ironic's schema has additionalProperties false: a typo such as "trait" is refused, not ignored.
	for k := range doc {
		if k != "traits" {
			s.writeError(w, r, badRequest("Schema error for body: Additional properties are not allowed ('%s' was unexpected)", k))
			return
		}
	}
	raw, ok := doc["traits"]
	if !ok {
		s.writeError(w, r, errTraitsUsage())
		return
	}
	// null is not an empty list: an empty list clears the traits, null is a mistake.
	var traits []string
	if err := json.Unmarshal(raw, &traits); err != nil || traits == nil {
		s.writeError(w, r, badRequest("Schema error for body: 'traits' must be a list of trait names, not %s", abbreviate(string(raw))))
		return
	}
	// The engine checks every name and the limit of 50 before it takes the node's lock; nothing changes on a refusal.
	if err := s.eng.SetTraits(r.Context(), ident, traits); err != nil {
		s.writeError(w, r, traitError(ident, err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// putTrait adds one trait; the request has no body (or an empty JSON one), as Ironic requires.
func (s *Server) putTrait(w http.ResponseWriter, r *http.Request) {
	if err := requireVersion(r, traitsVersion); err != nil {
		s.writeError(w, r, err)
		return
	}
	vars := mux.Vars(r)
	ident, trait := vars["node"], vars["trait"]
	body, err := readBody(w, r, maxBody)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	// Ironic refuses a body that carries something (it would be ignored otherwise), but lets an empty one through.
	if b := strings.TrimSpace(string(body)); b != "" {
		var v any
		if err := json.Unmarshal(body, &v); err != nil || !emptyJSON(v) {
			s.writeError(w, r, badRequest("No body should be provided when adding a trait"))
			return
		}
	}
	if err := s.eng.AddTrait(r.Context(), ident, trait); err != nil {
		s.writeError(w, r, traitError(ident, err))
		return
	}
	// Ironic sets Location for the single-trait form only, with the node as the client named it.
	s.location(w, "nodes/"+url.PathEscape(ident)+"/traits/"+url.PathEscape(trait))
	w.WriteHeader(http.StatusNoContent)
}

// emptyJSON reports a JSON value Python reads as false ({}, [], "", null, 0, false): Ironic accepts such a body.
func emptyJSON(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case map[string]any:
		return len(x) == 0
	case []any:
		return len(x) == 0
	case string:
		return x == ""
	case float64:
		return x == 0
	case bool:
		return !x
	}
	return false
}

// deleteTraits removes one trait (DELETE .../traits/{trait}) or all of them (DELETE .../traits).
func (s *Server) deleteTraits(w http.ResponseWriter, r *http.Request) {
	if err := requireVersion(r, traitsVersion); err != nil {
		s.writeError(w, r, err)
		return
	}
	vars := mux.Vars(r)
	ident := vars["node"]
	// One handler for both routes: the trait path variable exists only on the single-trait route. Removing a
	// trait the node lacks is a 404 (NodeTraitNotFound); removing all from a node without traits is not.
	var err error
	if trait, one := vars["trait"]; one {
		err = s.eng.RemoveTrait(r.Context(), ident, trait)
	} else {
		err = s.eng.RemoveAllTraits(r.Context(), ident)
	}
	if err != nil {
		s.writeError(w, r, traitError(ident, err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// traitsPatchError refuses a node PATCH that sets /traits, with Ironic's message pointing to the traits API (the
// generic "cannot patch" answer would not say where traits are set).
func traitsPatchError(ops []patchOp) error {
	for _, op := range ops {
		if op.Path == "/traits" && op.Op != "remove" {
			return badRequest("Cannot update node traits via node patch. Node traits should be updated via the node traits API.")
		}
	}
	return nil
}
