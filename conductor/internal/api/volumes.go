package api

// Volume connectors and volume targets (API 1.32), as Ironic's volume, volume_connector and volume_target
// controllers serve them: /v1/volume with its links, /v1/volume/connectors and /v1/volume/targets, and the same
// lists under /v1/nodes/{node}/volume. Below 1.32 every one of them is 404. The node-scoped paths only list:
// creating, showing, patching or deleting through them is Ironic's MalformedRequestURI (400). Writes go through
// the engine under the node's reservation; the engine applies the conductor's power-state rules.

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"

	"github.com/gorilla/mux"

	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// volumeVersion is Ironic's MINOR_32_VOLUME.
const volumeVersion = 32

// errMalformedURI is Ironic's MalformedRequestURI: a single connector or target asked through a node's path.
var errMalformedURI = &httpError{http.StatusBadRequest, "Malformed request URI."}

// volumeKind describes the list endpoints of connectors or targets.
type volumeKind struct {
	plural   string // "connectors", "targets": the list key and the path under volume/
	defs     []fieldDef
	defaults []string // fields of a list without detail
	sortKeys []string
	noSort   []string // fields Ironic refuses to sort by, with its own message
}

// volumeConnectorDefs lists the connector fields in Ironic's output order (object_to_dict, then node_uuid).
var volumeConnectorDefs = []fieldDef{{"uuid", 32}, {"created_at", 32}, {"updated_at", 32}, {"connector_id", 32},
	{"extra", 32}, {"type", 32}, {"links", 32}, {"node_uuid", 32}}

var connectorKind = volumeKind{plural: "connectors", defs: volumeConnectorDefs,
	defaults: []string{"uuid", "node_uuid", "type", "connector_id"}, sortKeys: store.VolumeConnectorSortKeys(),
	noSort: []string{"extra"}}

// volumeRoutes registers /v1/volume and its connectors and targets, and the node-scoped volume paths.
func (s *Server) volumeRoutes(v *mux.Router) {
	add := func(path string, h http.HandlerFunc, methods ...string) {
		v.HandleFunc(path, s.since(volumeVersion, h)).Methods(methods...)
	}
	for _, root := range []string{"/volume", "/nodes/{node}/volume"} {
		scoped := root != "/volume"
		add(root, s.volumeRoot, http.MethodGet)
		add(root+"/", s.volumeRoot, http.MethodGet)
		for _, p := range []string{root + "/connectors", root + "/connectors/"} {
			add(p, s.listVolumeConnectors, http.MethodGet)
			add(p, func(w http.ResponseWriter, r *http.Request) { s.createVolumeConnector(w, r, scoped) }, http.MethodPost)
		}
		add(root+"/connectors/{id}", func(w http.ResponseWriter, r *http.Request) { s.getVolumeConnector(w, r, scoped) },
			http.MethodGet)
		add(root+"/connectors/{id}", func(w http.ResponseWriter, r *http.Request) { s.patchVolumeConnector(w, r, scoped) },
			http.MethodPatch)
		add(root+"/connectors/{id}", func(w http.ResponseWriter, r *http.Request) { s.deleteVolumeConnector(w, r, scoped) },
			http.MethodDelete)
		for _, p := range []string{root + "/targets", root + "/targets/"} {
			add(p, s.listVolumeTargets, http.MethodGet)
			add(p, func(w http.ResponseWriter, r *http.Request) { s.createVolumeTarget(w, r, scoped) }, http.MethodPost)
		}
		add(root+"/targets/{id}", func(w http.ResponseWriter, r *http.Request) { s.getVolumeTarget(w, r, scoped) },
			http.MethodGet)
		add(root+"/targets/{id}", func(w http.ResponseWriter, r *http.Request) { s.patchVolumeTarget(w, r, scoped) },
			http.MethodPatch)
		add(root+"/targets/{id}", func(w http.ResponseWriter, r *http.Request) { s.deleteVolumeTarget(w, r, scoped) },
			http.MethodDelete)
	}
}

// volumeRoot serves GET /v1/volume and /v1/nodes/{node}/volume: links to itself, its connectors and targets. As
// in Ironic the node is not looked up here: the links name it as the request did.
func (s *Server) volumeRoot(w http.ResponseWriter, r *http.Request) {
	base, p := s.cfg.PublicURL, "volume/"
	if node := mux.Vars(r)["node"]; node != "" {
		p = "nodes/" + node + "/volume/"
	}
	link := func(sub string) []map[string]string {
		return []map[string]string{{"href": base + "/v1/" + p + sub, "rel": "self"},
			{"href": base + "/" + p + sub, "rel": "bookmark"}}
	}
	o := newOrdered()
	o.set("links", link(""))
	o.set("connectors", link("connectors"))
	o.set("targets", link("targets"))
	writeJSON(w, http.StatusOK, o)
}

