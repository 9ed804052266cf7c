package vbmc

// A simulated RAID controller, so that the conductor's Redfish raid interface (Ironic's redfish RAID: Storage,
// Drives, Volumes) is tested against a BMC. A VM configured with raid_drives gets a second Storage member beside
// the virtio-blk one (hardware.go): one controller with SupportedRAIDTypes, that many Drives, and a Volumes
// collection that takes POST (create) and DELETE. The drives are NOT backed by disks the guest sees: this is a
// BMC simulation that holds real state (the volumes, their drives and sizes, checked as a controller checks them,
// and persisted with the VM's state), not a storage emulator. VMs without raid_drives keep a single Storage
// member, so out-of-band inspection of them is unchanged.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/gorilla/mux"
)

// raidStorageID is the Storage member id of the RAID controller (the "controller" of Ironic's raid_config).
const raidStorageID = "RAID.Integrated.1-1"

// Volume is one RAID volume on the VM's controller, as the BMC persists it.
type Volume struct {
	ID            string   `json:"id"`
	Name          string   `json:"name"`
	RAIDType      string   `json:"raid_type"`
	CapacityBytes int64    `json:"capacity_bytes"`
	Drives        []string `json:"drives"` // drive ids
}

// raidRule is what a RAID type asks of its drives: how many (min, max, even) and how many hold data.
type raidRule struct {
	min, max int
	even     bool
	data     func(n int) int
}

// raidRules are the RAID types the controller supports (SupportedRAIDTypes), with the usual drive rules.
var raidTypes = []string{"RAID0", "RAID1", "RAID5", "RAID6", "RAID10"}

func raidRuleOf(t string) (raidRule, bool) {
	r, ok := map[string]raidRule{
		"RAID0":  {min: 1, max: 32, data: func(n int) int { return n }},
		"RAID1":  {min: 2, max: 2, data: func(int) int { return 1 }},
		"RAID5":  {min: 3, max: 32, data: func(n int) int { return n - 1 }},
		"RAID6":  {min: 4, max: 32, data: func(n int) int { return n - 2 }},
		"RAID10": {min: 4, max: 32, even: true, data: func(n int) int { return n / 2 }},
	}[t]
	return r, ok
}

// raidDriveBytes is the size of each simulated drive: raid_drive_gib, else the size of the VM's disk.
func raidDriveBytes(m *vm) int64 {
	if m.cfg.RAIDDriveGiB > 0 {
		return int64(m.cfg.RAIDDriveGiB) << 30
	}
	return diskBytes(m)
}

// raidDriveIDs names the drives Disk.Bay.0 .. Disk.Bay.N-1.
func raidDriveIDs(m *vm) []string {
	out := make([]string, m.cfg.RAIDDrives)
	for i := range out {
		out[i] = fmt.Sprintf("Disk.Bay.%d", i)
	}
	return out
}

// perDriveBytes is what a volume takes from each of its drives: its capacity spread over the data drives.
func perDriveBytes(v Volume) int64 {
	r, ok := raidRuleOf(v.RAIDType)
	if !ok || len(v.Drives) == 0 {
		return 0
	}
	// Rounded up: a controller never books less than the volume needs.
	d := int64(r.data(len(v.Drives)))
	return (v.CapacityBytes + d - 1) / d
}

// freeBytes is the space of a drive no volume uses.
func freeBytes(m *vm, drive string) int64 {
	free := raidDriveBytes(m)
	for _, v := range m.state.Volumes {
		if slices.Contains(v.Drives, drive) {
			free -= perDriveBytes(v)
		}
	}
	return free
}

// storageRoutes registers the RAID controller's resources on the System's router (sys). A VM without
// raid_drives has no RAID controller: its Storage collection is the virtio-blk member alone (hardware()), as
// before RAID, and the controller's paths are 404s.
func (b *BMC) storageRoutes(sys *mux.Router, methodsGet []string) {
	ctrl := "/Storage/" + raidStorageID
	sys.Handle("/Storage", b.onVM(b.getStorage)).Methods(methodsGet...)
	sys.Handle(ctrl, b.onVM(raidOnly(b.getRAIDStorage))).Methods(methodsGet...)
	sys.Handle(ctrl+"/Drives/{drive}", b.onVM(raidOnly(b.getRAIDDrive))).Methods(methodsGet...)
	sys.Handle(ctrl+"/Volumes", b.onVM(raidOnly(b.listVolumes))).Methods(methodsGet...)
	sys.Handle(ctrl+"/Volumes", b.onVM(raidOnly(b.createVolume))).Methods(http.MethodPost)
	sys.Handle(ctrl+"/Volumes/{volume}", b.onVM(raidOnly(b.getVolume))).Methods(methodsGet...)
	sys.Handle(ctrl+"/Volumes/{volume}", b.onVM(raidOnly(b.deleteVolume))).Methods(http.MethodDelete)
}

