package vbmc

import (
	"encoding/json"
	"errors"
	"net/http"
	"sort"

	"github.com/gorilla/mux"
)

// odata is a Redfish navigation link: an object holding only the @odata.id of the resource it points at.
func odata(id string) map[string]string { return map[string]string{"@odata.id": id} }

// writeJSON answers with v as JSON and the OData-Version header the Redfish specification asks of services.
// An encoding error is not reported: the status line is already out.
func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("OData-Version", "4.0")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// redfishError answers in the Redfish error format (error.code, error.message and @Message.ExtendedInfo), which
// sushy and gofish parse to show the BMC's message in the error they raise; msg reaches the client as is, so it
// must not carry secrets.
func redfishError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]any{"error": map[string]any{"code": "Base.1.8.GeneralError", "message": msg,
		"@Message.ExtendedInfo": []any{map[string]string{"MessageId": "Base.1.8.GeneralError", "Message": msg}}}})
}

// names lists the VMs sorted by name, so that collections list their members in a stable order. b.vms never
// changes after Run filled it, so no lock is taken.
func (b *BMC) names() []string {
	var out []string
	for n := range b.vms {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// system builds the ComputerSystem resource of a VM: power state from whether its process runs, the boot override
// from its saved state (UEFI the only mode: the VMs boot OVMF), and the hardware summaries (hardware.go).
// Called with m.mu held.
func (b *BMC) system(m *vm) map[string]any {
	id := "/redfish/v1/Systems/" + m.cfg.Name
	power := "Off"
	if m.running() {
		power = "On"
	}
	sys := map[string]any{
		"@odata.id": id, "@odata.type": "#ComputerSystem.v1_13_0.ComputerSystem", "Id": m.cfg.Name, "Name": m.cfg.Name,
		"UUID": m.cfg.UUID, "Manufacturer": "Ferric", "Model": "QEMU q35 (OVMF)", "SystemType": "Virtual",
		"PowerState": power, "Status": map[string]string{"State": "Enabled", "Health": "OK"},
		"Boot": map[string]any{"BootSourceOverrideTarget": m.state.BootTarget, "BootSourceOverrideEnabled": m.state.BootEnabled,
			"BootSourceOverrideMode":                           m.state.BootMode,
			"BootSourceOverrideTarget@Redfish.AllowableValues": []string{"None", "Pxe", "Cd", "Hdd"},
			"BootSourceOverrideMode@Redfish.AllowableValues":   []string{"UEFI"}},
		"Actions": map[string]any{"#ComputerSystem.Reset": map[string]any{"target": id + "/Actions/ComputerSystem.Reset",
			"ResetType@Redfish.AllowableValues": []string{"On", "ForceOff", "GracefulShutdown", "ForceRestart", "GracefulRestart"}}},
		"VirtualMedia": odata("/redfish/v1/Managers/" + m.cfg.Name + "/VirtualMedia"),
		"Bios":         odata(id + "/Bios"), "BiosVersion": biosVersion,
		"Links": map[string]any{"ManagedBy": []any{odata("/redfish/v1/Managers/" + m.cfg.Name)},
			"Chassis": []any{odata("/redfish/v1/Chassis/" + m.cfg.Name)}},
	}
	b.hardwareSummary(m, sys)
	return sys
}

// media builds the Cd VirtualMedia resource: Image is null (not "") while nothing is inserted, and ConnectedVia
// says URI once an image is in. Called with m.mu held.
func (b *BMC) media(m *vm) map[string]any {
	id := "/redfish/v1/Managers/" + m.cfg.Name + "/VirtualMedia/Cd"
	via := "NotConnected"
	if m.state.MediaPresent {
		via = "URI"
	}
	var image any
	if m.state.MediaPresent {
		image = m.state.MediaImage
	}
	return map[string]any{"@odata.id": id, "@odata.type": "#VirtualMedia.v1_3_0.VirtualMedia", "Id": "Cd", "Name": "Virtual CD",
		"MediaTypes": []string{"CD", "DVD"}, "Image": image, "Inserted": m.state.MediaPresent, "WriteProtected": true,
		"ConnectedVia": via,
		"Actions": map[string]any{"#VirtualMedia.InsertMedia": map[string]string{"target": id + "/Actions/VirtualMedia.InsertMedia"},
			"#VirtualMedia.EjectMedia": map[string]string{"target": id + "/Actions/VirtualMedia.EjectMedia"}}}
}

// collection builds a Redfish resource collection of links to members.
func collection(id, name string, members []string) map[string]any {
	var ms []any
	for _, m := range members {
		ms = append(ms, odata(m))
	}
	// An empty collection must still carry "Members": [] (not null): clients iterate over it.
	if ms == nil {
		ms = []any{}
	}
	return map[string]any{"@odata.id": id, "Name": name, "Members": ms, "Members@odata.count": len(ms)}
}

// ServeHTTP serves the Redfish API through the router that Run builds (routes.go).
func (b *BMC) ServeHTTP(w http.ResponseWriter, r *http.Request) { b.router.ServeHTTP(w, r) }

// versions serves /redfish (any method, public): the protocol versions document.
func (b *BMC) versions(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, 200, map[string]string{"v1": "/redfish/v1/"})
}

// serviceRoot serves GET /redfish/v1 (public, as Redfish requires: clients discover the service before login).
func (b *BMC) serviceRoot(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, 200, map[string]any{"@odata.id": "/redfish/v1/", "@odata.type": "#ServiceRoot.v1_5_0.ServiceRoot",
		"Id": "RootService", "Name": "Ferric virtual BMC", "RedfishVersion": "1.11.0", "UUID": "00000000-0000-0000-0000-00000000f3c1",
		"Systems": odata("/redfish/v1/Systems"), "Managers": odata("/redfish/v1/Managers"), "Chassis": odata("/redfish/v1/Chassis"),
		"SessionService": odata("/redfish/v1/SessionService"), "UpdateService": odata(updateServicePath),
		"Registries": odata(registriesPath), "Links": map[string]any{"Sessions": odata(sessionsPath)}})
}

