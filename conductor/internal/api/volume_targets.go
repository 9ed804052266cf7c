package api

// Volume targets (API 1.32), as Ironic's volume_target controller serves them. The routes and the list code they
// share with connectors are in volumes.go. A target's properties are shown with secret values masked (Ironic's
// mask_dict_password), as everywhere else in Ferric's API.

import (
	"math"
	"net/http"

	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// volumeTargetDefs lists the target fields in Ironic's output order (object_to_dict, then node_uuid).
var volumeTargetDefs = []fieldDef{{"uuid", 32}, {"created_at", 32}, {"updated_at", 32}, {"boot_index", 32},
	{"extra", 32}, {"properties", 32}, {"volume_id", 32}, {"volume_type", 32}, {"links", 32}, {"node_uuid", 32}}

// targetKind is what the shared volume list code needs for targets: Ironic's default list fields, and
// extra and properties, which are JSON blobs and so not sortable (Ironic refuses them as sort_key).
var targetKind = volumeKind{plural: "targets", defs: volumeTargetDefs,
	defaults: []string{"uuid", "node_uuid", "volume_type", "boot_index", "volume_id"},
	sortKeys: store.VolumeTargetSortKeys(), noSort: []string{"extra", "properties"}}

// renderVolumeTarget renders a target as Ironic's convert_with_links and target_sanitize.
func (s *Server) renderVolumeTarget(v *store.VolumeTarget, version int, fields []string) *ordered {
	val := map[string]any{"uuid": v.UUID, "created_at": isoTime(v.CreatedAt), "updated_at": timeOrNil(v.UpdatedAt),
		"boot_index": v.BootIndex, "extra": v.Extra, "properties": maskSecrets(v.Properties), "volume_id": v.VolumeID,
		"volume_type": v.VolumeType, "links": links(s.cfg.PublicURL, "volume/targets", v.UUID, ""),
		"node_uuid": v.NodeUUID}
	return renderDefs(volumeTargetDefs, val, version, fields)
}

// listVolumeTargets serves GET /v1/volume/targets and /v1/nodes/{node}/volume/targets.
func (s *Server) listVolumeTargets(w http.ResponseWriter, r *http.Request) {
	listVolumes(s, w, r, targetKind, "Volume target",
		func(node string, o store.ListOptions) ([]*store.VolumeTarget, error) {
			return s.eng.Store().ListVolumeTargets(r.Context(), node, o)
		}, s.recs.targets)
}

// volumeTargetOr404 finds the target of the request's path; through a node's path it is Ironic's
// MalformedRequestURI once the target is found.
func (s *Server) volumeTargetOr404(r *http.Request, scoped bool) (*store.VolumeTarget, error) {
	id, err := volumeIdent(r, "target_uuid")
	if err != nil {
		return nil, err
	}
	v, err := s.eng.Store().GetVolumeTarget(r.Context(), id)
	// Ironic looks the target up first, so through a node's path an unknown target is still a 404 and only an
	// existing one gets the 400 for a malformed URI.
	if err == nil && scoped {
		return nil, errMalformedURI
	}
	return v, err
}

// getVolumeTarget serves GET /v1/volume/targets/{id}.
func (s *Server) getVolumeTarget(w http.ResponseWriter, r *http.Request, scoped bool) {
	v, err := s.volumeTargetOr404(r, scoped)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	fields, err := checkFields(r.URL.Query().Get("fields"), volumeTargetDefs, versionOf(r))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.renderVolumeTarget(v, versionOf(r), fields))
}

// targetFields are the fields of Ironic's TARGET_SCHEMA.
var targetFields = []string{"boot_index", "extra", "node_uuid", "properties", "volume_id", "volume_type", "uuid"}

// intField is a jsonschema 'integer': a JSON number without a fraction (JSON decodes numbers as float64).
func intField(kind, name string, v any) (int, error) {
	f, ok := v.(float64)
	// Booleans and strings are refused too (jsonschema's integer excludes them); the bound keeps the value in
	// the int column Ironic declares.
	if !ok || f != math.Trunc(f) || math.Abs(f) > math.MaxInt32 {
		shown := pyRepr(v)
		if s, isStr := v.(string); isStr {
			shown = "'" + s + "'" // jsonschema shows the Python repr: a string quoted
		}
		return 0, badRequest("Schema error for %s: %s is not of type 'integer' (field %s)", kind, shown, name)
	}
	return int(f), nil
}

