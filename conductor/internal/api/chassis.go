package api

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/gorilla/mux"

	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// Chassis (Ironic's /v1/chassis, every microversion): CRUD, /detail, and the nodes of a chassis. Ironic's wire
// rules kept here: UUIDs only (no names), fields= from 1.8 (406 before, as Ironic), detail= from 1.43, a list
// shows uuid and description unless detailed, fields= keeps the asked fields plus links, and a chassis that
// still holds nodes is not deleted (400). A PATCH may change description and extra; Ironic's /uuid is refused.

// chassisFieldNames are the chassis fields in Ironic's output order.
func chassisFieldNames() []string {
	return []string{"uuid", "created_at", "updated_at", "description", "extra", "links", "nodes"}
}

// chassisDescriptionMax is Ironic's maxLength for a chassis description.
const chassisDescriptionMax = 255

// chassisRoutes registers the chassis endpoints on the v1 router.
// The fixed paths (/chassis/detail) come before /chassis/{chassis}: gorilla/mux tries routes in order.
func (s *Server) chassisRoutes(v *mux.Router) {
	for _, p := range []string{"/chassis", "/chassis/"} {
		// Both spellings of the collection answer directly (the router does not redirect trailing slashes).
		v.HandleFunc(p, s.listChassis).Methods(http.MethodGet)
		v.HandleFunc(p, s.createChassis).Methods(http.MethodPost)
	}
	v.HandleFunc("/chassis/detail", s.listChassisDetail).Methods(http.MethodGet)
	v.HandleFunc("/chassis/{chassis}", s.getChassis).Methods(http.MethodGet)
	v.HandleFunc("/chassis/{chassis}", s.patchChassis).Methods(http.MethodPatch)
	v.HandleFunc("/chassis/{chassis}", s.deleteChassis).Methods(http.MethodDelete)
	v.HandleFunc("/chassis/{chassis}/nodes", s.listChassisNodes).Methods(http.MethodGet)
	v.HandleFunc("/chassis/{chassis}/nodes/detail", s.listChassisNodesDetail).Methods(http.MethodGet)
}

// renderChassis renders a chassis; fields nil means every field, otherwise the asked ones plus links, in
// Ironic's order.
func (s *Server) renderChassis(c *store.Chassis, fields []string) *ordered {
	base := s.cfg.PublicURL
	val := map[string]any{"uuid": c.UUID, "created_at": isoTime(c.CreatedAt), "updated_at": timeOrNil(c.UpdatedAt),
		"description": strOrNil(c.Description), "extra": c.Extra, "links": links(base, "chassis", c.UUID, ""),
		"nodes": links(base, "chassis", c.UUID, "nodes")}
	// Ironic's sanitize_dict keeps links whatever fields= asks, and nothing else unasked (not even uuid).
	want := map[string]bool{"links": true}
	for _, f := range fields {
		want[f] = true
	}
	// Walk the fixed name list, not the map, so keys come out in Ironic's order whatever fields= listed.
	o := newOrdered()
	for _, f := range chassisFieldNames() {
		if fields == nil || want[f] {
			o.set(f, val[f])
		}
	}
	return o
}

// chassisFieldSet checks fields= (Ironic: 406 before 1.8, 400 for an unknown field); "" means nil.
func chassisFieldSet(raw string, version int) ([]string, error) {
	if raw == "" {
		return nil, nil
	}
	// fields= arrived in 1.8; an older client asking for it gets Ironic's 406, not a silently full body.
	if version < 8 {
		return nil, errNotAcceptable
	}
	known := map[string]bool{}
	for _, f := range chassisFieldNames() {
		known[f] = true
	}
	// Ironic names every unknown field in one message, comma separated.
	var out, bad []string
	for _, f := range strings.Split(raw, ",") {
		f = strings.TrimSpace(f)
		// Collect rather than stop at the first unknown field, so the 400 lists them all.
		if !known[f] {
			bad = append(bad, f)
		}
		out = append(out, f)
	}
	if len(bad) > 0 {
		return nil, badRequest("Field(s) \"%s\" are not valid", strings.Join(bad, ", "))
	}
	return out, nil
}