// parseVolumeList checks a connector or target list query as Ironic's get_all: paging and sorting, fields, and
// detail (a boolean argument from 1.32, not the /detail path nor 1.43's gate of the other resources). It returns
// the node filter asked by ?node= and the fields to render (nil: all).
func parseVolumeList(q url.Values, version int, k volumeKind) (*listQuery, []string, error) {
	// Ironic's query schema has additionalProperties false: an unknown parameter is a 400, not ignored.
	for key := range q {
		switch key {
		case "node", "detail", "fields", "limit", "marker", "sort_key", "sort_dir":
		default:
			return nil, nil, badRequest("Unknown query parameter %q", key)
		}
	}
	if sk := q.Get("sort_key"); containsStr(k.noSort, sk) {
		return nil, nil, badRequest("The sort_key value %s is an invalid field for sorting", sk)
	}
	lq := &listQuery{passOn: cloneWithout(q, "limit", "marker")}
	if err := parsePaging(q, lq, k.sortKeys); err != nil {
		return nil, nil, err
	}
	detail := false
	if v := q.Get("detail"); v != "" {
		b, err := toBool("detail", v)
		if err != nil {
			return nil, nil, err
		}
		detail = b
	}
	fields, err := checkFields(q.Get("fields"), k.defs, version)
	if err != nil {
		return nil, nil, err
	}
	if fields != nil && detail {
		return nil, nil, badRequest("Can't fetch a subset of fields with 'detail' set")
	}
	if fields == nil && !detail {
		fields = k.defaults
	}
	return lq, fields, nil
}