// applyTargetDoc checks a target document as TARGET_SCHEMA (kind names it in errors: "target" for a create,
// "patch" for a patched document) and sets its fields on v. node_uuid is the caller's.
func applyTargetDoc(v *store.VolumeTarget, doc map[string]any, kind string) error {
	// Required and unknown keys are checked before any value, as the schema check is in Ironic.
	err := checkVolumeBody(kind, doc, []string{"boot_index", "node_uuid", "volume_id", "volume_type"}, targetFields)
	if err != nil {
		return err
	}
	if v.BootIndex, err = intField(kind, "boot_index", doc["boot_index"]); err != nil {
		return err
	}
	// The widths of Ironic's columns (volume_id 36, volume_type 64): its database refuses longer values with a
	// 500, Ferric with a 400 that names the field.
	if v.VolumeID, err = reqString(kind, "volume_id", doc["volume_id"], 36); err != nil {
		return err
	}
	if v.VolumeType, err = reqString(kind, "volume_type", doc["volume_type"], 64); err != nil {
		return err
	}
	if v.Extra, err = objectArg(kind, "extra", doc["extra"]); err != nil {
		return err
	}
	if v.Properties, err = objectArg(kind, "properties", doc["properties"]); err != nil {
		return err
	}
	// A client may choose the UUID on create; a patched document never carries one (uuid is not patchable).
	if u, err := uuidArg("uuid", doc["uuid"]); err != nil {
		return err
	} else if u != "" {
		v.UUID = u
	}
	return nil
}

// createVolumeTarget serves POST /v1/volume/targets.
func (s *Server) createVolumeTarget(w http.ResponseWriter, r *http.Request, scoped bool) {
	var doc map[string]any
	if err := decodeBody(w, r, maxBody, &doc); err != nil {
		s.writeError(w, r, err)
		return
	}
	// The same order of checks as a connector's create (createVolumeConnector).
	v := &store.VolumeTarget{UUID: newUUID()}
	err := applyTargetDoc(v, doc, "target")
	var n *store.Node
	if err == nil {
		n, err = s.createdVolumeNode(r, doc, "target", scoped)
	}
	if err == nil {
		v.NodeUUID = n.UUID
		// The engine stores the target under the node's reservation; a busy node is a 409.
		err = lockedOr404(n.UUID, s.eng.CreateVolumeTarget(r.Context(), v))
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.location(w, "volume/targets/"+v.UUID)
	writeJSON(w, http.StatusCreated, s.renderVolumeTarget(v, versionOf(r), nil))
}

// targetPatchable are Ironic's PATCH_ALLOWED_FIELDS of a target.
var targetPatchable = []string{"boot_index", "extra", "node_uuid", "properties", "volume_id", "volume_type"}

// patchVolumeTarget serves PATCH /v1/volume/targets/{id}: the patch applies to the target as read under its
// node's reservation; a node_uuid moves it to that node.
func (s *Server) patchVolumeTarget(w http.ResponseWriter, r *http.Request, scoped bool) {
	cur, err := s.volumeTargetOr404(r, scoped)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	ops, err := readPatch(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	node, err := volumePatchChecks(ops, targetPatchable)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	v, err := s.eng.UpdateVolumeTarget(r.Context(), cur.UUID, func(v *store.VolumeTarget) error {
		// JSON numbers decode as float64: boot_index starts as one so that intField checks every value alike.
		doc := map[string]any{"boot_index": float64(v.BootIndex), "extra": copyMap(v.Extra),
			"properties": copyMap(v.Properties), "volume_id": v.VolumeID, "volume_type": v.VolumeType,
			"node_uuid": nil}
		if err := applyPatch(doc, ops, targetPatchable); err != nil {
			return err
		}
		// Without a node_uuid in the patch the target stays on its node.
		if node == "" {
			node = v.NodeUUID
		}
		doc["node_uuid"] = node
		dropRemoved(doc)
		if err := applyTargetDoc(v, doc, "patch"); err != nil {
			return err
		}
		v.NodeUUID = node
		return nil
	})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.renderVolumeTarget(v, versionOf(r), nil))
}

// deleteVolumeTarget serves DELETE /v1/volume/targets/{id}.
func (s *Server) deleteVolumeTarget(w http.ResponseWriter, r *http.Request, scoped bool) {
	v, err := s.volumeTargetOr404(r, scoped)
	if err == nil {
		// The engine deletes under the node's reservation and refuses while the node may be powered outside the
		// states where a node itself may be deleted.
		err = s.eng.DeleteVolumeTarget(r.Context(), v.UUID)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
