package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/mux"

	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// maxLimit is Ironic's [api]max_limit: the page size when no limit is given, and the cap on a larger one.
const maxLimit = 1000

// newUUID returns a random (version 4) UUID for a resource the client did not name.
func newUUID() string { return uuid.NewString() }

// listQuery is a parsed list request (nodes, ports and the other resources' lists): the store filter and
// paging, the fields to show (nil: all of the version), whether the answer is detailed, and what the next
// link must repeat so the following page is the same query.
type listQuery struct {
	// nodeFilter and portFilter: only the one of the listed resource is used.
	nodeFilter store.NodeFilter
	portFilter store.PortFilter
	opts       store.ListOptions
	fields     []string
	detail     bool
	passOn     url.Values // arguments repeated in the next link
	// conductor is the conductor filter (parseBodyFilters): nil for none.
	conductor *string
}

// parseNodeQuery checks and parses the query of GET /v1/nodes[/detail]. It refuses unknown parameters and
// filters newer than version, and returns each error as the 400 or 406 to answer; nothing is looked up here
// except in the helpers that need the store later (chassis, parent node).
func parseNodeQuery(q url.Values, version int, detailPath bool) (*listQuery, error) {
	lq := &listQuery{detail: detailPath, passOn: url.Values{}}
	known := map[string]bool{"limit": true, "marker": true, "sort_key": true, "sort_dir": true, "fields": true,
		"detail": true, "provision_state": true, "driver": true, "maintenance": true, "associated": true,
		"resource_class": true, "conductor_group": true, "owner": true, "instance_uuid": true, "fault": true,
		"chassis_uuid": true, "conductor": true, "lessee": true, "project": true, "shard": true, "retired": true,
		"description_contains": true, "include_children": true, "parent_node": true, "sharded": true,
		// Ferric's extension (bootc_inventory.go): the nodes whose hosts last reported this booted image.
		"bootc_image": true, "bootc_digest": true}
	for k := range q {
		// An unknown parameter is a 400 rather than ignored: a misspelt filter must not list every node.
		if !known[k] {
			return nil, badRequest("Unknown query parameter %q", k)
		}
	}
	// Version gates come before value checks, so a too-new filter is 406 whatever its value.
	if err := checkFilterGates(q, version); err != nil {
		return nil, err
	}
	if err := parsePaging(q, lq, store.NodeSortKeys()); err != nil {
		return nil, err
	}
	// Filters on fields kept in the node's JSON body are matched by the store too, so paging stays correct.
	if err := parseBodyFilters(q, lq); err != nil {
		return nil, err
	}
	if d := q.Get("detail"); d != "" {
		// /nodes/detail is already detailed; detail= on it is contradictory and refused.
		if detailPath {
			return nil, badRequest("The detail parameter cannot be used with /nodes/detail")
		}
		// detail= arrived in 1.43; an older client using it gets a 400 naming the version.
		if version < 43 {
			return nil, badRequest("The detail parameter requires API version 1.43 or later")
		}
		b, err := toBool("detail", d)
		if err != nil {
			return nil, err
		}
		lq.detail = b
		lq.passOn.Set("detail", d)
	}
	if f := q.Get("fields"); f != "" {
		// The two ask for different shapes; Ironic refuses the pair instead of picking one.
		if lq.detail {
			return nil, badRequest("Can not specify ?detail=True and fields in the same request.")
		}
		fields, err := fieldSet(f, version)
		if err != nil {
			return nil, err
		}
		lq.fields = fields
		lq.passOn.Set("fields", f)
	}
	// Plain string filters: an empty value means "no filter".
	f := &lq.nodeFilter
	for key, dst := range map[string]*string{"provision_state": &f.ProvisionState, "driver": &f.Driver,
		"owner": &f.Owner, "instance_uuid": &f.InstanceUUID} {
		if v := q.Get(key); v != "" {
			*dst = v
			lq.passOn.Set(key, v)
		}
	}
	// Boolean filters accept true/false, 1/0, yes/no, on/off; anything else is a 400 naming the filter.
	for key, dst := range map[string]**bool{"maintenance": &f.Maintenance, "associated": &f.Associated} {
		if v := q.Get(key); v != "" {
			b, err := toBool(key, v)
			if err != nil {
				return nil, err
			}
			*dst = &b
			lq.passOn.Set(key, v)
		}
	}
	// Present but empty is a filter too: ?resource_class= lists the nodes without a resource class
	// (the store compares NULL as "").
	if q.Has("resource_class") {
		v := q.Get("resource_class")
		f.ResourceClass = &v
		lq.passOn.Set("resource_class", v)
	}
	// Same for conductor_group: "" is the default group, a real value to filter on.
	if q.Has("conductor_group") {
		v := q.Get("conductor_group")
		f.ConductorGroup = &v
		lq.passOn.Set("conductor_group", v)
	}
	if v := q.Get("chassis_uuid"); v != "" {
		// Chassis are named by UUID only, so a name here could never match: say so instead of returning nothing.
		if !isUUID(v) {
			return nil, badRequest("Expected UUID for chassis_uuid: %s", v)
		}
		f.ChassisUUID = v
		lq.passOn.Set("chassis_uuid", v)
	}
	// shard, sharded, parent_node and include_children have version gates and defaults of their own.
	if err := parseTreeFilters(q, version, f, lq.passOn); err != nil {
		return nil, err
	}
	return lq, nil
}