// listVolumes serves a connector or target list: the path's node (/v1/nodes/{node}/volume/...) wins over
// ?node=; a marker that names no record is Ironic's not-found of that record. list reads one page, enc writes
// it.
func listVolumes[T any](s *Server, w http.ResponseWriter, r *http.Request, k volumeKind, what string,
	list func(node string, o store.ListOptions) ([]T, error), enc *recEncoder[T]) {
	version := versionOf(r)
	q := r.URL.Query()
	lq, fields, err := parseVolumeList(q, version, k)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	nodeIdent, nodeUUID := mux.Vars(r)["node"], ""
	if nodeIdent == "" {
		nodeIdent = q.Get("node")
	}
	if nodeIdent != "" {
		n, err := s.getNodeOr404(r, nodeIdent)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		nodeUUID = n.UUID
	}
	items, err := list(nodeUUID, lq.opts)
	// The node was found above, so a missing record can only be the marker (Ironic loads it first: 404).
	if errors.Is(err, store.ErrNotFound) {
		err = notFound("%s %s could not be found.", what, lq.opts.Marker)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out, n, last := enc.page(items, version, fields)
	// The next link names /v1/volume/<plural> even for a node's list, as Ironic's; the node filter goes with the
	// other arguments.
	s.writeListAt(w, k.plural, "volume/"+k.plural, lq, out, n, last)
}

// volumeIdent checks the {id} of a connector or target path: Ironic's args.uuid on connector_uuid/target_uuid.
func volumeIdent(r *http.Request, arg string) (string, error) {
	id := mux.Vars(r)["id"]
	if !isUUID(id) {
		return "", badRequest("Expected UUID for %s: %s", arg, id)
	}
	return id, nil
}

// reqString is a required string field of a volume body (jsonschema 'type': 'string'), of at most max characters
// (the width of Ironic's column, which PostgreSQL and MySQL enforce).
func reqString(kind, name string, v any, max int) (string, error) {
	s, ok := v.(string)
	if !ok {
		return "", badRequest("Schema error for %s: %s is not of type 'string' (field %s)", kind, pyRepr(v), name)
	}
	if len([]rune(s)) > max {
		return "", badRequest("Schema error for %s: '%s' is too long (field %s: at most %d characters)", kind, s, name, max)
	}
	return s, nil
}

// checkVolumeBody checks the keys of a volume body: every key known (additionalProperties false) and every
// required one present, in Ironic's schema order.
func checkVolumeBody(kind string, doc map[string]any, required, known []string) error {
	for _, k := range required {
		if _, ok := doc[k]; !ok {
			return badRequest("Schema error for %s: '%s' is a required property", kind, k)
		}
	}
	for k := range doc {
		if !containsStr(known, k) {
			return badRequest("Schema error for %s: Additional properties are not allowed ('%s' was unexpected)", kind, k)
		}
	}
	return nil
}

// volumeNode checks a create body's node_uuid (a UUID, as Ironic's validator wants) and finds the node; an unknown
// node is Ironic's InvalidInput (400), not a 404.
func (s *Server) volumeNode(r *http.Request, v any) (*store.Node, error) {
	u, err := uuidArg("node_uuid", v)
	if err != nil {
		return nil, err
	}
	n, err := s.eng.Store().GetNode(r.Context(), u)
	if errors.Is(err, store.ErrNotFound) {
		return nil, badRequest("Invalid input for field/attribute node_uuid. Value: '%v'. ", v)
	}
	return n, err
}

// volumePatchChecks runs Ironic's checks of a volume PATCH before it is applied: every path under an allowed
// field, and a UUID for every node_uuid given. It returns the node_uuid the patch sets ("" for none).
func volumePatchChecks(ops []patchOp, allowed []string) (string, error) {
	for _, op := range ops {
		if !containsStr(allowed, splitPointer(op.Path)[0]) {
			return "", badRequest("Cannot patch %s. Only the following can be updated: %s", op.Path, fmtList(allowed))
		}
	}
	node := ""
	for _, op := range ops {
		if op.Path != "/node_uuid" || op.Op == "remove" {
			continue
		}
		var v any
		_ = json.Unmarshal(op.Value, &v)
		s, ok := v.(string)
		if !ok || !isUUID(s) {
			return "", badRequest("Expected a UUID for node_uuid, but received %v.", v)
		}
		if node == "" {
			node = s // Ironic links the record to the first node_uuid of the patch
		}
	}
	return node, nil
}

// dropRemoved deletes the fields a patch removed (applyPatch leaves them null), so that a removed required field
// is reported missing, as Ironic's patched document is.
func dropRemoved(doc map[string]any) {
	for k, v := range doc {
		if v == nil {
			delete(doc, k)
		}
	}
}

// renderVolumeConnector renders a connector as Ironic's convert_with_links.
func (s *Server) renderVolumeConnector(c *store.VolumeConnector, version int, fields []string) *ordered {
	val := map[string]any{"uuid": c.UUID, "created_at": isoTime(c.CreatedAt), "updated_at": timeOrNil(c.UpdatedAt),
		"connector_id": c.ConnectorID, "extra": c.Extra, "type": c.Type,
		"links": links(s.cfg.PublicURL, "volume/connectors", c.UUID, ""), "node_uuid": c.NodeUUID}
	return renderDefs(volumeConnectorDefs, val, version, fields)
}

// listVolumeConnectors serves GET /v1/volume/connectors and /v1/nodes/{node}/volume/connectors.
func (s *Server) listVolumeConnectors(w http.ResponseWriter, r *http.Request) {
	listVolumes(s, w, r, connectorKind, "Volume connector",
		func(node string, o store.ListOptions) ([]*store.VolumeConnector, error) {
			return s.eng.Store().ListVolumeConnectors(r.Context(), node, o)
		}, s.recs.connectors)
}

// volumeConnectorOr404 finds the connector of the request's path; through a node's path it is Ironic's
// MalformedRequestURI once the connector is found.
func (s *Server) volumeConnectorOr404(r *http.Request, scoped bool) (*store.VolumeConnector, error) {
	id, err := volumeIdent(r, "connector_uuid")
	if err != nil {
		return nil, err
	}
	c, err := s.eng.Store().GetVolumeConnector(r.Context(), id)
	// Ironic looks the connector up before it refuses the path, so an unknown one stays a 404 there too.
	if err == nil && scoped {
		return nil, errMalformedURI
	}
	return c, err
}

// getVolumeConnector serves GET /v1/volume/connectors/{id}.
func (s *Server) getVolumeConnector(w http.ResponseWriter, r *http.Request, scoped bool) {
	c, err := s.volumeConnectorOr404(r, scoped)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	fields, err := checkFields(r.URL.Query().Get("fields"), volumeConnectorDefs, versionOf(r))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.renderVolumeConnector(c, versionOf(r), fields))
}

// connectorFields are the fields of Ironic's CONNECTOR_SCHEMA.
var connectorFields = []string{"connector_id", "extra", "node_uuid", "type", "uuid"}

