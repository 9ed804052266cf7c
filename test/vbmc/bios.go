package vbmc

// A small BIOS and firmware inventory, so that the conductor's Redfish bios and firmware interfaces are tested
// against a BMC: each System has a Bios resource with a fixed set of attributes (GET), a Bios/Settings resource
// that takes PATCHed values and holds them pending until the VM next starts, and the service's UpdateService
// lists a BIOS and a BMC firmware entry per VM. OVMF has no such settings: the values are the BMC's own.

import (
	"encoding/json"
	"net/http"
	"sort"
	"strings"

	"github.com/gorilla/mux"
)

// Versions the virtual firmware reports: the System's BiosVersion, the Manager's FirmwareVersion and the
// FirmwareInventory entries.
const (
	biosVersion       = "OVMF-ferric-1.0"
	bmcVersion        = "ferric-vbmc-1.0"
	updateServicePath = "/redfish/v1/UpdateService"
)

// biosDefaults are the attributes every VM's BIOS starts with.
func biosDefaults() map[string]any {
	return map[string]any{"BootMode": "Uefi", "ProcVirtualization": "Enabled", "SecureBoot": "Disabled", "NumCores": 1}
}

// biosAttributes returns the VM's current attributes: the defaults overlaid with what earlier resets applied.
func biosAttributes(m *vm) map[string]any {
	out := biosDefaults()
	for k, v := range m.state.BIOS {
		out[k] = v
	}
	return out
}

// applyPendingBIOS moves the pending settings into the current ones; start calls it (with m.mu held), so a
// PATCH of Bios/Settings shows in Bios only after the next power on or restart, as on real hardware.
func applyPendingBIOS(m *vm) {
	if len(m.state.BIOSPending) == 0 {
		return
	}
	if m.state.BIOS == nil {
		m.state.BIOS = map[string]any{}
	}
	for k, v := range m.state.BIOSPending {
		m.state.BIOS[k] = v
	}
	m.state.BIOSPending = nil
}

// getBios serves Systems/{vm}/Bios: the current attributes. The BIOS handlers are called with m.mu held.
func (b *BMC) getBios(w http.ResponseWriter, _ *http.Request, m *vm, _ string) {
	id := "/redfish/v1/Systems/" + m.cfg.Name + "/Bios"
	writeJSON(w, 200, map[string]any{"@odata.id": id, "@odata.type": "#Bios.v1_1_0.Bios", "Id": "Bios", "Name": "BIOS",
		"Attributes":                 biosAttributes(m),
		"@Redfish.Settings":          map[string]any{"SettingsObject": odata(id + "/Settings")},
		"Actions":                    map[string]any{"#Bios.ResetBios": map[string]string{"target": id + "/Actions/Bios.ResetBios"}},
		"AttributeRegistry":          biosRegistryID,
		"ResetBiosToDefaultsPending": false})
}

// getBiosSettings serves Systems/{vm}/Bios/Settings: the pending attributes.
func (b *BMC) getBiosSettings(w http.ResponseWriter, _ *http.Request, m *vm, _ string) {
	pending := m.state.BIOSPending
	if pending == nil {
		pending = map[string]any{}
	}
	writeJSON(w, 200, map[string]any{"@odata.id": "/redfish/v1/Systems/" + m.cfg.Name + "/Bios/Settings", "@odata.type": "#Bios.v1_1_0.Bios",
		"Id": "Settings", "Name": "BIOS pending settings", "Attributes": pending})
}

// patchBiosSettings records pending attributes; an unknown attribute refuses the whole PATCH (400).
func (b *BMC) patchBiosSettings(w http.ResponseWriter, r *http.Request, m *vm, _ string) {
	var body struct{ Attributes map[string]any }
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		redfishError(w, 400, "malformed JSON: "+err.Error())
		return
	}
	known := biosDefaults()
	var unknown []string
	for k := range body.Attributes {
		if _, ok := known[k]; !ok {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		redfishError(w, 400, "unknown BIOS attributes: "+strings.Join(unknown, ", "))
		return
	}
	if m.state.BIOSPending == nil {
		m.state.BIOSPending = map[string]any{}
	}
	for k, v := range body.Attributes {
		m.state.BIOSPending[k] = v
	}
	b.save(m)
	w.WriteHeader(http.StatusNoContent)
}

// resetBios runs Bios.ResetBios (routed for every method, so that another one gets a 405 naming POST).
func (b *BMC) resetBios(w http.ResponseWriter, r *http.Request, m *vm, _ string) {
	if r.Method != http.MethodPost {
		redfishError(w, 405, "ResetBios takes POST")
		return
	}
	// Defaults apply at the next start, like any pending setting.
	m.state.BIOSPending = biosDefaults()
	b.save(m)
	w.WriteHeader(http.StatusNoContent)
}

// updateService serves the UpdateService. It and the FirmwareInventory list one BIOS and one BMC entry per VM;
// the VM list never changes while serving, so no lock is needed.
func (b *BMC) updateService(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, 200, map[string]any{"@odata.id": updateServicePath, "@odata.type": "#UpdateService.v1_8_0.UpdateService",
		"Id": "UpdateService", "Name": "Update service", "ServiceEnabled": false, "FirmwareInventory": odata(updateServicePath + "/FirmwareInventory")})
}

func (b *BMC) firmwareInventory(w http.ResponseWriter, _ *http.Request) {
	inv := updateServicePath + "/FirmwareInventory"
	var ms []string
	for _, n := range b.names() {
		ms = append(ms, inv+"/"+n+"-BIOS", inv+"/"+n+"-BMC")
	}
	writeJSON(w, 200, collection(inv, "Firmware inventory", ms))
}

// firmware serves one FirmwareInventory entry, <vm>-BIOS or <vm>-BMC.
func (b *BMC) firmware(w http.ResponseWriter, r *http.Request) {
	name := mux.Vars(r)["id"]
	for _, n := range b.names() {
		version, label := "", ""
		switch name {
		case n + "-BIOS":
			version, label = biosVersion, "BIOS"
		case n + "-BMC":
			version, label = bmcVersion, "BMC"
		default:
			continue
		}
		writeJSON(w, 200, map[string]any{"@odata.id": updateServicePath + "/FirmwareInventory/" + name,
			"@odata.type": "#SoftwareInventory.v1_2_0.SoftwareInventory",
			"Id":          name, "Name": label + " of " + n, "Version": version, "Updateable": false,
			"Status":      map[string]string{"State": "Enabled", "Health": "OK"},
			"RelatedItem": []any{odata("/redfish/v1/Systems/" + n)}})
		return
	}
	redfishError(w, 404, "no such firmware: "+name)
}
