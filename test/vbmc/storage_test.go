package vbmc

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// raidVM is a VM with four simulated 1 GiB RAID drives.
func raidVM() VMConfig {
	return VMConfig{Name: "vm1", UUID: "6a6ea6a4-4b3b-4a43-9d2f-8f0c2b1a0001", DiskGiB: 1, RAIDDrives: 4}
}

// TestStorageRAIDController: a VM with raid_drives has a second Storage member, the RAID controller, with its
// supported RAID types and its drives (sized as the VM's disk); one without keeps the single virtio-blk member.
func TestStorageRAIDController(t *testing.T) {
	url, _ := startBMCWith(t, Config{Username: "admin", Password: "pw", StateDir: t.TempDir(), Runner: &fakeRunner{},
		VMs: []VMConfig{raidVM(), {Name: "vm2", UUID: "6a6ea6a4-4b3b-4a43-9d2f-8f0c2b1a0002", DiskGiB: 2}}})
	sys := url + "/redfish/v1/Systems/"
	code, coll := redfishDo(t, http.MethodGet, sys+"vm1/Storage", nil)
	require.Equal(t, 200, code)
	assert.EqualValues(t, 2, coll["Members@odata.count"])
	code, st := redfishDo(t, http.MethodGet, sys+"vm1/Storage/"+raidStorageID, nil)
	require.Equal(t, 200, code)
	ctrl := st["StorageControllers"].([]any)[0].(map[string]any)
	assert.Equal(t, []any{"RAID0", "RAID1", "RAID5", "RAID6", "RAID10"}, ctrl["SupportedRAIDTypes"])
	require.Len(t, st["Drives"], 4)
	code, d := redfishDo(t, http.MethodGet, sys+"vm1/Storage/"+raidStorageID+"/Drives/Disk.Bay.3", nil)
	require.Equal(t, 200, code)
	assert.EqualValues(t, 1<<30, d["CapacityBytes"])
	code, _ = redfishDo(t, http.MethodGet, sys+"vm1/Storage/"+raidStorageID+"/Drives/Disk.Bay.4", nil)
	assert.Equal(t, 404, code)
	code, _ = redfishDo(t, http.MethodGet, sys+"vm1/Storage/1/Drives/Disk0", nil)
	assert.Equal(t, 200, code, "the virtio-blk member is still served")

	code, coll = redfishDo(t, http.MethodGet, sys+"vm2/Storage", nil)
	require.Equal(t, 200, code)
	assert.EqualValues(t, 1, coll["Members@odata.count"])
	code, _ = redfishDo(t, http.MethodGet, sys+"vm2/Storage/"+raidStorageID, nil)
	assert.Equal(t, 404, code)
}