// applyConnectorDoc checks a connector document as CONNECTOR_SCHEMA (kind names it in errors: "connector" for a
// create, "patch" for a patched document) and sets its fields on c. node_uuid is the caller's.
func applyConnectorDoc(c *store.VolumeConnector, doc map[string]any, kind string) error {
	if err := checkVolumeBody(kind, doc, []string{"connector_id", "node_uuid", "type"}, connectorFields); err != nil {
		return err
	}
	var err error
	if c.ConnectorID, err = reqString(kind, "connector_id", doc["connector_id"], 255); err != nil {
		return err
	}
	if c.Type, err = reqString(kind, "type", doc["type"], 32); err != nil {
		return err
	}
	if c.Extra, err = objectArg(kind, "extra", doc["extra"]); err != nil {
		return err
	}
	if u, err := uuidArg("uuid", doc["uuid"]); err != nil {
		return err
	} else if u != "" {
		c.UUID = u
	}
	return nil
}

// createVolumeConnector serves POST /v1/volume/connectors.
func (s *Server) createVolumeConnector(w http.ResponseWriter, r *http.Request, scoped bool) {
	var doc map[string]any
	if err := decodeBody(w, r, maxBody, &doc); err != nil {
		s.writeError(w, r, err)
		return
	}
	// Ironic's order of checks: the schema (required, unknown and typed fields), the UUID validators, the node
	// (an unknown one is a 400, the body being wrong rather than the path), then the node-scoped path.
	c := &store.VolumeConnector{UUID: newUUID()}
	err := applyConnectorDoc(c, doc, "connector")
	var n *store.Node
	if err == nil {
		n, err = s.createdVolumeNode(r, doc, "connector", scoped)
	}
	if err == nil {
		c.NodeUUID = n.UUID
		err = lockedOr404(n.UUID, s.eng.CreateVolumeConnector(r.Context(), c))
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.location(w, "volume/connectors/"+c.UUID)
	writeJSON(w, http.StatusCreated, s.renderVolumeConnector(c, versionOf(r), nil))
}

// createdVolumeNode is the node a created connector or target (kind) names in doc's node_uuid, after the schema's
// type check; a create through a node-scoped path is Ironic's "Malformed request URI" once the body is valid.
func (s *Server) createdVolumeNode(r *http.Request, doc map[string]any, kind string, scoped bool) (*store.Node, error) {
	if _, ok := doc["node_uuid"].(string); !ok {
		return nil, badRequest("Schema error for %s: %s is not of type 'string' (field node_uuid)", kind, pyRepr(doc["node_uuid"]))
	}
	n, err := s.volumeNode(r, doc["node_uuid"])
	if err == nil && scoped {
		err = errMalformedURI
	}
	return n, err
}

// connectorPatchable are Ironic's PATCH_ALLOWED_FIELDS of a connector.
var connectorPatchable = []string{"connector_id", "extra", "node_uuid", "type"}

// patchVolumeConnector serves PATCH /v1/volume/connectors/{id}: the patch applies to the connector as read under
// its node's reservation; a node_uuid moves it to that node (the engine checks both nodes' rules).
func (s *Server) patchVolumeConnector(w http.ResponseWriter, r *http.Request, scoped bool) {
	cur, err := s.volumeConnectorOr404(r, scoped)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	ops, err := readPatch(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	node, err := volumePatchChecks(ops, connectorPatchable)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	c, err := s.eng.UpdateVolumeConnector(r.Context(), cur.UUID, func(c *store.VolumeConnector) error {
		// The document Ironic patches: the connector's fields with node_uuid null, so that an add of node_uuid
		// applies; the uuid is not patchable and not part of it.
		doc := map[string]any{"connector_id": c.ConnectorID, "extra": copyMap(c.Extra), "type": c.Type,
			"node_uuid": nil}
		if err := applyPatch(doc, ops, connectorPatchable); err != nil {
			return err
		}
		// Ironic's patched document always names a node: the patched one, or the record's own.
		if node == "" {
			node = c.NodeUUID
		}
		doc["node_uuid"] = node
		dropRemoved(doc)
		if err := applyConnectorDoc(c, doc, "patch"); err != nil {
			return err
		}
		c.NodeUUID = node
		return nil
	})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.renderVolumeConnector(c, versionOf(r), nil))
}

// deleteVolumeConnector serves DELETE /v1/volume/connectors/{id}.
func (s *Server) deleteVolumeConnector(w http.ResponseWriter, r *http.Request, scoped bool) {
	c, err := s.volumeConnectorOr404(r, scoped)
	if err == nil {
		err = s.eng.DeleteVolumeConnector(r.Context(), c.UUID)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