// parseChassisQuery reads a chassis list request. /detail takes paging only, as Ironic's schema says.
func parseChassisQuery(q url.Values, version int, detailPath bool) (*listQuery, error) {
	allowed := map[string]bool{"limit": true, "marker": true, "sort_key": true, "sort_dir": true}
	// /detail already means every field, so Ironic's schema for it has no fields= or detail=.
	if !detailPath {
		allowed["fields"], allowed["detail"] = true, true
	}
	for k := range q {
		// An unknown parameter is a 400 rather than ignored: a misspelt filter must not return the whole list.
		if !allowed[k] {
			return nil, badRequest("Unknown query parameter %q", k)
		}
	}
	// passOn collects what the next link repeats (sort, fields, detail); parsePaging adds sort_key/sort_dir.
	lq := &listQuery{detail: detailPath, passOn: url.Values{}}
	if err := parsePaging(q, lq, store.ChassisSortKeys()); err != nil {
		return nil, err
	}
	// Ironic checks the version whenever detail= is present, even detail=false.
	if q.Has("detail") {
		d := q.Get("detail")
		if version < 43 {
			// Ironic answers 400 here, not the 406 fields= gets below 1.8.
			return nil, badRequest("Invalid query parameter ?detail=%s received.", d)
		}
		b, err := toBool("detail", d)
		if err != nil {
			return nil, err
		}
		lq.detail = b
		lq.passOn.Set("detail", d)
	}
	fields, err := chassisFieldSet(q.Get("fields"), version)
	if err != nil {
		return nil, err
	}
	if fields != nil {
		// The two ask for different shapes; Ironic refuses the pair instead of picking one.
		if lq.detail {
			return nil, badRequest("Can not specify ?detail=True and fields in the same request.")
		}
		lq.fields = fields
		lq.passOn.Set("fields", q.Get("fields"))
	}
	// Ironic's DEFAULT_RETURN_FIELDS for a chassis list (links come with every rendering).
	if lq.fields == nil && !lq.detail {
		lq.fields = []string{"uuid", "description"}
	}
	return lq, nil
}

// listChassis serves GET /v1/chassis: uuid and description per chassis unless detail= or fields= say otherwise.
func (s *Server) listChassis(w http.ResponseWriter, r *http.Request) { s.doListChassis(w, r, false) }

// listChassisDetail serves GET /v1/chassis/detail: every field, paging parameters only.
func (s *Server) listChassisDetail(w http.ResponseWriter, r *http.Request) {
	s.doListChassis(w, r, true)
}

// doListChassis serves both list paths; detailPath selects /detail's stricter query schema and full rendering.
func (s *Server) doListChassis(w http.ResponseWriter, r *http.Request, detailPath bool) {
	lq, err := parseChassisQuery(r.URL.Query(), versionOf(r), detailPath)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	list, err := s.eng.ListChassis(r.Context(), lq.opts)
	if err != nil {
		// The only lookup that can miss is the marker's: Ironic answers it with ChassisNotFound (404).
		s.writeError(w, r, chassisOr404(lq.opts.Marker, err))
		return
	}
	items, n, last := s.recs.chassis.page(list, versionOf(r), lq.fields)
	s.writeList(w, "chassis", detailPath, lq, items, n, last)
}

// chassisOr404 gives a missing chassis Ironic's ChassisNotFound message.
func chassisOr404(uuid string, err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return notFound("Chassis %s could not be found.", uuid)
	}
	return err
}

// chassisIdent reads {chassis}: Ironic names chassis by UUID only.
func chassisIdent(r *http.Request) (string, error) {
	id := mux.Vars(r)["chassis"]
	// Checked before any lookup: a name here can never match, and Ironic says so with a 400 rather than a 404.
	if !isUUID(id) {
		return "", badRequest("Expected UUID for chassis_uuid: %s", id)
	}
	return id, nil
}