// raidOnly answers 404 for a VM without a RAID controller.
func raidOnly(h vmHandler) vmHandler {
	return func(w http.ResponseWriter, r *http.Request, m *vm, sub string) {
		if m.cfg.RAIDDrives <= 0 {
			redfishError(w, 404, "no such resource")
			return
		}
		h(w, r, m, sub)
	}
}

// getStorage serves Systems/{vm}/Storage: the virtio-blk member, and the RAID controller when the VM has one.
func (b *BMC) getStorage(w http.ResponseWriter, r *http.Request, m *vm, sub string) {
	if m.cfg.RAIDDrives <= 0 {
		b.getHardware(w, r, m, sub)
		return
	}
	sys := "/redfish/v1/Systems/" + m.cfg.Name
	writeJSON(w, 200, collection(sys+"/Storage", "Storage", []string{sys + "/Storage/1", sys + "/Storage/" + raidStorageID}))
}

func (b *BMC) getRAIDStorage(w http.ResponseWriter, _ *http.Request, m *vm, _ string) {
	writeJSON(w, 200, b.raidStorage(m))
}

func (b *BMC) getRAIDDrive(w http.ResponseWriter, r *http.Request, m *vm, _ string) {
	id := mux.Vars(r)["drive"]
	if !slices.Contains(raidDriveIDs(m), id) {
		redfishError(w, 404, "no such drive: "+id)
		return
	}
	writeJSON(w, 200, raidDrive(m, id))
}

// listVolumes serves the controller's Volumes collection.
func (b *BMC) listVolumes(w http.ResponseWriter, _ *http.Request, m *vm, _ string) {
	base := "/redfish/v1/Systems/" + m.cfg.Name + "/Storage/" + raidStorageID + "/Volumes"
	var ids []string
	for _, v := range m.state.Volumes {
		ids = append(ids, base+"/"+v.ID)
	}
	c := collection(base, "Volumes", ids)
	// Immediate: a volume exists once POST answers, so clients need no reboot or task monitor.
	c["@Redfish.OperationApplyTimeSupport"] = map[string]any{"SupportedValues": []string{"Immediate"}}
	writeJSON(w, 200, c)
}

// raidStorage is the RAID controller's Storage resource.
func (b *BMC) raidStorage(m *vm) map[string]any {
	id := "/redfish/v1/Systems/" + m.cfg.Name + "/Storage/" + raidStorageID
	var drives []any
	for _, d := range raidDriveIDs(m) {
		drives = append(drives, odata(id+"/Drives/"+d))
	}
	return map[string]any{"@odata.id": id, "@odata.type": "#Storage.v1_9_0.Storage", "Id": raidStorageID,
		"Name": "RAID controller (simulated)", "Status": statusOK,
		"StorageControllers": []any{map[string]any{"@odata.id": id + "#/StorageControllers/0", "MemberId": "0",
			"Name": "Ferric simulated RAID", "Status": statusOK, "SupportedRAIDTypes": raidTypes,
			"SupportedControllerProtocols": []string{"PCIe"}, "SupportedDeviceProtocols": []string{"SATA"}}},
		"Drives": drives, "Drives@odata.count": len(drives), "Volumes": odata(id + "/Volumes")}
}

// raidDrive is one simulated drive, linked to the volumes that use it.
func raidDrive(m *vm, id string) map[string]any {
	base := "/redfish/v1/Systems/" + m.cfg.Name + "/Storage/" + raidStorageID
	vols := []any{}
	for _, v := range m.state.Volumes {
		if slices.Contains(v.Drives, id) {
			vols = append(vols, odata(base+"/Volumes/"+v.ID))
		}
	}
	return map[string]any{"@odata.id": base + "/Drives/" + id, "@odata.type": "#Drive.v1_9_0.Drive", "Id": id,
		"Name": "Simulated drive " + id, "Model": "Ferric simulated SSD", "CapacityBytes": raidDriveBytes(m),
		"MediaType": "SSD", "Protocol": "SATA", "SerialNumber": m.cfg.Name + "-" + id, "Status": statusOK,
		"Links": map[string]any{"Volumes": vols}}
}

// volumeJSON is a Volume resource.
func volumeJSON(m *vm, v Volume) map[string]any {
	base := "/redfish/v1/Systems/" + m.cfg.Name + "/Storage/" + raidStorageID
	var drives []any
	for _, d := range v.Drives {
		drives = append(drives, odata(base+"/Drives/"+d))
	}
	return map[string]any{"@odata.id": base + "/Volumes/" + v.ID, "@odata.type": "#Volume.v1_6_0.Volume", "Id": v.ID,
		"Name": v.Name, "RAIDType": v.RAIDType, "CapacityBytes": v.CapacityBytes, "Encrypted": false, "Status": statusOK,
		"Links": map[string]any{"Drives": drives, "Drives@odata.count": len(drives)}}
}

