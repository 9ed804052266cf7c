package api

import (
	"context"
	"net/http"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/noauth"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/nodes"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// gopherClient serves srv on a loopback port and returns a gophercloud client of it at microversion version.
func gopherClient(t *testing.T, srv *Server, version string) *gophercloud.ServiceClient {
	t.Helper()
	ts := startTestServer(t, &srv.cfg, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { srv.ServeHTTP(w, r) }))
	c, err := noauth.NewBareMetalNoAuth(noauth.EndpointOpts{IronicEndpoint: ts.URL + "/v1"})
	require.NoError(t, err)
	c.Microversion = version
	return c
}

// TestNodeFeaturesGophercloud drives the node sub-resources gophercloud v2 has, on a managed fake-hardware node
// whose BIOS and firmware caches verify filled: BIOS settings (plain and detailed) and one setting, firmware
// components, the inventory, the target RAID configuration, vendor passthru methods, maintenance on and off, the
// supported boot devices, validation, and inject_nmi (refused: Ironic's fake management has none). Each answer
// is checked as gophercloud decoded it.
func TestNodeFeaturesGophercloud(t *testing.T) {
	f := newBIOSFix(t)
	c := gopherClient(t, f.srv, "1.95")
	ctx := context.Background()
	hw := f.node("hw")

	settings, err := nodes.ListBIOSSettings(ctx, c, "hw", nil).Extract()
	require.NoError(t, err)
	require.NotEmpty(t, settings)
	byName := map[string]nodes.BIOSSetting{}
	for _, s := range settings {
		byName[s.Name] = s
	}
	require.Contains(t, byName, "BootMode")
	assert.NotEmpty(t, byName["BootMode"].Value)
	assert.Empty(t, byName["BootMode"].AttributeType, "no registry fields without detail")

	detailed, err := nodes.ListBIOSSettings(ctx, c, "hw", nodes.ListBIOSSettingsOpts{Detail: true}).Extract()
	require.NoError(t, err)
	require.Len(t, detailed, len(settings))
	for _, s := range detailed {
		if s.Name == "BootMode" {
			assert.Equal(t, "Enumeration", s.AttributeType)
			assert.NotEmpty(t, s.AllowableValues)
			require.NotNil(t, s.ReadOnly)
			require.NotNil(t, s.ResetRequired)
		}
	}
	named, err := nodes.ListBIOSSettings(ctx, c, "hw", nodes.ListBIOSSettingsOpts{Fields: []string{"name"}}).Extract()
	require.NoError(t, err)
	require.NotEmpty(t, named)
	assert.NotEmpty(t, named[0].Name)
	assert.Empty(t, named[0].Value, "fields=name leaves the value out")

	// Ironic answers {"<name>": {...}}: gophercloud's GetBIOSSetting.Extract looks for a "Setting" key and finds
	// an empty setting, so the answer is read as Ironic (and Ferric, which must match it) writes it.
	one := nodes.GetBIOSSetting(ctx, c, "hw", "BootMode")
	require.NoError(t, one.Err)
	var got map[string]nodes.BIOSSetting
	require.NoError(t, one.ExtractInto(&got))
	assert.Equal(t, "BootMode", got["BootMode"].Name)
	assert.Equal(t, byName["BootMode"].Value, got["BootMode"].Value)
	err = nodes.GetBIOSSetting(ctx, c, "hw", "NoSuch").Err
	assert.True(t, gophercloud.ResponseCodeIs(err, http.StatusNotFound), "%v", err)

	fw, err := nodes.ListFirmware(ctx, c, "hw").Extract()
	require.NoError(t, err)
	require.NotEmpty(t, fw)
	assert.NotEmpty(t, fw[0].Component)
	assert.NotEmpty(t, fw[0].CurrentVersion)
	assert.Equal(t, fw[0].InitialVersion, fw[0].CurrentVersion, "nothing was flashed")
	assert.False(t, fw[0].CreatedAt.IsZero(), "created_at decodes as a time")

	inv := map[string]any{"cpu": map[string]any{"count": float64(4), "architecture": "x86_64", "model_name": "QEMU"},
		"memory":     map[string]any{"physical_mb": float64(2048), "total": float64(2 << 30)},
		"interfaces": []any{map[string]any{"name": "eth0", "mac_address": "52:54:00:aa:bb:cc", "ipv4_address": "192.0.2.5"}},
		"disks":      []any{map[string]any{"name": "/dev/vda", "size": float64(10 << 30), "rotational": false}}}
	require.NoError(t, f.st.PutInventory(ctx, hw.UUID, store.Inventory{Inventory: inv,
		PluginData: map[string]any{"valid_interfaces": map[string]any{"eth0": map[string]any{"name": "eth0"}}}}))
	data, err := nodes.GetInventory(ctx, c, "hw").Extract()
	require.NoError(t, err)
	assert.Equal(t, 4, data.Inventory.CPU.Count)
	assert.Equal(t, "x86_64", data.Inventory.CPU.Architecture)
	assert.Equal(t, 2048, data.Inventory.Memory.PhysicalMb)
	require.Len(t, data.Inventory.Interfaces, 1)
	assert.Equal(t, "52:54:00:aa:bb:cc", data.Inventory.Interfaces[0].MACAddress)
	require.Len(t, data.Inventory.Disks, 1)
	assert.Equal(t, "/dev/vda", data.Inventory.Disks[0].Name)
	plugin, err := data.PluginData.AsStandardData()
	require.NoError(t, err)
	assert.Contains(t, plugin.ValidInterfaces, "eth0")

	size := 10
	require.NoError(t, nodes.SetRAIDConfig(ctx, c, "hw", nodes.RAIDConfigOpts{LogicalDisks: []nodes.LogicalDisk{
		{SizeGB: &size, RAIDLevel: nodes.RAID1, IsRootVolume: gophercloud.Enabled, Controller: "RAID.1"}}}).ExtractErr())
	n, err := nodes.Get(ctx, c, "hw").Extract()
	require.NoError(t, err)
	disks, _ := n.TargetRAIDConfig["logical_disks"].([]any)
	require.Len(t, disks, 1)
	assert.Equal(t, "1", disks[0].(map[string]any)["raid_level"])
	assert.Equal(t, "RAID.1", disks[0].(map[string]any)["controller"])
	err = nodes.SetRAIDConfig(ctx, c, "bare", nodes.RAIDConfigOpts{LogicalDisks: []nodes.LogicalDisk{
		{SizeGB: &size, RAIDLevel: nodes.RAID1}}}).ExtractErr()
	assert.True(t, gophercloud.ResponseCodeIs(err, http.StatusNotFound), "no-raid: %v", err)

	var methods map[string]nodes.CreateSubscriptionMethod
	require.NoError(t, nodes.GetVendorPassthruMethods(ctx, c, "hw").ExtractInto(&methods))
	require.NotEmpty(t, methods, "the fake vendor interface's methods")
	for name, m := range methods {
		assert.NotEmpty(t, m.HTTPMethods, name)
	}

	require.NoError(t, nodes.SetMaintenance(ctx, c, "hw", nodes.MaintenanceOpts{Reason: "cabling"}).ExtractErr())
	n, err = nodes.Get(ctx, c, "hw").Extract()
	require.NoError(t, err)
	assert.True(t, n.Maintenance)
	assert.Equal(t, "cabling", n.MaintenanceReason)
	require.NoError(t, nodes.UnsetMaintenance(ctx, c, "hw").ExtractErr())
	n, err = nodes.Get(ctx, c, "hw").Extract()
	require.NoError(t, err)
	assert.False(t, n.Maintenance)
	assert.Empty(t, n.MaintenanceReason)

	devs, err := nodes.GetSupportedBootDevices(ctx, c, "hw").Extract()
	require.NoError(t, err)
	assert.Contains(t, devs, "pxe")
	assert.Contains(t, devs, "disk")

	v, err := nodes.Validate(ctx, c, "hw").Extract()
	require.NoError(t, err)
	assert.True(t, v.Power.Result, "%+v", v.Power)
	assert.True(t, v.Management.Result, "%+v", v.Management)
	assert.True(t, v.BIOS.Result, "%+v", v.BIOS)

	err = nodes.InjectNMI(ctx, c, "hw").ExtractErr()
	require.Error(t, err)
	assert.True(t, gophercloud.ResponseCodeIs(err, http.StatusBadRequest), "%v", err)
	assert.Contains(t, err.Error(), "Driver fake-hardware does not support inject_nmi (disabled or not implemented).")
	c.Microversion = "1.28"
	err = nodes.InjectNMI(ctx, c, "hw").ExtractErr()
	assert.True(t, gophercloud.ResponseCodeIs(err, http.StatusNotFound), "inject_nmi is 1.29: %v", err)
}
