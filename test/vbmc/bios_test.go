package vbmc

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBIOSResource: a System's Bios shows the default attributes; PATCHed settings stay pending (Bios/Settings)
// until the VM next starts, unknown attributes are refused, ResetBios restores the defaults at the next start,
// and the applied values survive a BMC restart (they are VM state). Before: Bios was a 404.
func TestBIOSResource(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{Username: "admin", Password: "pw", StateDir: dir, Runner: &fakeRunner{}}
	url, stop := startBMCWith(t, cfg)
	bios := url + "/redfish/v1/Systems/vm1/Bios"
	attr := func(u string) map[string]any {
		code, body := redfishDo(t, http.MethodGet, u, nil)
		require.Equal(t, 200, code)
		return body["Attributes"].(map[string]any)
	}
	assert.Equal(t, "Enabled", attr(bios)["ProcVirtualization"])

	code, _ := redfishDo(t, http.MethodPatch, bios+"/Settings", map[string]any{"Attributes": map[string]any{"ProcVirtualization": "Disabled"}})
	require.Equal(t, 204, code)
	assert.Equal(t, "Enabled", attr(bios)["ProcVirtualization"], "pending until the next start")
	assert.Equal(t, "Disabled", attr(bios + "/Settings")["ProcVirtualization"])
	code, body := redfishDo(t, http.MethodPatch, bios+"/Settings", map[string]any{"Attributes": map[string]any{"Colour": "red"}})
	assert.Equal(t, 400, code)
	assert.Contains(t, body["error"].(map[string]any)["message"], "unknown BIOS attributes: Colour")

	code, _ = resetVM(t, url, "vm1", "On")
	require.Equal(t, 204, code)
	assert.Equal(t, "Disabled", attr(bios)["ProcVirtualization"])
	assert.Empty(t, attr(bios+"/Settings"))

	stop()
	url, _ = startBMCWith(t, cfg)
	bios = url + "/redfish/v1/Systems/vm1/Bios"
	assert.Equal(t, "Disabled", attr(bios)["ProcVirtualization"], "kept across BMC restarts")

	code, _ = redfishDo(t, http.MethodPost, bios+"/Actions/Bios.ResetBios", map[string]any{})
	require.Equal(t, 204, code)
	code, _ = resetVM(t, url, "vm1", "ForceRestart")
	require.Equal(t, 204, code)
	assert.Equal(t, "Enabled", attr(bios)["ProcVirtualization"], "defaults after ResetBios and a restart")

	code, _ = redfishDo(t, http.MethodGet, url+"/redfish/v1/UpdateService/FirmwareInventory/vm2-BIOS", nil)
	assert.Equal(t, 404, code)
}