// vmCollection serves the Systems, Managers and Chassis collections: one member per VM, whatever the kind.
func (b *BMC) vmCollection(w http.ResponseWriter, r *http.Request) {
	kind := mux.Vars(r)["kind"]
	var ms []string
	for _, n := range b.names() {
		ms = append(ms, "/redfish/v1/"+kind+"/"+n)
	}
	writeJSON(w, 200, collection("/redfish/v1/"+kind, kind, ms))
}

// getSystem serves GET on a System (m.mu held by onVM).
func (b *BMC) getSystem(w http.ResponseWriter, _ *http.Request, m *vm, _ string) {
	writeJSON(w, 200, b.system(m))
}

// resetSystem runs ComputerSystem.Reset: 400 for a ResetType it does not know, 500 when the VM did not start or
// QEMU did not take the power button.
func (b *BMC) resetSystem(w http.ResponseWriter, r *http.Request, m *vm, _ string) {
	var body struct{ ResetType string }
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		redfishError(w, 400, "malformed JSON: "+err.Error())
		return
	}
	if err := b.reset(m, body.ResetType); err != nil {
		code := http.StatusInternalServerError
		if errors.Is(err, errBadRequest) {
			code = http.StatusBadRequest
		}
		b.log.WithError(err).WithField("vm", m.cfg.Name).WithField("reset", body.ResetType).Warn("reset failed")
		redfishError(w, code, err.Error())
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// getHardware serves the System's hardware resources (hardware.go); a path it does not know is a 404.
func (b *BMC) getHardware(w http.ResponseWriter, _ *http.Request, m *vm, sub string) {
	res, ok := b.hardware(m, sub)
	if !ok {
		redfishError(w, 404, "no such resource")
		return
	}
	writeJSON(w, 200, res)
}

// getManager serves GET on a VM's Manager: the BMC itself, which links the VM's VirtualMedia (where sushy and
// gofish look for it) and the System it manages.
func (b *BMC) getManager(w http.ResponseWriter, _ *http.Request, m *vm, _ string) {
	writeJSON(w, 200, map[string]any{"@odata.id": "/redfish/v1/Managers/" + m.cfg.Name, "@odata.type": "#Manager.v1_10_0.Manager",
		"Id": m.cfg.Name, "Name": "Virtual BMC of " + m.cfg.Name, "ManagerType": "BMC", "FirmwareVersion": bmcVersion, "Status": map[string]string{"State": "Enabled", "Health": "OK"},
		"VirtualMedia": odata("/redfish/v1/Managers/" + m.cfg.Name + "/VirtualMedia"),
		"Links":        map[string]any{"ManagerForServers": []any{odata("/redfish/v1/Systems/" + m.cfg.Name)}}})
}

// listVirtualMedia lists the two media slots of a VM: Cd (media.go) and Usb (usb.go), which Ironic's redfish
// virtual media boot picks by device type (cdrom or disk).
func (b *BMC) listVirtualMedia(w http.ResponseWriter, _ *http.Request, m *vm, _ string) {
	writeJSON(w, 200, collection("/redfish/v1/Managers/"+m.cfg.Name+"/VirtualMedia", "Virtual Media", []string{"/redfish/v1/Managers/" + m.cfg.Name + "/VirtualMedia/Cd", "/redfish/v1/Managers/" + m.cfg.Name + "/VirtualMedia/Usb"}))
}

// getVirtualMedia serves GET on the Cd slot.
func (b *BMC) getVirtualMedia(w http.ResponseWriter, _ *http.Request, m *vm, _ string) {
	writeJSON(w, 200, b.media(m))
}

// getChassis serves a minimal Chassis: clients follow the System's Links.Chassis and expect a resource there.
func (b *BMC) getChassis(w http.ResponseWriter, _ *http.Request, m *vm, _ string) {
	writeJSON(w, 200, map[string]any{"@odata.id": "/redfish/v1/Chassis/" + m.cfg.Name, "@odata.type": "#Chassis.v1_10_0.Chassis",
		"Id": m.cfg.Name, "Name": m.cfg.Name, "ChassisType": "RackMount",
		"Links": map[string]any{"ComputerSystems": []any{odata("/redfish/v1/Systems/" + m.cfg.Name)}}})
}

// patchBoot applies a PATCH of the System's Boot override (target, enabled, mode). Called with m.mu held.
func (b *BMC) patchBoot(w http.ResponseWriter, r *http.Request, m *vm, _ string) {
	var body struct {
		Boot map[string]string
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		redfishError(w, 400, "malformed JSON: "+err.Error())
		return
	}
	// A refused property ends the request with 400 before the save; properties handled before it (in map order)
	// stay changed in memory only.
	for k, v := range body.Boot {
		switch k {
		case "BootSourceOverrideTarget":
			if v != "None" && v != "Pxe" && v != "Cd" && v != "Hdd" {
				redfishError(w, 400, "BootSourceOverrideTarget "+v+" is not supported; use None, Pxe, Cd or Hdd")
				return
			}
			m.state.BootTarget = v
		case "BootSourceOverrideEnabled":
			if v != "Disabled" && v != "Once" && v != "Continuous" {
				redfishError(w, 400, "BootSourceOverrideEnabled "+v+" is not supported")
				return
			}
			m.state.BootEnabled = v
		case "BootSourceOverrideMode":
			// OVMF has no legacy BIOS (CSM), so a Legacy request is refused rather than silently ignored.
			if v != "UEFI" {
				redfishError(w, 400, "only UEFI boot is supported (OVMF)")
				return
			}
			m.state.BootMode = v
		default:
			redfishError(w, 400, "property Boot."+k+" is not supported")
			return
		}
	}
	// The override persists: a BMC restart keeps it, as a real BMC keeps it across its own reboot.
	b.save(m)
	w.WriteHeader(http.StatusNoContent)
}