// parsePaging reads limit, marker, sort_key and sort_dir into lq, shared by every list. sortKeys are the
// columns the store can order by; sort_key and sort_dir are repeated in the next link, limit and marker are
// not (nextLinks sets them).
func parsePaging(q url.Values, lq *listQuery, sortKeys []string) error {
	lq.opts.Limit = maxLimit
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n <= 0 {
			return badRequest("Invalid limit %q: use a positive integer (at most %d)", l, maxLimit)
		}
		// A limit above max_limit is capped, not refused, as Ironic does.
		if n < maxLimit {
			lq.opts.Limit = n
		}
	}
	if m := q.Get("marker"); m != "" {
		// Markers are UUIDs (the last item of the previous page); a name is refused up front.
		if !isUUID(m) {
			return badRequest("Invalid marker %q: use the UUID of the last item of the previous page", m)
		}
		lq.opts.Marker = m
	}
	if k := q.Get("sort_key"); k != "" {
		ok := false
		for _, s := range sortKeys {
			// Only the store's sortable columns are accepted; the 400 lists them so the client can pick one.
			ok = ok || s == k
		}
		if !ok {
			return badRequest("The sort_key value \"%s\" is an invalid field for sorting; use one of %s", k, fmtList(sortKeys))
		}
		lq.opts.SortKey = k
		lq.passOn.Set("sort_key", k)
	}
	if d := q.Get("sort_dir"); d != "" {
		if d != "asc" && d != "desc" {
			return badRequest("Invalid sort direction: %s. Acceptable values are 'asc' or 'desc'", d)
		}
		lq.opts.SortDir = d
		lq.passOn.Set("sort_dir", d)
	}
	return nil
}

// nextLinks builds Ironic's "next" string and gophercloud's "<kind>_links" when the page is full. A short
// page is the last one, so it gets no link: that is how clients know to stop, as with Ironic.
func (s *Server) nextLinks(out *ordered, kind, path string, lq *listQuery, n int, lastUUID string) {
	if n == 0 || n < lq.opts.Limit {
		return
	}
	v := url.Values{}
	for k, vals := range lq.passOn {
		v[k] = vals
	}
	// The effective limit (capped at max_limit) and the last item's UUID, so page 2 starts right after page 1.
	v.Set("limit", strconv.Itoa(lq.opts.Limit))
	v.Set("marker", lastUUID)
	next := s.cfg.PublicURL + "/v1/" + path + "?" + v.Encode()
	out.set("next", next)
	out.set(kind+"_links", []map[string]string{{"href": next, "rel": "next"}})
}

// listNodes serves GET /v1/nodes: by default the short node form (uuid, name, states...).
func (s *Server) listNodes(w http.ResponseWriter, r *http.Request) { s.doListNodes(w, r, false) }

// listNodesDetail serves GET /v1/nodes/detail: every field of the version.
func (s *Server) listNodesDetail(w http.ResponseWriter, r *http.Request) { s.doListNodes(w, r, true) }

