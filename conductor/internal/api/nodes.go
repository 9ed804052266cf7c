package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/mux"

	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// newUUID returns a random (version 4) UUID for a resource the client did not name.
func newUUID() string { return uuid.NewString() }

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
