package vbmc

import (
	"encoding/json"
	"errors"
	"net/http"
	"sort"
	"strings"
)

func odata(id string) map[string]string { return map[string]string{"@odata.id": id} }

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("OData-Version", "4.0")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func redfishError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]any{"error": map[string]any{"code": "Base.1.8.GeneralError", "message": msg,
		"@Message.ExtendedInfo": []any{map[string]string{"MessageId": "Base.1.8.GeneralError", "Message": msg}}}})
}

func (b *BMC) names() []string {
	var out []string
	for n := range b.vms {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

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

func collection(id, name string, members []string) map[string]any {
	var ms []any
	for _, m := range members {
		ms = append(ms, odata(m))
	}
	if ms == nil {
		ms = []any{}
	}
	return map[string]any{"@odata.id": id, "Name": name, "Members": ms, "Members@odata.count": len(ms)}
}

// ServeHTTP routes the Redfish API. The service root and session login are public; everything else needs HTTP
// Basic credentials or a session's X-Auth-Token. Requests about a VM hold that VM's lock only.
func (b *BMC) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimSuffix(r.URL.Path, "/")
	if path == sessionsPath && r.Method == http.MethodPost {
		b.login(w, r)
		return
	}
	if path != "/redfish/v1" && path != "/redfish" && !b.authenticated(r) {
		w.Header().Set("WWW-Authenticate", `Basic realm="ferric-vbmc"`)
		redfishError(w, http.StatusUnauthorized, "authentication required: HTTP Basic, or X-Auth-Token of a live session (POST "+sessionsPath+")")
		return
	}
	parts := strings.Split(strings.TrimPrefix(path, "/redfish/v1"), "/")
	get := r.Method == http.MethodGet || r.Method == http.MethodHead
	switch {
	case path == "/redfish":
		writeJSON(w, 200, map[string]string{"v1": "/redfish/v1/"})
	case path == "/redfish/v1" && get:
		writeJSON(w, 200, map[string]any{"@odata.id": "/redfish/v1/", "@odata.type": "#ServiceRoot.v1_5_0.ServiceRoot",
			"Id": "RootService", "Name": "Ferric virtual BMC", "RedfishVersion": "1.11.0", "UUID": "00000000-0000-0000-0000-00000000f3c1",
			"Systems": odata("/redfish/v1/Systems"), "Managers": odata("/redfish/v1/Managers"), "Chassis": odata("/redfish/v1/Chassis"),
			"SessionService": odata("/redfish/v1/SessionService"), "UpdateService": odata(updateServicePath),
			"Links": map[string]any{"Sessions": odata(sessionsPath)}})
	case len(parts) >= 2 && parts[1] == "SessionService":
		b.sessionService(w, r, path)
	case len(parts) >= 2 && parts[1] == "UpdateService" && get:
		b.updateService(w, path)
	case len(parts) == 2 && get:
		var ms []string
		for _, n := range b.names() {
			ms = append(ms, "/redfish/v1/"+parts[1]+"/"+n)
		}
		switch parts[1] {
		case "Systems", "Managers", "Chassis":
			writeJSON(w, 200, collection("/redfish/v1/"+parts[1], parts[1], ms))
		default:
			redfishError(w, 404, "no such resource")
		}
	default:
		if len(parts) < 3 {
			redfishError(w, 404, "no such resource")
			return
		}
		m, ok := b.vms[parts[2]]
		if !ok {
			redfishError(w, 404, "no such resource: "+parts[2])
			return
		}
		m.mu.Lock()
		defer m.mu.Unlock()
		b.resource(w, r, m, parts[1], parts[3:], get)
	}
}

func (b *BMC) resource(w http.ResponseWriter, r *http.Request, m *vm, kind string, rest []string, get bool) {
	sub := strings.Join(rest, "/")
	switch {
	case kind == "Systems" && sub == "" && get:
		writeJSON(w, 200, b.system(m))
	case kind == "Systems" && sub == "" && r.Method == http.MethodPatch:
		b.patchBoot(w, r, m)
	case kind == "Systems" && sub == "Actions/ComputerSystem.Reset" && r.Method == http.MethodPost:
		var body struct{ ResetType string }
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			redfishError(w, 400, "malformed JSON: "+err.Error())
			return
		}
		if err := b.reset(m, body.ResetType); err != nil {
			code := http.StatusInternalServerError // the VM did not start, or QEMU did not take the power button
			if errors.Is(err, errBadRequest) {
				code = http.StatusBadRequest
			}
			b.log.WithError(err).WithField("vm", m.cfg.Name).WithField("reset", body.ResetType).Warn("reset failed")
			redfishError(w, code, err.Error())
			return
		}
		w.WriteHeader(http.StatusNoContent)
	case kind == "Systems" && strings.HasPrefix(sub, "Bios"):
		b.bios(w, r, m, sub)
	case kind == "Systems" && get:
		res, ok := b.hardware(m, sub)
		if !ok {
			redfishError(w, 404, "no such resource")
			return
		}
		writeJSON(w, 200, res)
	case kind == "Managers" && sub == "" && get:
		writeJSON(w, 200, map[string]any{"@odata.id": "/redfish/v1/Managers/" + m.cfg.Name, "@odata.type": "#Manager.v1_10_0.Manager",
			"Id": m.cfg.Name, "Name": "Virtual BMC of " + m.cfg.Name, "ManagerType": "BMC", "FirmwareVersion": bmcVersion, "Status": map[string]string{"State": "Enabled", "Health": "OK"},
			"VirtualMedia": odata("/redfish/v1/Managers/" + m.cfg.Name + "/VirtualMedia"),
			"Links":        map[string]any{"ManagerForServers": []any{odata("/redfish/v1/Systems/" + m.cfg.Name)}}})
	case kind == "Managers" && sub == "VirtualMedia" && get:
		writeJSON(w, 200, collection("/redfish/v1/Managers/"+m.cfg.Name+"/VirtualMedia", "Virtual Media", []string{"/redfish/v1/Managers/" + m.cfg.Name + "/VirtualMedia/Cd", "/redfish/v1/Managers/" + m.cfg.Name + "/VirtualMedia/Usb"}))
	case kind == "Managers" && sub == "VirtualMedia/Cd" && get:
		writeJSON(w, 200, b.media(m))
	case kind == "Managers" && sub == "VirtualMedia/Cd/Actions/VirtualMedia.InsertMedia" && r.Method == http.MethodPost:
		var body struct{ Image string }
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			redfishError(w, 400, "malformed JSON: "+err.Error())
			return
		}
		if code, msg := b.insertMedia(r, m, body.Image); code != 0 {
			redfishError(w, code, msg)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	case kind == "Managers" && sub == "VirtualMedia/Cd/Actions/VirtualMedia.EjectMedia" && r.Method == http.MethodPost:
		m.state.MediaPresent, m.state.MediaImage = false, ""
		b.save(m)
		w.WriteHeader(http.StatusNoContent)
	case kind == "Managers" && strings.HasPrefix(sub, "VirtualMedia/Usb"):
		b.usbMedia(w, r, m, strings.TrimPrefix(sub, "VirtualMedia/Usb"))
	case kind == "Chassis" && sub == "" && get:
		writeJSON(w, 200, map[string]any{"@odata.id": "/redfish/v1/Chassis/" + m.cfg.Name, "@odata.type": "#Chassis.v1_10_0.Chassis",
			"Id": m.cfg.Name, "Name": m.cfg.Name, "ChassisType": "RackMount",
			"Links": map[string]any{"ComputerSystems": []any{odata("/redfish/v1/Systems/" + m.cfg.Name)}}})
	default:
		redfishError(w, 404, "no such resource")
	}
}

// patchBoot applies a PATCH of the System's Boot override (target, enabled, mode). Called with m.mu held.
func (b *BMC) patchBoot(w http.ResponseWriter, r *http.Request, m *vm) {
	var body struct {
		Boot map[string]string
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		redfishError(w, 400, "malformed JSON: "+err.Error())
		return
	}
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
	b.save(m)
	w.WriteHeader(http.StatusNoContent)
}