// doListNodes serves both node list paths and /v1/chassis/{uuid}/nodes[/detail] (which sets chassis_uuid).
func (s *Server) doListNodes(w http.ResponseWriter, r *http.Request, detailPath bool) {
	version := versionOf(r)
	lq, err := parseNodeQuery(r.URL.Query(), version, detailPath)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	// A filter on a chassis that does not exist is a 404, not an empty list.
	if err := s.nodeChassisFilter(r.Context(), lq); err != nil {
		s.writeError(w, r, err)
		return
	}
	fields := lq.fields
	// Without detail= or fields=, Ironic's short node form for this version.
	if fields == nil && !lq.detail {
		fields = defaultListFields(version)
	}
	nodes, err := s.listMatching(r.Context(), lq, fields)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			// The only lookup a list makes is the marker's: a marker naming no node is a paging mistake, a 400.
			err = badRequest("Invalid marker %s: no such node", lq.opts.Marker)
		}
		s.writeError(w, r, err)
		return
	}
	// The page writes itself (pyAppender) rather than building an object per node: lists are the hot path.
	items := &nodeList{enc: s.nodeEnc, nodes: nodes, version: version, fields: fields, base: s.cfg.PublicURL,
		host: s.eng.Host(), ring: s.cfg.Cluster}
	last := ""
	if len(nodes) > 0 {
		last = nodes[len(nodes)-1].UUID
	}
	s.writeList(w, "nodes", detailPath, lq, items, len(nodes), last)
}

// getNodeOr404 loads a node by UUID or name with Ironic's not-found message (404 quoting the client's ident).
// It reads the store directly, without the node's reservation: callers only read, or pass the UUID on to an
// engine call that reserves.
func (s *Server) getNodeOr404(r *http.Request, ident string) (*store.Node, error) {
	n, err := s.eng.Store().GetNode(r.Context(), ident)
	if errors.Is(err, store.ErrNotFound) {
		return nil, notFound("Node %s could not be found.", ident)
	}
	return n, err
}

// lockedOr404 rewrites not-found errors of engine calls into Ironic's message. Lock conflicts are left to
// status() (409, NodeLocked), hence the name.
func lockedOr404(ident string, err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return notFound("Node %s could not be found.", ident)
	}
	return err
}

// getNode serves GET /v1/nodes/{node} (UUID or name), honouring fields=.
func (s *Server) getNode(w http.ResponseWriter, r *http.Request) {
	ident := mux.Vars(r)["node"]
	// A node is never called "detail": whichever route matched, the path names the detail list.
	if ident == "detail" {
		s.listNodesDetail(w, r)
		return
	}
	n, err := s.getNodeOr404(r, ident)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	fields, err := fieldSet(r.URL.Query().Get("fields"), versionOf(r))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeNode(w, http.StatusOK, n, versionOf(r), fields)
}

