package api

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/ferric-metal/ferric/conductor/internal/engine"
	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// continueInspectionVersion is the microversion of Ironic's built-in continue_inspection (1.84). 1.1 (no version
// header) is accepted too, answering only {"uuid": ...}, as Ironic does for ironic-inspector's ramdisks.
const continueInspectionVersion = 84

// continueInspection serves POST /v1/continue_inspection for agents booted for in-band inspection (public, as
// Ironic's acl_public_routes make it: the agent has no credentials yet). The body is IPA's inspection data: an
// "inventory" object (interfaces with MACs, cpu, memory, disks, ...) and anything else, which becomes the node's
// plugin data. Anyone on the provisioning network can post, so: the body is capped at 1 MiB, the inventory is
// checked before any look-up (400 naming the field), and every look-up failure (unknown MACs, a node not in
// "inspect wait", MACs of another node) is the same 404 (engine.ContinueInspection). The answer is 202 with the
// lookup-shaped node and agent configuration (token once), or {"uuid": ...} at 1.1.
func (s *Server) continueInspection(w http.ResponseWriter, r *http.Request) {
	version := versionOf(r)
	nodeUUID := r.URL.Query().Get("node_uuid")
	if (version != 1 && version < continueInspectionVersion) || (nodeUUID != "" && version < continueInspectionVersion) {
		s.writeError(w, r, notFound("API version 1.%d or newer is required", continueInspectionVersion))
		return
	}
	if nodeUUID != "" && !isUUID(nodeUUID) {
		s.writeError(w, r, badRequest("Invalid node_uuid %q: expected a UUID", nodeUUID))
		return
	}
	var body map[string]any
	if err := decodeBody(w, r, maxBody, &body); err != nil {
		s.writeError(w, r, err)
		return
	}
	d, err := inspectionData(body)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	d.NodeUUID = nodeUUID
	if len(d.MACs) == 0 && len(d.BMCAddresses) == 0 && nodeUUID == "" {
		s.writeError(w, r, badRequest("No lookup information provided"))
		return
	}
	res, err := s.eng.ContinueInspection(r.Context(), d)
	if err != nil {
		if errors.Is(err, engine.ErrLookupNotFound) || errors.Is(err, store.ErrNotFound) {
			err = notFound("Resource could not be found.")
		}
		s.writeError(w, r, err)
		return
	}
	// ironic-inspector's ramdisks (no version header) only read the UUID.
	if version < continueInspectionVersion {
		out := newOrdered()
		out.set("uuid", res.Node.UUID)
		writeJSON(w, http.StatusAccepted, out)
		return
	}
	out := s.agentNodeBody(res, version)
	if cfg, ok := out.vals["config"].(*ordered); ok {
		// Ferric's agent powers off at once when the conductor will (IPA ignores the key).
		cfg.set("ferric_inspection_power_off", s.eng.InspectionPowersOff(res.Node))
	}
	writeJSON(w, http.StatusAccepted, out)
}

// inspectionData checks a continue_inspection body against Ironic's minimal inventory schema, plus what the
// conductor needs to set the node's properties: inventory.interfaces (at least one, each with a mac_address),
// inventory.cpu with count and architecture, inventory.memory with physical_mb or total. A failure names the
// field (400). Interfaces whose MAC is not a MAC are skipped for the look-up, as Ironic skips them.
func inspectionData(body map[string]any) (engine.InspectionData, error) {
	var d engine.InspectionData
	invRaw, ok := body["inventory"]
	if !ok {
		return d, badRequest("Invalid inspection data: \"inventory\" is a required property")
	}
	inv, ok := invRaw.(map[string]any)
	if !ok {
		return d, badRequest("Invalid inspection data: \"inventory\" must be an object")
	}
	ifaces, ok := inv["interfaces"].([]any)
	if !ok || len(ifaces) == 0 {
		return d, badRequest("Invalid inspection data: \"inventory.interfaces\" must be a non-empty list of the node's NICs")
	}
	for i, x := range ifaces {
		ifc, ok := x.(map[string]any)
		if !ok {
			return d, badRequest("Invalid inspection data: \"inventory.interfaces[%d]\" must be an object", i)
		}
		mac, ok := ifc["mac_address"].(string)
		if !ok {
			return d, badRequest("Invalid inspection data: \"inventory.interfaces[%d].mac_address\" is a required string", i)
		}
		// A malformed MAC is skipped for the look-up (Ironic's get_valid_mac_addresses), not refused: real
		// inventories carry InfiniBand and other odd link addresses.
		if m, err := normalizeMAC(mac); err == nil {
			d.MACs = append(d.MACs, m)
		}
	}
	// Ironic's schema stops at the interfaces; Ferric also needs what the node's properties come from. Refusing
	// here answers the agent with the field it lacks, instead of an inspection that fails later on the conductor.
	if err := requireNumbers(inv, "cpu", [][]string{{"count"}}); err != nil {
		return d, err
	}
	if cpu, _ := inv["cpu"].(map[string]any); cpu["architecture"] == nil || cpu["architecture"] == "" {
		return d, badRequest("Invalid inspection data: \"inventory.cpu.architecture\" is required")
	}
	if err := requireNumbers(inv, "memory", [][]string{{"physical_mb", "total"}}); err != nil {
		return d, err
	}
	for _, k := range []string{"bmc_address", "bmc_v6address"} {
		if v, ok := inv[k]; ok && v != nil {
			a, ok := v.(string)
			if !ok {
				return d, badRequest("Invalid inspection data: \"inventory.%s\" must be a string or null", k)
			}
			if engine.UsefulBMCAddress(a) {
				d.BMCAddresses = append(d.BMCAddresses, a)
			}
		}
	}
	d.Inventory = inv
	// Everything beside the inventory is plugin data, as in Ironic (root_disk, boot_interface, error, ...).
	d.PluginData = map[string]any{}
	for k, v := range body {
		if k != "inventory" {
			d.PluginData[k] = v
		}
	}
	return d, nil
}

// requireNumbers checks that inventory.<obj> is an object with, for each group of keys, one of them a positive
// number; the message names the first key of the group.
func requireNumbers(inv map[string]any, obj string, groups [][]string) error {
	o, ok := inv[obj].(map[string]any)
	if !ok {
		return badRequest("Invalid inspection data: \"inventory.%s\" is a required object", obj)
	}
	for _, keys := range groups {
		found := false
		for _, k := range keys {
			if v, ok := o[k].(float64); ok && v > 0 {
				found = true
			}
		}
		if !found {
			alt := ""
			if len(keys) > 1 {
				alt = fmt.Sprintf(" (or %q)", keys[1])
			}
			return badRequest("Invalid inspection data: \"inventory.%s.%s\"%s must be a positive number", obj, keys[0], alt)
		}
	}
	return nil
}
