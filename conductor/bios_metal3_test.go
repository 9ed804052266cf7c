package conductor_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/noauth"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/drivers"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/nodes"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/test/conductortest"
	"github.com/ferric-metal/ferric/test/testenv"
	"github.com/ferric-metal/ferric/test/vbmc"
)

// TestMetal3RedfishNode creates a node as Metal3's baremetal-operator does for a redfish-virtualmedia BMC
// (boot redfish-virtual-media, firmware and raid redfish, inspect agent), through gophercloud, against a
// conductor and ferric-vbmc on this host: the create is accepted (it was refused: "firmware_interface redfish is
// not enabled"), manage caches the BIOS settings (with their attribute registry fields) and firmware versions the
// BMC reports, gophercloud reads them, and a target RAID configuration is accepted by the redfish raid interface.
func TestMetal3RedfishNode(t *testing.T) {
	bmc := startHostVBMC(t, vbmc.VMConfig{Name: "vm1", UUID: "6a6ea6a4-4b3b-4a43-9d2f-8f0c2b1a0001", DiskGiB: 1})
	ctx := context.Background()

	c := conductortest.Start(t)
	cl, err := noauth.NewBareMetalNoAuth(noauth.EndpointOpts{IronicEndpoint: c.URL + "/v1"})
	require.NoError(t, err)
	cl.Microversion = "1.86"

	d, err := drivers.GetDriverDetails(ctx, cl, "redfish").Extract()
	require.NoError(t, err)
	assert.Equal(t, "redfish", d.DefaultBiosInterface)
	assert.Equal(t, "no-firmware", d.DefaultFirmwareInterface)
	assert.Equal(t, "redfish", d.DefaultRaidInterface)
	assert.Equal(t, []string{"redfish", "no-firmware"}, d.EnabledFirmwareInterfaces)

	n, err := nodes.Create(ctx, cl, nodes.CreateOpts{Name: "metal3-0", Driver: "redfish",
		BootInterface: "redfish-virtual-media", FirmwareInterface: "redfish", RAIDInterface: "redfish", InspectInterface: "agent",
		DriverInfo: map[string]any{"redfish_address": bmc, "redfish_system_id": "/redfish/v1/Systems/vm1",
			"redfish_username": "admin", "redfish_password": "pw"}}).Extract()
	require.NoError(t, err)
	assert.Equal(t, "redfish", n.BIOSInterface, "the default")
	assert.Equal(t, "redfish", n.FirmwareInterface)
	assert.Equal(t, "redfish", n.RAIDInterface)

	require.NoError(t, nodes.ChangeProvisionState(ctx, cl, n.UUID, nodes.ProvisionStateOpts{Target: nodes.TargetManage}).ExtractErr())
	require.Eventually(t, func() bool {
		got, err := nodes.Get(ctx, cl, n.UUID).Extract()
		return err == nil && got.ProvisionState == "manageable"
	}, 20*time.Second, 50*time.Millisecond)

	settings, err := nodes.ListBIOSSettings(ctx, cl, n.UUID, nil).Extract()
	require.NoError(t, err)
	values := map[string]string{}
	for _, s := range settings {
		values[s.Name] = s.Value
	}
	assert.Equal(t, map[string]string{"BootMode": "Uefi", "NumCores": "1", "ProcVirtualization": "Enabled",
		"SecureBoot": "Disabled"}, values)
	// With detail (1.74), each setting shows the fields of ferric-vbmc's BIOS attribute registry.
	detailed, err := nodes.ListBIOSSettings(ctx, cl, n.UUID, nodes.ListBIOSSettingsOpts{Detail: true}).Extract()
	require.NoError(t, err)
	registry := map[string]nodes.BIOSSetting{}
	for _, s := range detailed {
		registry[s.Name] = s
	}
	assert.Equal(t, "Enumeration", registry["BootMode"].AttributeType)
	assert.Equal(t, []string{"Uefi", "Bios"}, registry["BootMode"].AllowableValues)
	require.NotNil(t, registry["NumCores"].UpperBound)
	assert.Equal(t, 64, *registry["NumCores"].UpperBound)
	assert.True(t, *registry["NumCores"].ReadOnly)
	// Ironic answers {"<name>": {...}}; gophercloud's Extract expects {"Setting": ...} and finds nothing, so the
	// answer is read as Ironic writes it.
	var one map[string]nodes.BIOSSetting
	require.NoError(t, nodes.GetBIOSSetting(ctx, cl, n.UUID, "BootMode").ExtractInto(&one))
	assert.Equal(t, "Uefi", one["BootMode"].Value)

	fw, err := nodes.ListFirmware(ctx, cl, n.UUID).Extract()
	require.NoError(t, err)
	require.Len(t, fw, 2)
	assert.Equal(t, "bios", fw[0].Component)
	assert.Equal(t, "OVMF-ferric-1.0", fw[0].InitialVersion)
	assert.Equal(t, "OVMF-ferric-1.0", fw[0].CurrentVersion)
	assert.Equal(t, "ferric-vbmc-1.0", fw[1].CurrentVersion)

	// The redfish raid interface takes a target configuration (TestRedfishRAIDManualClean builds one).
	size := 10
	require.NoError(t, nodes.SetRAIDConfig(ctx, cl, n.UUID, nodes.RAIDConfigOpts{LogicalDisks: []nodes.LogicalDisk{
		{SizeGB: &size, RAIDLevel: nodes.RAID1, IsRootVolume: gophercloud.Enabled}}}).ExtractErr())
	got, err := nodes.Get(ctx, cl, n.UUID).Extract()
	require.NoError(t, err)
	assert.Len(t, got.TargetRAIDConfig["logical_disks"], 1)
}

// TestBaremetalBIOSCLI reads a managed fake-hardware node's BIOS settings with OpenStack's own client (Debian's
// python3-ironicclient): list (with registry fields) and show of one setting.
func TestBaremetalBIOSCLI(t *testing.T) {
	c := conductortest.Start(t)
	bm := testenv.Baremetal(t, c.URL).Run
	bm("node", "create", "--driver", "fake-hardware", "--name", "cli-bios")
	bm("node", "manage", "cli-bios", "--wait", "30")
	var list []map[string]any
	require.NoError(t, json.Unmarshal([]byte(bm("node", "bios", "setting", "list", "cli-bios", "--long", "-f", "json")), &list))
	require.Len(t, list, 4)
	assert.Equal(t, "BootMode", list[0]["Name"])
	assert.Equal(t, "Uefi", list[0]["Value"])
	assert.Equal(t, "Enumeration", list[0]["Attribute Type"])
	var one map[string]any
	require.NoError(t, json.Unmarshal([]byte(bm("node", "bios", "setting", "show", "cli-bios", "NumCores", "-f", "json")), &one))
	assert.Equal(t, "8", one["value"])
}