// createNode serves POST /v1/nodes: 201 with Location and the node. The checks follow Ironic's order: schema
// (driver required), fields too new for the version (406), values, chassis and parent, then the engine
// (driver and interfaces) and the store (unique name and UUID).
func (s *Server) createNode(w http.ResponseWriter, r *http.Request) {
	version := versionOf(r)
	var doc map[string]any
	if err := decodeBody(w, r, maxBody, &doc); err != nil {
		s.writeError(w, r, err)
		return
	}
	if _, ok := doc["driver"]; !ok {
		s.writeError(w, r, badRequest("Schema error for node: 'driver' is a required property"))
		return
	}
	// Checked against every field any version knows, so a too-new field is 406, an unknown one 400.
	if err := rejectNewerBody(doc, version, createFields(maxVersion)); err != nil {
		s.writeError(w, r, err)
		return
	}
	n := &store.Node{}
	// Empty maps and lists rather than nil, so the created node renders {} and [] like a stored one.
	n.Normalize()
	if err := applyDoc(n, doc, createFields(version)); err != nil {
		s.writeError(w, r, err)
		return
	}
	// A chassis named in the body must exist: 400, since the request is about the node.
	if err := s.checkNodeChassis(r.Context(), "", n.ChassisUUID, version); err != nil {
		s.writeError(w, r, err)
		return
	}
	if n.UUID == "" {
		n.UUID = newUUID()
	}
	// After the UUID is known, so a node cannot name itself as its own parent.
	if err := s.checkParentNode(r, n, ""); err != nil {
		s.writeError(w, r, err)
		return
	}
	// New nodes start in enroll from 1.11; older clients expect them to be available at once, as Ironic did then.
	n.ProvisionState = "enroll"
	if version < 11 {
		n.ProvisionState = "available"
	}
	if err := s.eng.CreateNode(r.Context(), n); err != nil {
		if errors.Is(err, store.ErrDuplicate) {
			// The store only says "duplicate"; name the field that clashed as Ironic does: the name if another node
			// holds it, else the UUID.
			if n.Name != "" {
				if other, gerr := s.eng.Store().GetNode(r.Context(), n.Name); gerr == nil && other.UUID != n.UUID {
					err = conflict("A node with name %s already exists.", n.Name)
				}
			}
			if errors.Is(err, store.ErrDuplicate) {
				err = conflict("A node with UUID %s already exists.", n.UUID)
			}
		}
		s.writeError(w, r, err)
		return
	}
	s.location(w, "nodes/"+n.UUID)
	writeJSON(w, http.StatusCreated, s.renderNode(n, version, nil))
}

