package api

// Node field checks the API makes before a create or PATCH reaches the engine, as Ironic's node controller
// does: fields newer than the request's microversion (406), the PATCH-only rules (reset_interfaces, the
// description's length, network_data's schema), conductor_group's format, and the list filters' gates. The
// rules that depend on the node's state (protected, retired, interfaces) are the engine's (UpdateNode).

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// maxVersion is the newest microversion whose node fields Ferric knows: the field lists of "any version".
const maxVersion = 95

// createFields are the fields a node create takes at version: the patchable ones and uuid, but not
// maintenance, protected or protected_reason (Ironic's NODE_SCHEMA has no protected fields; Ferric sets
// maintenance through its own endpoint only).
func createFields(version int) []string {
	var out []string
	for _, f := range append(patchableFields(version), "uuid") {
		if f != "maintenance" && f != "protected" && f != "protected_reason" {
			out = append(out, f)
		}
	}
	return out
}

// maxDescription is Ironic's _NODE_DESCRIPTION_MAX_LENGTH.
const maxDescription = 4096

// conductorGroupRe is Ironic's validate_conductor_group rule.
var conductorGroupRe = regexp.MustCompile(`^[a-zA-Z0-9_\-.]*$`)

// validFaults are Ironic's faults.VALID_FAULTS, the values of the ?fault= filter.
func validFaults() []string {
	return []string{"power failure", "clean failure", "rescue abort failure", "service failure"}
}

// needVersion is Ironic's NotAcceptable for a filter newer than the request, naming the version it needs.
func needVersion(version, min int) error {
	if version >= min {
		return nil
	}
	return &httpError{http.StatusNotAcceptable,
		fmt.Sprintf("Request not acceptable. The minimal required API version should be 1.%d", min)}
}

// fieldSince maps each node field to the microversion that introduced it.
func fieldSince() map[string]int {
	m := map[string]int{}
	for _, f := range nodeFields() {
		m[f.name] = f.since
	}
	return m
}

// rejectNewerBody is Ironic's reject_fields_in_newer_versions for a create body: a field of known (the fields a
// create takes at any version) newer than the request is 406 unless its value is empty (null, or "" for
// conductor_group). Other keys are left to applyDoc's 400, as Ironic's schema check comes first.
func rejectNewerBody(doc map[string]any, version int, known []string) error {
	since := fieldSince()
	for k, v := range doc {
		if !slices.Contains(known, k) || since[k] <= version || v == nil || (k == "conductor_group" && v == "") {
			continue
		}
		return notAcceptable()
	}
	return nil
}

// rejectNewerPatch is Ironic's reject_patch_in_newer_versions: an add or replace of a field of known (the
// patchable fields at any version) newer than the request is 406 (a remove carries no value and is judged by
// the allowed fields instead).
func rejectNewerPatch(ops []patchOp, version int, known []string) error {
	since := fieldSince()
	for _, op := range ops {
		if op.Op == "remove" || !slices.Contains(known, patchField(op.Path)) {
			continue
		}
		if s, ok := since[patchField(op.Path)]; ok && s > version {
			return notAcceptable()
		}
	}
	return nil
}

// patchField is the top-level node field a JSON Patch path names.
func patchField(path string) string {
	p := strings.TrimPrefix(path, "/")
	if i := strings.IndexByte(p, '/'); i >= 0 {
		p = p[:i]
	}
	return p
}

// patchValues returns the values the add and replace operations put at exactly path (Ironic's
// get_patch_values).
func patchValues(ops []patchOp, path string) []any {
	var out []any
	for _, op := range ops {
		if op.Path != path || op.Op == "remove" {
			continue
		}
		var v any
		if err := json.Unmarshal(op.Value, &v); err == nil {
			out = append(out, v)
		}
	}
	return out
}

// parseResetInterfaces reads PATCH's ?reset_interfaces= (1.45): nil when absent.
func parseResetInterfaces(q url.Values, version int) (*bool, error) {
	if !q.Has("reset_interfaces") {
		return nil, nil
	}
	if version < 45 {
		return nil, notAcceptable()
	}
	b, err := toBool("reset_interfaces", q.Get("reset_interfaces"))
	if err != nil {
		return nil, err
	}
	return &b, nil
}

// checkNodePatch is Ironic's _validate_patch: reset_interfaces only with a driver change, the description's
// length, and network_data's schema, before the node is even loaded.
func checkNodePatch(ops []patchOp, reset *bool) error {
	if reset != nil && len(patchValues(ops, "/driver")) == 0 {
		return badRequest("The reset_interfaces parameter can only be used when changing the node's driver.")
	}
	for _, d := range patchValues(ops, "/description") {
		if s, ok := d.(string); ok && len([]rune(s)) > maxDescription {
			return badRequest("Cannot update node with description exceeding %d characters", maxDescription)
		}
	}
	for _, nd := range patchValues(ops, "/network_data") {
		if err := validateNetworkData(nd); err != nil {
			return err
		}
	}
	return nil
}

// resetInterfaces empties every interface the PATCH did not set when the driver changed and reset_interfaces
// is true, so the engine resolves them to the new driver's defaults (Ironic's update_node with
// reset_interfaces).
func resetInterfaces(n *store.Node, prevDriver string, reset *bool, ops []patchOp) {
	if reset == nil || !*reset || n.Driver == prevDriver {
		return
	}
	set := map[string]bool{}
	for _, op := range ops {
		if f := patchField(op.Path); strings.HasSuffix(f, "_interface") {
			set[strings.TrimSuffix(f, "_interface")] = true
		}
	}
	for kind := range n.Interfaces {
		if !set[kind] {
			n.Interfaces[kind] = ""
		}
	}
}

// checkConductorGroup is Ironic's validate_conductor_group.
func checkConductorGroup(g string) error {
	if !conductorGroupRe.MatchString(g) {
		return badRequest("Expected a conductor group but received %s.", g)
	}
	return nil
}

// checkNetworkDataField is the node schema's network_data: null, an empty object, or a network_data.json
// document.
func checkNetworkDataField(v any) error {
	if m, ok := v.(map[string]any); v == nil || ok && len(m) == 0 {
		return nil
	}
	return validateNetworkData(v)
}
