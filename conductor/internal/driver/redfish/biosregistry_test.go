package redfish_test

import (
	"context"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/conductor/internal/driver/redfish"
	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// settingsByName reads a node's BIOS settings through the redfish bios interface.
func settingsByName(t *testing.T, n *store.Node) map[string]store.BIOSSetting {
	settings, err := (&redfish.BIOS{Driver: &redfish.Driver{}}).Settings(context.Background(), n)
	require.NoError(t, err)
	out := map[string]store.BIOSSetting{}
	for _, s := range settings {
		out[s.Name] = s
	}
	return out
}

// TestRedfishBIOSRegistryAgainstVBMC: each setting takes its entry of ferric-vbmc's BIOS attribute registry, found
// through the service root's Registries as Ironic (sushy) finds it. Before: the registry fields were always null.
func TestRedfishBIOSRegistryAgainstVBMC(t *testing.T) {
	got := settingsByName(t, vbmcNode(startVBMC(t)))
	i := func(v int) *int { return &v }
	b := func(v bool) *bool { return &v }
	boot := got["BootMode"]
	assert.Equal(t, "Enumeration", boot.AttributeType)
	assert.Equal(t, []string{"Uefi", "Bios"}, boot.AllowableValues)
	assert.Equal(t, b(false), boot.ReadOnly)
	assert.Equal(t, b(true), boot.ResetRequired)
	assert.Equal(t, b(false), boot.Unique)
	assert.Nil(t, boot.LowerBound)
	cores := got["NumCores"]
	assert.Equal(t, "Integer", cores.AttributeType)
	assert.Equal(t, i(1), cores.LowerBound)
	assert.Equal(t, i(64), cores.UpperBound)
	assert.Equal(t, b(true), cores.ReadOnly)
	assert.Nil(t, cores.AllowableValues)
}

// TestRedfishBIOSRegistryPartial: a setting the registry does not describe keeps null registry fields; values
// named only by ValueDisplayName are taken by it; string lengths come through; a BMC whose registry cannot be
// read gives the settings without registry fields rather than failing (as Ironic).
func TestRedfishBIOSRegistryPartial(t *testing.T) {
	h := newHardwareBMC()
	root := h["/redfish/v1"].(map[string]any)
	root["Registries"] = ref("/redfish/v1/Registries")
	h[sys].(map[string]any)["Bios"] = ref(sys + "/Bios")
	h[sys+"/Bios"] = map[string]any{"@odata.id": sys + "/Bios", "Id": "Bios", "AttributeRegistry": "BiosAttributeRegistry.1.2",
		"Attributes": map[string]any{"AcPwrRcvry": "Last", "AssetTag": "rack-4", "MemTest": "Enabled"}}
	h["/redfish/v1/Registries"] = collection("/redfish/v1/Registries", "/redfish/v1/Registries/BiosAttributeRegistry.1.2")
	h["/redfish/v1/Registries/BiosAttributeRegistry.1.2"] = map[string]any{"@odata.id": "/redfish/v1/Registries/BiosAttributeRegistry.1.2",
		"Id": "BiosAttributeRegistry.1.2", "Registry": "BiosAttributeRegistry.1.2.0",
		"Location": []any{map[string]any{"Language": "ja", "Uri": "/registry/ja.json"}, map[string]any{"Language": "en", "Uri": "/registry/en.json"}}}
	h["/registry/en.json"] = map[string]any{"@odata.id": "/registry/en.json", "Id": "BiosAttributeRegistry.1.2.0",
		"RegistryEntries": map[string]any{"Attributes": []any{
			map[string]any{"AttributeName": "AcPwrRcvry", "Type": "Enumeration", "ResetRequired": true,
				"Value": []any{map[string]any{"ValueDisplayName": "Last"}, map[string]any{"ValueName": "On", "ValueDisplayName": "Always on"}}},
			map[string]any{"AttributeName": "AssetTag", "Type": "String", "MinLength": 0, "MaxLength": 63, "IsSystemUniqueProperty": true}}}}
	srv := httptest.NewTLSServer(h)
	defer srv.Close()
	n := node(srv.URL, sys)

	got := settingsByName(t, n)
	assert.Equal(t, []string{"Last", "On"}, got["AcPwrRcvry"].AllowableValues)
	assert.Equal(t, "String", got["AssetTag"].AttributeType)
	assert.Equal(t, 63, *got["AssetTag"].MaxLength)
	assert.True(t, *got["AssetTag"].Unique)
	mem := got["MemTest"]
	assert.Equal(t, "Enabled", *mem.Value)
	assert.Equal(t, store.BIOSSetting{Name: "MemTest", Value: mem.Value}, mem, "no registry entry: registry fields null")

	delete(h, "/registry/en.json")
	got = settingsByName(t, n)
	assert.Len(t, got, 3)
	assert.Empty(t, got["AcPwrRcvry"].AttributeType, "registry unreadable: settings without registry fields")
}