// patchNode serves PATCH /v1/nodes/{node} with a JSON Patch. Every check that needs no node runs first;
// the patch is then applied inside the engine's update, to the node as read under its reservation, so
// concurrent patches cannot lose each other's changes and a node in a transition is refused.
func (s *Server) patchNode(w http.ResponseWriter, r *http.Request) {
	ident := mux.Vars(r)["node"]
	version := versionOf(r)
	body, err := readBody(w, r, maxBody)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	// Ironic's order: reset_interfaces' gate, the patch's own checks (fields too new, traits, description,
	// network_data), then the node.
	reset, err := parseResetInterfaces(r.URL.Query(), version)
	var ops []patchOp
	if err == nil {
		ops, err = parsePatch(body)
	}
	if err == nil {
		err = rejectNewerPatch(ops, version, patchableFields(maxVersion))
	}
	if err == nil {
		err = traitsPatchError(ops)
	}
	if err == nil {
		err = checkNodePatch(ops, reset)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	// The fields this version may patch; newer ones were already refused with 406 above.
	allowed := patchableFields(version)
	n, err := s.eng.UpdateNode(r.Context(), ident, func(n *store.Node) error {
		doc := docOf(n, version)
		if err := applyPatch(doc, ops, allowed); err != nil {
			return err
		}
		// remove on an interface resets it to the driver's default.
		for k, v := range doc {
			if strings.HasSuffix(k, "_interface") && v == nil {
				doc[k] = ""
			}
		}
		// The values before the patch: the chassis and parent are looked up only if changed, and the driver
		// decides whether reset_interfaces applies.
		chassis, driverName, parent := n.ChassisUUID, n.Driver, n.ParentNode
		if err := applyDoc(n, doc, allowed); err != nil {
			return err
		}
		resetInterfaces(n, driverName, reset, ops)
		if err := s.checkParentNode(r, n, parent); err != nil {
			return err
		}
		return s.checkNodeChassis(r.Context(), chassis, n.ChassisUUID, version)
	})
	if err != nil {
		if errors.Is(err, store.ErrDuplicate) {
			// A PATCH can only clash on the name (the UUID is not patchable).
			err = conflict("A node with name %s already exists.", nameFromOps(ops))
		}
		s.writeError(w, r, lockedOr404(ident, err))
		return
	}
	writeJSON(w, http.StatusOK, s.renderNode(n, version, nil))
}

// nameFromOps returns the name a patch sets at /name ("" if none), for the 409 message.
func nameFromOps(ops []patchOp) string {
	for _, op := range ops {
		if op.Path == "/name" {
			var s string
			// The value was already validated by applyDoc; a failure here only leaves the name out of the message.
			json.Unmarshal(op.Value, &s)
			return s
		}
	}
	return ""
}

// deleteNode serves DELETE /v1/nodes/{node}: 204, or the engine's refusal (state, protection, lock).
func (s *Server) deleteNode(w http.ResponseWriter, r *http.Request) {
	ident := mux.Vars(r)["node"]
	if err := s.eng.DeleteNode(r.Context(), ident); err != nil {
		s.writeError(w, r, lockedOr404(ident, err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// getStates serves GET /v1/nodes/{node}/states: the node's state fields in Ironic's order, those of newer
// microversions only from their version.
func (s *Server) getStates(w http.ResponseWriter, r *http.Request) {
	n, err := s.getNodeOr404(r, mux.Vars(r)["node"])
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	version := versionOf(r)
	o := newOrdered()
	o.set("console_enabled", n.ConsoleEnabled)
	o.set("last_error", strOrNil(n.LastError))
	o.set("power_state", strOrNil(n.PowerState))
	o.set("provision_state", n.ProvisionState)
	o.set("target_power_state", strOrNil(n.TargetPowerState))
	o.set("target_provision_state", strOrNil(n.TargetProvisionState))
	o.set("provision_updated_at", timeOrNil(n.ProvisionUpdatedAt))
	// RAID configuration joined the states in 1.12.
	if version >= 12 {
		o.set("raid_config", n.RAIDConfig)
		o.set("target_raid_config", n.TargetRAIDConfig)
	}
	// boot_mode and secure_boot joined in 1.75; secure_boot is null when unknown, not false.
	if version >= 75 {
		o.set("boot_mode", strOrNil(n.BootMode))
		var sb any
		if n.SecureBoot != nil {
			sb = *n.SecureBoot
		}
		o.set("secure_boot", sb)
	}
	writeJSON(w, http.StatusOK, o)
}

// putPower serves PUT /v1/nodes/{node}/states/power: the engine starts the action and the answer is 202
// with a Location to the states; the outcome shows in power_state and last_error.
func (s *Server) putPower(w http.ResponseWriter, r *http.Request) {
	ident := mux.Vars(r)["node"]
	var req struct {
		Target  string `json:"target"`
		Timeout *int   `json:"timeout"`
	}
	if err := decodeBody(w, r, maxBody, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	// Soft power off/reboot and the timeout arrived together in 1.27; before it Ironic answers NotAcceptable (406).
	if strings.HasPrefix(req.Target, "soft") || req.Timeout != nil {
		if versionOf(r) < 27 {
			s.writeError(w, r, errNotAcceptable)
			return
		}
	}
	var timeout time.Duration
	if req.Timeout != nil {
		// A timeout is whole seconds, at least one; say so rather than pass 0 on to the driver.
		if *req.Timeout < 1 {
			s.writeError(w, r, badRequest("Invalid timeout %d: use a whole number of seconds, at least 1", *req.Timeout))
			return
		}
		timeout = time.Duration(*req.Timeout) * time.Second
	}
	// The engine checks the target against the node's state and driver (400 for a bad one) and reserves the node.
	if err := s.eng.SetPower(r.Context(), ident, req.Target, timeout); err != nil {
		s.writeError(w, r, lockedOr404(ident, err))
		return
	}
	s.acceptedStates(w, r, ident)
}

// acceptedStates answers 202 with Location pointing at the node's states, by UUID when it resolves (the
// client may have used a name).
func (s *Server) acceptedStates(w http.ResponseWriter, r *http.Request, ident string) {
	if n, err := s.eng.Store().GetNode(r.Context(), ident); err == nil {
		ident = n.UUID
	}
	s.location(w, "nodes/"+ident+"/states")
	w.WriteHeader(http.StatusAccepted)
}

// validateNode serves GET /v1/nodes/{node}/validate: per interface, result and reason. Taken without the
// node's lock, so it may be stale by the time a provision request is made.
func (s *Server) validateNode(w http.ResponseWriter, r *http.Request) {
	ident := mux.Vars(r)["node"]
	res, err := s.eng.Validate(r.Context(), ident)
	if err != nil {
		s.writeError(w, r, lockedOr404(ident, err))
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// putMaintenance serves PUT /v1/nodes/{node}/maintenance: 202, with an optional {"reason": ...}.
func (s *Server) putMaintenance(w http.ResponseWriter, r *http.Request) {
	ident := mux.Vars(r)["node"]
	var req struct {
		Reason string `json:"reason"`
	}
	body, err := readBody(w, r, maxBody)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	// The body is optional (Ironic accepts none), so decodeBody's empty-body refusal does not fit here.
	if len(strings.TrimSpace(string(body))) > 0 {
		if err := json.Unmarshal(body, &req); err != nil {
			s.writeError(w, r, badRequest("Invalid JSON in request body: %v", err))
			return
		}
	}
	if err := s.eng.SetMaintenance(r.Context(), ident, true, req.Reason); err != nil {
		s.writeError(w, r, lockedOr404(ident, err))
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

// deleteMaintenance serves DELETE /v1/nodes/{node}/maintenance: 202; the reason is cleared with the flag.
func (s *Server) deleteMaintenance(w http.ResponseWriter, r *http.Request) {
	ident := mux.Vars(r)["node"]
	if err := s.eng.SetMaintenance(r.Context(), ident, false, ""); err != nil {
		s.writeError(w, r, lockedOr404(ident, err))
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

// getBootDevice serves GET .../management/boot_device: {"boot_device", "persistent"} from the BMC.
func (s *Server) getBootDevice(w http.ResponseWriter, r *http.Request) {
	ident := mux.Vars(r)["node"]
	d, _, err := s.eng.BootDevice(r.Context(), ident)
	if err != nil {
		s.writeError(w, r, lockedOr404(ident, err))
		return
	}
	writeJSON(w, http.StatusOK, d)
}

// getSupportedBootDevices serves GET .../management/boot_device/supported.
func (s *Server) getSupportedBootDevices(w http.ResponseWriter, r *http.Request) {
	ident := mux.Vars(r)["node"]
	_, sup, err := s.eng.BootDevice(r.Context(), ident)
	if err != nil {
		s.writeError(w, r, lockedOr404(ident, err))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"supported_boot_devices": sup})
}

// putBootDevice serves PUT .../management/boot_device: synchronous, 204 once the driver has set it.
func (s *Server) putBootDevice(w http.ResponseWriter, r *http.Request) {
	ident := mux.Vars(r)["node"]
	var req struct {
		BootDevice string `json:"boot_device"`
		Persistent any    `json:"persistent"`
	}
	if err := decodeBody(w, r, maxBody, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.BootDevice == "" {
		s.writeError(w, r, badRequest("Missing boot_device: use one of pxe, disk, cdrom, bios, safe"))
		return
	}
	// persistent is optional (absent: false) and may be given as a bool or as a string such as "true".
	persistent, err := toBool("persistent", req.Persistent)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.eng.SetBootDevice(r.Context(), ident, req.BootDevice, persistent); err != nil {
		s.writeError(w, r, lockedOr404(ident, err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// getDeployLog serves GET /v1/nodes/{node}/deploy_logs[?run=ID], Ferric's kept deploy log (the latest run by
// default): {"node_uuid", "run", "lines": [{"time", "source", "message"}]}.
func (s *Server) getDeployLog(w http.ResponseWriter, r *http.Request) {
	n, err := s.getNodeOr404(r, mux.Vars(r)["node"])
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	run := r.URL.Query().Get("run")
	lines, err := s.eng.Store().DeployLog(r.Context(), n.UUID, run)
	if errors.Is(err, store.ErrNotFound) {
		// A node that never deployed, or an unknown run, has no log: 404 rather than an empty list.
		s.writeError(w, r, notFound("Node %s has no deploy log%s.", n.UUID, map[bool]string{true: " for run " + run, false: ""}[run != ""]))
		return
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	items := make([]any, 0, len(lines))
	for _, l := range lines {
		o := newOrdered()
		o.set("time", isoTime(l.Time))
		o.set("source", l.Source)
		o.set("message", l.Message)
		items = append(items, o)
	}
	out := newOrdered()
	out.set("node_uuid", n.UUID)
	// The store returns at least one line when it finds a log, so lines[0] names the run shown.
	out.set("run", lines[0].Run)
	out.set("lines", items)
	writeJSON(w, http.StatusOK, out)
}