// TestStorageVolumes: volumes are created (POST) with a RAID type, drives and an optional size, checked as a
// controller checks them (type, drive count, free space, drives of this controller), deleted (DELETE), and kept
// across BMC restarts as VM state.
func TestStorageVolumes(t *testing.T) {
	cfg := Config{Username: "admin", Password: "pw", StateDir: t.TempDir(), Runner: &fakeRunner{}, VMs: []VMConfig{raidVM()}}
	url, stop := startBMCWith(t, cfg)
	vols := url + "/redfish/v1/Systems/vm1/Storage/" + raidStorageID + "/Volumes"
	drive := func(i string) map[string]string {
		return map[string]string{"@odata.id": "/redfish/v1/Systems/vm1/Storage/" + raidStorageID + "/Drives/Disk.Bay." + i}
	}
	body := func(typ string, size any, drives ...string) map[string]any {
		var ds []any
		for _, d := range drives {
			ds = append(ds, drive(d))
		}
		b := map[string]any{"RAIDType": typ, "Links": map[string]any{"Drives": ds}}
		if size != nil {
			b["CapacityBytes"] = size
		}
		return b
	}
	for name, tc := range map[string]struct {
		body map[string]any
		msg  string
	}{
		"unsupported type": {body("RAID3", nil, "0", "1", "2"), `RAIDType "RAID3" is not supported`},
		"RAID1 of three":   {body("RAID1", nil, "0", "1", "2"), "RAID1 needs 2 to 2 drives, not 3"},
		"RAID10 odd":       {body("RAID10", nil, "0", "1", "2"), "RAID10 needs 4 to 32 drives (an even number), not 3"},
		"too big":          {body("RAID1", 2<<30, "0", "1"), "does not fit"},
		"foreign drive":    {body("RAID0", nil, "9"), "is not a drive of this controller"},
		"drive twice":      {body("RAID1", nil, "0", "0"), "listed twice"},
	} {
		code, res := redfishDo(t, http.MethodPost, vols, tc.body)
		assert.Equal(t, 400, code, name)
		assert.Contains(t, res["error"].(map[string]any)["message"], tc.msg, name)
	}

	code, v := redfishDo(t, http.MethodPost, vols, body("RAID1", 512<<20, "0", "1"))
	require.Equal(t, 201, code, "%v", v)
	assert.Equal(t, "Volume0", v["Id"])
	assert.EqualValues(t, 512<<20, v["CapacityBytes"])
	// Without CapacityBytes the volume takes what the drives have left: 512 MiB on each of 0 and 1, plus 1 GiB of 2.
	code, v = redfishDo(t, http.MethodPost, vols, body("RAID5", nil, "0", "1", "2"))
	require.Equal(t, 201, code, "%v", v)
	assert.EqualValues(t, 2*(512<<20), v["CapacityBytes"])
	code, res := redfishDo(t, http.MethodPost, vols, body("RAID0", nil, "0"))
	assert.Equal(t, 400, code)
	assert.Contains(t, res["error"].(map[string]any)["message"], "no free space")

	code, coll := redfishDo(t, http.MethodGet, vols, nil)
	require.Equal(t, 200, code)
	assert.EqualValues(t, 2, coll["Members@odata.count"])
	assert.Equal(t, []any{"Immediate"}, coll["@Redfish.OperationApplyTimeSupport"].(map[string]any)["SupportedValues"])
	_, d := redfishDo(t, http.MethodGet, url+"/redfish/v1/Systems/vm1/Storage/"+raidStorageID+"/Drives/Disk.Bay.0", nil)
	assert.Len(t, d["Links"].(map[string]any)["Volumes"], 2)

	stop()
	url, _ = startBMCWith(t, cfg)
	vols = url + "/redfish/v1/Systems/vm1/Storage/" + raidStorageID + "/Volumes"
	code, v = redfishDo(t, http.MethodGet, vols+"/Volume1", nil)
	require.Equal(t, 200, code, "kept across BMC restarts")
	assert.Equal(t, "RAID5", v["RAIDType"])
	assert.Len(t, v["Links"].(map[string]any)["Drives"], 3)

	code, _ = redfishDo(t, http.MethodDelete, vols+"/Volume0", nil)
	assert.Equal(t, 204, code)
	code, _ = redfishDo(t, http.MethodDelete, vols+"/Volume0", nil)
	assert.Equal(t, 404, code)
	code, v = redfishDo(t, http.MethodPost, vols, body("RAID1", nil, "0", "3"))
	require.Equal(t, 201, code, "%v", v)
	assert.Equal(t, "Volume0", v["Id"], "the freed id is used again")
	assert.EqualValues(t, 512<<20, v["CapacityBytes"], "drive 0 has what Volume0 freed, 512 MiB")
}

// TestBIOSAttributeRegistry: the Bios names its AttributeRegistry, found through the service root's Registries
// as clients find it, and the registry describes every attribute.
func TestBIOSAttributeRegistry(t *testing.T) {
	url, _ := startBMCWith(t, Config{Username: "admin", Password: "pw", StateDir: t.TempDir(), Runner: &fakeRunner{}})
	_, bios := redfishDo(t, http.MethodGet, url+"/redfish/v1/Systems/vm1/Bios", nil)
	assert.Equal(t, biosRegistryID, bios["AttributeRegistry"])
	_, root := redfishDo(t, http.MethodGet, url+"/redfish/v1", nil)
	assert.Equal(t, registriesPath, root["Registries"].(map[string]any)["@odata.id"])
	code, coll := redfishDo(t, http.MethodGet, url+registriesPath, nil)
	require.Equal(t, 200, code)
	file := coll["Members"].([]any)[0].(map[string]any)["@odata.id"].(string)
	code, f := redfishDo(t, http.MethodGet, url+file, nil)
	require.Equal(t, 200, code)
	assert.Equal(t, biosRegistryID, f["Registry"])
	uri := f["Location"].([]any)[0].(map[string]any)["Uri"].(string)
	code, reg := redfishDo(t, http.MethodGet, url+uri, nil)
	require.Equal(t, 200, code)
	attrs := reg["RegistryEntries"].(map[string]any)["Attributes"].([]any)
	names := map[string]bool{}
	for _, a := range attrs {
		names[a.(map[string]any)["AttributeName"].(string)] = true
	}
	for k := range biosDefaults() {
		assert.True(t, names[k], "registry entry for %s", k)
	}
	code, _ = redfishDo(t, http.MethodGet, url+registriesPath+"/Other", nil)
	assert.Equal(t, 404, code)
}