// getChassis serves GET /v1/chassis/{uuid}, honouring fields= (from 1.8); an unknown UUID is a 404.
func (s *Server) getChassis(w http.ResponseWriter, r *http.Request) {
	id, err := chassisIdent(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	q := r.URL.Query()
	for k := range q {
		// A single-resource GET takes fields= only; anything else is a 400 so a mistaken filter is noticed.
		if k != "fields" {
			s.writeError(w, r, badRequest("Unknown query parameter %q", k))
			return
		}
	}
	fields, err := chassisFieldSet(q.Get("fields"), versionOf(r))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	c, err := s.eng.Chassis(r.Context(), id)
	if err != nil {
		s.writeError(w, r, chassisOr404(id, err))
		return
	}
	writeJSON(w, http.StatusOK, s.renderChassis(c, fields))
}

// applyChassisDoc writes the settable fields of a create body or patched document onto c (Ironic's schema:
// description a string or null of at most 255 characters, extra an object or null).
func applyChassisDoc(c *store.Chassis, doc map[string]any) error {
	for k, v := range doc {
		switch k {
		// A client may choose the UUID on create (Ironic allows it); null means "generate one".
		case "uuid":
			u, ok := v.(string)
			if v != nil && (!ok || !isUUID(u)) {
				return badRequest("Expected UUID for uuid: %v", v)
			}
			if ok {
				c.UUID = u
			}
		case "description":
			// Ferric keeps null and "" alike (no description), both rendered null; Ironic would echo "" back.
			d, ok := v.(string)
			if v != nil && !ok {
				return badRequest("Schema error for chassis: %s: %v is not of type 'string', 'null'", k, v)
			}
			if len([]rune(d)) > chassisDescriptionMax {
				return badRequest("Schema error for chassis: description: '%s' is too long (at most %d characters)",
					abbreviate(d), chassisDescriptionMax)
			}
			c.Description = d
		case "extra":
			m, ok := v.(map[string]any)
			if v != nil && !ok {
				return badRequest("Schema error for chassis: extra: %v is not of type 'object', 'null'", v)
			}
			// null clears extra; store an empty object so it renders as {} like Ironic, never null.
			if m == nil {
				m = map[string]any{}
			}
			c.Extra = m
		// Ironic's schema has additionalProperties false: an unknown key (e.g. a misspelt field) is refused, not dropped.
		default:
			return badRequest("Schema error for chassis: Additional properties are not allowed ('%s' was unexpected)", k)
		}
	}
	return nil
}

// createChassis serves POST /v1/chassis: 201 with Location and the full chassis; 409 if the UUID is taken.
func (s *Server) createChassis(w http.ResponseWriter, r *http.Request) {
	var doc map[string]any
	if err := decodeBody(w, r, maxBody, &doc); err != nil {
		s.writeError(w, r, err)
		return
	}
	c := &store.Chassis{}
	if err := applyChassisDoc(c, doc); err != nil {
		s.writeError(w, r, err)
		return
	}
	if c.UUID == "" {
		c.UUID = newUUID()
	}
	if err := s.eng.CreateChassis(r.Context(), c); err != nil {
		if errors.Is(err, store.ErrDuplicate) {
			// The only unique column is the UUID, so name it in Ironic's ChassisAlreadyExists wording.
			err = conflict("A chassis with UUID %s already exists.", c.UUID)
		}
		s.writeError(w, r, err)
		return
	}
	s.location(w, "chassis/"+c.UUID)
	writeJSON(w, http.StatusCreated, s.renderChassis(c, nil))
}

// patchChassis serves PATCH /v1/chassis/{uuid} with a JSON Patch over description and extra, applied in the
// engine's update callback to the chassis as stored. Chassis carry no lock: of two concurrent patches the
// last one wins, as in Ironic.
func (s *Server) patchChassis(w http.ResponseWriter, r *http.Request) {
	id, err := chassisIdent(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	ops, err := readPatch(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	c, err := s.eng.UpdateChassis(r.Context(), id, func(c *store.Chassis) error {
		// The patchable document: Ironic also allows /uuid, which Ferric refuses (nodes refer to the UUID).
		doc := map[string]any{"description": strOrNil(c.Description), "extra": copyMap(c.Extra)}
		if err := applyPatch(doc, ops, []string{"description", "extra"}); err != nil {
			return err
		}
		return applyChassisDoc(c, doc)
	})
	if err != nil {
		s.writeError(w, r, chassisOr404(id, err))
		return
	}
	writeJSON(w, http.StatusOK, s.renderChassis(c, nil))
}

// deleteChassis serves DELETE /v1/chassis/{uuid}: 204, or the engine's refusal while nodes still belong to
// the chassis (Ironic's ChassisNotEmpty, a 400).
func (s *Server) deleteChassis(w http.ResponseWriter, r *http.Request) {
	id, err := chassisIdent(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.eng.DeleteChassis(r.Context(), id); err != nil {
		s.writeError(w, r, chassisOr404(id, err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// listChassisNodes serves GET /v1/chassis/{uuid}/nodes.
func (s *Server) listChassisNodes(w http.ResponseWriter, r *http.Request) {
	s.doListChassisNodes(w, r, false)
}

// listChassisNodesDetail serves GET /v1/chassis/{uuid}/nodes/detail.
func (s *Server) listChassisNodesDetail(w http.ResponseWriter, r *http.Request) {
	s.doListChassisNodes(w, r, true)
}

// doListChassisNodes serves /v1/chassis/{chassis}/nodes[/detail]: Ironic's node list with the chassis as its
// chassis_uuid filter (same query parameters; the next link is the node list's, with that filter).
func (s *Server) doListChassisNodes(w http.ResponseWriter, r *http.Request, detail bool) {
	id, err := chassisIdent(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	// The path's chassis overrides any chassis_uuid the query carries; the request is otherwise the node list's.
	q := r.URL.Query()
	q.Set("chassis_uuid", id)
	r2 := r.Clone(r.Context())
	r2.URL.RawQuery = q.Encode()
	s.doListNodes(w, r2, detail)
}

// nodeChassisFilter answers Ironic's 404 for a node list filtered by a chassis that does not exist (an empty
// list would hide a typo).
func (s *Server) nodeChassisFilter(ctx context.Context, lq *listQuery) error {
	id := lq.nodeFilter.ChassisUUID
	if id == "" {
		return nil
	}
	_, err := s.eng.Chassis(ctx, id)
	return chassisOr404(id, err)
}

// checkNodeChassis checks a node's chassis_uuid on create (before "") and PATCH: the chassis must exist (400
// otherwise), and removing it needs 1.25 (Ironic's 406 before).
func (s *Server) checkNodeChassis(ctx context.Context, before, after string, version int) error {
	// Before 1.25 Ironic did not allow unsetting a node's chassis; a client pinned there gets 406.
	if before != "" && after == "" && version < 25 {
		return errNotAcceptable
	}
	// An unchanged chassis is not looked up again: a PATCH of other fields never fails on it.
	if after == before {
		return nil
	}
	return s.eng.CheckNodeChassis(ctx, after)
}