// volumeIndex finds the request's volume (volumes are few, a handful per VM: a linear search is enough), or
// answers 404 and returns -1.
func volumeIndex(w http.ResponseWriter, r *http.Request, m *vm) int {
	id := mux.Vars(r)["volume"]
	i := slices.IndexFunc(m.state.Volumes, func(v Volume) bool { return v.ID == id })
	if i < 0 {
		redfishError(w, 404, "no such volume: "+id)
	}
	return i
}

func (b *BMC) getVolume(w http.ResponseWriter, r *http.Request, m *vm, _ string) {
	if i := volumeIndex(w, r, m); i >= 0 {
		writeJSON(w, 200, volumeJSON(m, m.state.Volumes[i]))
	}
}

// deleteVolume removes a volume, which frees its drives.
func (b *BMC) deleteVolume(w http.ResponseWriter, r *http.Request, m *vm, _ string) {
	if i := volumeIndex(w, r, m); i >= 0 {
		m.state.Volumes = slices.Delete(m.state.Volumes, i, i+1)
		b.save(m)
		w.WriteHeader(http.StatusNoContent)
	}
}

// volumeRequest is the body of a volume create (what Ironic's redfish RAID sends).
type volumeRequest struct {
	Name          string
	RAIDType      string
	CapacityBytes *int64
	Links         struct {
		Drives []map[string]string
	}
}

// createVolume checks a create as a controller would (RAID type, drives of this controller, their count for
// the type, free space) and adds the volume; CapacityBytes absent means the most the drives allow.
func (b *BMC) createVolume(w http.ResponseWriter, r *http.Request, m *vm, _ string) {
	var req volumeRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		redfishError(w, 400, "malformed JSON: "+err.Error())
		return
	}
	v, msg := newVolume(m, req)
	if msg != "" {
		redfishError(w, 400, msg)
		return
	}
	// Saved at once, as every other BMC state change: a restarted ferric-vbmc still has the volume.
	m.state.Volumes = append(m.state.Volumes, v)
	b.save(m)
	res := volumeJSON(m, v)
	w.Header().Set("Location", res["@odata.id"].(string))
	writeJSON(w, http.StatusCreated, res)
}

// newVolume builds the volume a create asks for, or says why it cannot be built.
func newVolume(m *vm, req volumeRequest) (Volume, string) {
	rule, ok := raidRuleOf(req.RAIDType)
	if !ok {
		return Volume{}, fmt.Sprintf("RAIDType %q is not supported; supported: %s", req.RAIDType, strings.Join(raidTypes, ", "))
	}
	prefix := "/redfish/v1/Systems/" + m.cfg.Name + "/Storage/" + raidStorageID + "/Drives/"
	var drives []string
	for _, l := range req.Links.Drives {
		id, found := strings.CutPrefix(l["@odata.id"], prefix)
		if !found || !slices.Contains(raidDriveIDs(m), id) {
			return Volume{}, fmt.Sprintf("Links.Drives: %q is not a drive of this controller", l["@odata.id"])
		}
		if slices.Contains(drives, id) {
			return Volume{}, "Links.Drives: drive " + id + " is listed twice"
		}
		drives = append(drives, id)
	}
	n := len(drives)
	if n < rule.min || n > rule.max || (rule.even && n%2 != 0) {
		return Volume{}, fmt.Sprintf("%s needs %d to %d drives%s, not %d", req.RAIDType, rule.min, rule.max,
			map[bool]string{true: " (an even number)", false: ""}[rule.even], n)
	}
	// The smallest free space among the drives bounds the volume, as on a real controller.
	free := raidDriveBytes(m)
	for _, d := range drives {
		free = min(free, freeBytes(m, d))
	}
	most := free * int64(rule.data(n))
	v := Volume{ID: nextVolumeID(m), Name: req.Name, RAIDType: req.RAIDType, CapacityBytes: most, Drives: drives}
	if req.CapacityBytes != nil {
		if *req.CapacityBytes <= 0 || *req.CapacityBytes > most {
			return Volume{}, fmt.Sprintf("CapacityBytes %d does not fit: the drives have room for %d bytes of %s",
				*req.CapacityBytes, most, req.RAIDType)
		}
		v.CapacityBytes = *req.CapacityBytes
	}
	if v.CapacityBytes <= 0 {
		return Volume{}, "the drives have no free space left"
	}
	// Ironic sends Name only when the logical disk has a volume_name; controllers name the rest themselves.
	if v.Name == "" {
		v.Name = v.ID
	}
	return v, ""
}

// nextVolumeID is the first VolumeN not in use.
func nextVolumeID(m *vm) string {
	for i := 0; ; i++ {
		id := fmt.Sprintf("Volume%d", i)
		if !slices.ContainsFunc(m.state.Volumes, func(v Volume) bool { return v.ID == id }) {
			return id
		}
	}
}
