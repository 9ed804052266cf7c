package api

// Allocations (API 1.52; PATCH 1.57, backfill with "node" 1.58, owner 1.60): /v1/allocations and
// /v1/nodes/{node}/allocation. Handlers translate HTTP to engine calls; every write goes through the engine,
// which binds and frees nodes under their reservation.

import (
	"errors"
	"net/http"
	"regexp"
	"strings"

	"github.com/gorilla/mux"

	"github.com/ferric-metal/ferric/conductor/internal/engine"
	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// Microversions of the allocation API (Ironic's versions.py).
const (
	// verAllocations: the resource and its reads, create and delete.
	verAllocations = 52
	// verAllocationUpdate: PATCH of name and extra.
	verAllocationUpdate = 57
	// verAllocationFill: "node" in a create body, to record an allocation for an already deployed node.
	verAllocationFill = 58
	// verAllocationOwner: the owner field and filter.
	verAllocationOwner = 60
)

// allocationsRoutes registers the allocation endpoints.
func (s *Server) allocationsRoutes(v *mux.Router) {
	for _, p := range []string{"/allocations", "/allocations/"} {
		// The version gates are in the handlers, not here: reads and writes of an older version fail differently.
		v.HandleFunc(p, s.listAllocations).Methods(http.MethodGet)
		v.HandleFunc(p, s.createAllocation).Methods(http.MethodPost)
	}
	v.HandleFunc("/allocations/{allocation}", s.getAllocation).Methods(http.MethodGet)
	v.HandleFunc("/allocations/{allocation}", s.patchAllocation).Methods(http.MethodPatch)
	v.HandleFunc("/allocations/{allocation}", s.deleteAllocation).Methods(http.MethodDelete)
	v.HandleFunc("/nodes/{node}/allocation", s.getNodeAllocation).Methods(http.MethodGet)
	v.HandleFunc("/nodes/{node}/allocation", s.deleteNodeAllocation).Methods(http.MethodDelete)
}

// requireWriteVersion answers 405 for writes older than min: Ironic refuses allocation writes of older versions
// with HTTPMethodNotAllowed, while reads answer 404 (requireVersion).
func requireWriteVersion(r *http.Request, min int, msg string) error {
	if versionOf(r) < min {
		return &httpError{http.StatusMethodNotAllowed, msg}
	}
	return nil
}

// allocationFieldNames lists the fields in Ironic's output order; owner only from 1.60.
func allocationFieldNames(version int) []string {
	f := []string{"uuid", "created_at", "updated_at", "candidate_nodes", "extra", "last_error", "name"}
	if version >= verAllocationOwner {
		f = append(f, "owner")
	}
	return append(f, "resource_class", "state", "traits", "links", "node_uuid")
}

// allocationFieldSet parses ?fields=: nil for all; unknown names are 400, owner before 1.60 is 406. Links are
// always shown, as Ironic's sanitize_dict keeps them.
func allocationFieldSet(raw string, version int) ([]string, error) {
	if raw == "" {
		return nil, nil
	}
	// owner is known at every version so that asking for it early is a 406 (too new) rather than a 400 (unknown).
	known := map[string]bool{"owner": true}
	for _, f := range allocationFieldNames(version) {
		known[f] = true
	}
	var out []string
	for _, f := range strings.Split(raw, ",") {
		if !known[f] {
			return nil, badRequest("Field(s) \"%s\" are not valid", f)
		}
		if f == "owner" && version < verAllocationOwner {
			return nil, errNotAcceptable
		}
		// links is appended once below whatever was asked, so a fields= naming it does not list it twice.
		if f != "links" {
			out = append(out, f)
		}
	}
	return append(out, "links"), nil
}

// renderAllocation shows an allocation as Ironic does: every field of the version (null when unset, {} and []
// for empty extra, traits and candidate nodes), or only the fields asked plus links.
func (s *Server) renderAllocation(a *store.Allocation, version int, fields []string) *ordered {
	val := map[string]any{
		"uuid": a.UUID, "created_at": isoTime(a.CreatedAt), "updated_at": timeOrNil(a.UpdatedAt),
		"candidate_nodes": a.CandidateNodes, "extra": a.Extra, "last_error": strOrNil(a.LastError),
		"name": strOrNil(a.Name), "owner": strOrNil(a.Owner), "resource_class": strOrNil(a.ResourceClass),
		"state": a.State, "traits": a.Traits, "links": links(s.cfg.PublicURL, "allocations", a.UUID, ""),
		"node_uuid": strOrNil(a.NodeUUID),
	}
	// Walk the version's field list, so a field newer than the request never shows even when fields= names it.
	keep := map[string]bool{}
	for _, f := range fields {
		keep[f] = true
	}
	o := newOrdered()
	for _, f := range allocationFieldNames(version) {
		if fields == nil || keep[f] {
			o.set(f, val[f])
		}
	}
	return o
}

// allocationOr404 maps a missing allocation to Ironic's message.
func allocationOr404(err error, ident string) error {
	if errors.Is(err, store.ErrNotFound) {
		return notFound("Allocation %s could not be found.", ident)
	}
	return err
}

// listAllocations is GET /v1/allocations (1.52): filters node (name or UUID; an unknown one is a 400, as Ironic),
// resource_class, state and owner (1.60), with limit/marker/sort_key/sort_dir/fields and a next link on a full
// page. There is no detail form: the list shows whole allocations, as Ironic's does.
func (s *Server) listAllocations(w http.ResponseWriter, r *http.Request) {
	if err := s.doListAllocations(w, r); err != nil {
		s.writeError(w, r, err)
	}
}

// doListAllocations answers the list or returns the error to write.
func (s *Server) doListAllocations(w http.ResponseWriter, r *http.Request) error {
	if err := requireVersion(r, verAllocations); err != nil {
		return err
	}
	version, q := versionOf(r), r.URL.Query()
	// Unknown parameters are refused, so a misspelt filter cannot return every allocation.
	for k := range q {
		switch k {
		case "node", "resource_class", "state", "owner", "fields", "limit", "marker", "sort_key", "sort_dir":
		default:
			return badRequest("Unknown query parameter %q", k)
		}
	}
	// The next link repeats every filter; limit and marker are set for the next page.
	lq := &listQuery{passOn: cloneWithout(q, "limit", "marker")}
	// Ironic's invalid_sort_key_list comes first, with its own message; other unknown keys get parsePaging's.
	switch k := q.Get("sort_key"); k {
	case "extra", "candidate_nodes", "traits":
		return badRequest("The sort_key value %s is an invalid field for sorting", k)
	}
	if err := parsePaging(q, lq, store.AllocationSortKeys()); err != nil {
		return err
	}
	fields, err := allocationFieldSet(q.Get("fields"), version)
	if err != nil {
		return err
	}
	var f store.AllocationFilter
	if q.Has("owner") {
		if version < verAllocationOwner {
			return errNotAcceptable
		}
		f.Owner = q.Get("owner")
	}
	// Plain equality filters: an unknown state or class matches nothing and gives an empty list.
	f.ResourceClass, f.State = q.Get("resource_class"), q.Get("state")
	if ident := q.Get("node"); ident != "" {
		// The node filter is resolved to a UUID first (it may be a name); a missing node is Ironic's 400, since the
		// query is about allocations.
		n, err := s.eng.Store().GetNode(r.Context(), ident)
		if errors.Is(err, store.ErrNotFound) {
			return badRequest("Node %s could not be found.", ident)
		}
		if err != nil {
			return err
		}
		f.NodeUUID = n.UUID
	}
	list, err := s.eng.Store().ListAllocations(r.Context(), f, lq.opts)
	if err != nil {
		return err
	}
	items, n, last := s.recs.allocs.page(list, version, fields)
	s.writeList(w, "allocations", false, lq, items, n, last)
	return nil
}

// getAllocation is GET /v1/allocations/{uuid or name} (1.52).
func (s *Server) getAllocation(w http.ResponseWriter, r *http.Request) {
	if err := requireVersion(r, verAllocations); err != nil {
		s.writeError(w, r, err)
		return
	}
	ident := mux.Vars(r)["allocation"]
	fields, err := allocationFieldSet(r.URL.Query().Get("fields"), versionOf(r))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	a, err := s.eng.Store().GetAllocation(r.Context(), ident)
	if err != nil {
		s.writeError(w, r, allocationOr404(err, ident))
		return
	}
	writeJSON(w, http.StatusOK, s.renderAllocation(a, versionOf(r), fields))
}

// customTrait and standardTrait are the trait name rules: CUSTOM_ names as Ironic's pattern, and the shape of
// os-traits' standard names (Ferric does not carry their list).
var (
	customTrait   = regexp.MustCompile(`^CUSTOM_[A-Z0-9_]+$`)
	standardTrait = regexp.MustCompile(`^[A-Z][A-Z0-9_]*$`)
)

// stringList reads a JSON array of strings (null = empty) for field k.
func stringList(k string, v any) ([]string, error) {
	// null is read as an empty list so a create with "traits": null behaves as one without traits.
	if v == nil {
		return []string{}, nil
	}
	arr, ok := v.([]any)
	if !ok {
		return nil, badRequest("Schema error for allocation: %v is not of type 'array' (field %s)", v, k)
	}
	out := make([]string, 0, len(arr))
	for _, x := range arr {
		str, ok := x.(string)
		if !ok {
			return nil, badRequest("Schema error for allocation: %v is not of type 'string' (field %s)", x, k)
		}
		out = append(out, str)
	}
	return out, nil
}

// applyAllocationDoc sets the fields of a creation body on a; node is the backfill target ("" for none).
func applyAllocationDoc(a *store.Allocation, doc map[string]any, version int) (node string, err error) {
	for k, v := range doc {
		switch k {
		case "candidate_nodes", "traits":
			list, err := stringList(k, v)
			if err != nil {
				return "", err
			}
			// Candidates are node names or UUIDs; the engine resolves them (and refuses unknown ones), not the handler.
			if k == "candidate_nodes" {
				a.CandidateNodes = list
				continue
			}
			for _, t := range list {
				// Traits are matched against nodes' traits later; a malformed one could never match, so refuse it now.
				if len(t) > 255 || !(customTrait.MatchString(t) || standardTrait.MatchString(t)) {
					return "", badRequest("Schema error for allocation: trait %q is not valid: use CUSTOM_ followed by "+
						"A-Z, 0-9 or _, or a standard trait name (at most 255 characters)", t)
				}
			}
			a.Traits = list
		case "extra":
			m, ok := v.(map[string]any)
			if v != nil && !ok {
				return "", badRequest("Schema error for allocation: %v is not of type 'object' (field extra)", v)
			}
			a.Extra = m
		case "name", "node", "owner", "resource_class", "uuid":
			str, err := optString("allocation", k, v, 0)
			if err != nil {
				return "", err
			}
			switch k {
			case "name":
				if str != "" && !validName(str) {
					return "", badRequest("Cannot create allocation with invalid name '%s'", str)
				}
				a.Name = str
			case "node":
				// Backfilling: bind this (active) node rather than match one.
				if str != "" && version < verAllocationFill {
					return "", badRequest("Cannot set node when creating an allocation in this API version")
				}
				node = str
			case "owner":
				if version < verAllocationOwner {
					return "", errNotAcceptable
				}
				a.Owner = str
			case "resource_class":
				// 80 is the width of Ironic's resource_class column.
				if len(str) > 80 {
					return "", badRequest("Schema error for allocation: resource_class is longer than 80 characters")
				}
				a.ResourceClass = str
			case "uuid":
				if str != "" && !isUUID(str) {
					return "", badRequest("Schema error for allocation: uuid %q is not a UUID", str)
				}
				// Stored lower-case so lookups match whatever case the client used.
				a.UUID = strings.ToLower(str)
			}
		default:
			return "", badRequest("Schema error for allocation: Additional properties are not allowed ('%s' was unexpected)", k)
		}
	}
	return node, nil
}

// createAllocation is POST /v1/allocations (1.52): the body is checked here (schema, name, traits, version of
// node and owner), the rest (candidates, backfill, matching) by the engine. A failed match is still a 201 with
// the allocation in state error, as Ironic answers; a refused backfill is an error answer.
func (s *Server) createAllocation(w http.ResponseWriter, r *http.Request) {
	if err := requireWriteVersion(r, verAllocations, "The API version does not allow allocations"); err != nil {
		s.writeError(w, r, err)
		return
	}
	var doc map[string]any
	if err := decodeBody(w, r, maxBody, &doc); err != nil {
		s.writeError(w, r, err)
		return
	}
	// uuid "" lets the engine choose: the node's instance_uuid when backfilling, a new one otherwise.
	a := &store.Allocation{}
	node, err := applyAllocationDoc(a, doc, versionOf(r))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	// Matching needs a resource class; a backfill names its node, and the engine takes the class from it.
	if a.ResourceClass == "" && node == "" {
		s.writeError(w, r, badRequest("The resource_class field is mandatory when not backfilling"))
		return
	}
	// The engine matches or backfills under the chosen node's reservation and returns the allocation as stored.
	out, err := s.eng.CreateAllocation(r.Context(), a, node)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.location(w, "allocations/"+out.UUID)
	writeJSON(w, http.StatusCreated, s.renderAllocation(out, versionOf(r), nil))
}

// patchAllocation is PATCH /v1/allocations/{ident} (1.57): only name and extra may change; everything else,
// the node binding included, is fixed for the allocation's life.
func (s *Server) patchAllocation(w http.ResponseWriter, r *http.Request) {
	if err := requireWriteVersion(r, verAllocationUpdate, "The API version does not allow updating allocations"); err != nil {
		s.writeError(w, r, err)
		return
	}
	ident := mux.Vars(r)["allocation"]
	ops, err := readPatch(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	a, err := s.eng.UpdateAllocation(r.Context(), ident, func(a *store.Allocation) error {
		// The patch applies to the allocation as stored; unset fields are null so "add" and "remove" work on them.
		doc := map[string]any{"name": strOrNil(a.Name), "extra": copyMap(a.Extra)}
		if err := applyPatch(doc, ops, []string{"name", "extra"}); err != nil {
			return err
		}
		// The patched document is re-checked as a create body would be, so a patch cannot store what a create refuses.
		name, err := optString("allocation", "name", doc["name"], 0)
		if err != nil {
			return err
		}
		if name != "" && !validName(name) {
			return badRequest("Cannot update allocation with invalid name '%s'", name)
		}
		extra, ok := doc["extra"].(map[string]any)
		if doc["extra"] != nil && !ok {
			return badRequest("Schema error for allocation: %v is not of type 'object' (field extra)", doc["extra"])
		}
		a.Name, a.Extra = name, extra
		return nil
	})
	if err != nil {
		s.writeError(w, r, allocationOr404(err, ident))
		return
	}
	writeJSON(w, http.StatusOK, s.renderAllocation(a, versionOf(r), nil))
}

// deleteAllocation is DELETE /v1/allocations/{ident} (1.52): the engine frees the node it holds, or refuses (409)
// while that node is active or in a transition, unless in maintenance.
func (s *Server) deleteAllocation(w http.ResponseWriter, r *http.Request) {
	if err := requireWriteVersion(r, verAllocations, "The API version does not allow allocations"); err != nil {
		s.writeError(w, r, err)
		return
	}
	ident := mux.Vars(r)["allocation"]
	if err := s.eng.DeleteAllocation(r.Context(), ident); err != nil {
		s.writeError(w, r, allocationOr404(err, ident))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// nodeAllocation resolves /v1/nodes/{node}/allocation: 404 before 1.52, for an unknown node and for a node
// without an allocation (with Ironic's messages).
func (s *Server) nodeAllocation(r *http.Request) (*store.Allocation, error) {
	if err := requireVersion(r, verAllocations); err != nil {
		return nil, err
	}
	ident := mux.Vars(r)["node"]
	// An unknown node is Ironic's NodeNotFound (404) before anything about its allocation is said.
	if _, err := s.getNodeOr404(r, ident); err != nil {
		return nil, err
	}
	a, err := s.eng.NodeAllocation(r.Context(), ident)
	if errors.Is(err, engine.ErrNotFoundAllocation) {
		return nil, notFound("Allocation for node %s was not found", ident)
	}
	return a, err
}

// getNodeAllocation is GET /v1/nodes/{node}/allocation (1.52).
func (s *Server) getNodeAllocation(w http.ResponseWriter, r *http.Request) {
	a, err := s.nodeAllocation(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	fields, err := allocationFieldSet(r.URL.Query().Get("fields"), versionOf(r))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.renderAllocation(a, versionOf(r), fields))
}

// deleteNodeAllocation is DELETE /v1/nodes/{node}/allocation (1.52), with the same rules as deleteAllocation.
func (s *Server) deleteNodeAllocation(w http.ResponseWriter, r *http.Request) {
	a, err := s.nodeAllocation(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	// Delete by the allocation's UUID (not the node): the engine reads that allocation again, reserves its
	// node, and applies the same state rules as DELETE /v1/allocations/{ident}.
	if err := s.eng.DeleteAllocation(r.Context(), a.UUID); err != nil {
		s.writeError(w, r, allocationOr404(err, a.UUID))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
