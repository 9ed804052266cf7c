package conductor_test

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/drivers"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/nodes"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/test/conductortest"
	"github.com/ferric-metal/ferric/test/ipmisim"
	"github.com/ferric-metal/ferric/test/testenv"
)

// TestIPMINodeGophercloud enrolls an ipmi node as gophercloud's acceptance tests do (their CreateNode's
// driver_info: ipmi_address, ipmi_port as a string, ipmi_username, ipmi_password, deploy_kernel/ramdisk; it was
// refused with "No conductor service registered which supports driver ipmi"), against ipmi_sim on this host:
// validate says power and management are fine, the password is masked, and power and boot device go through.
// Their CreateNode also asks for boot_interface ipxe and raid_interface agent: both are accepted, and the agent
// raid interface refuses a target RAID configuration (Ferric's agent builds no RAID) instead of accepting it.
func TestIPMINodeGophercloud(t *testing.T) {
	sim := ipmisim.Start(t)
	c := conductortest.Start(t)
	cl := c.Client("1.86")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	d, err := drivers.GetDriverDetails(ctx, cl, "ipmi").Extract()
	require.NoError(t, err)
	assert.Equal(t, "ipmi", d.DefaultPowerInterface)
	assert.Equal(t, "ipmi", d.DefaultManagementInterface)
	props, err := drivers.GetDriverProperties(ctx, cl, "ipmi").Extract()
	require.NoError(t, err)
	assert.Contains(t, (*props)["ipmi_address"], "Required.")
	assert.Contains(t, *props, "ipmi_terminal_port")

	n, err := nodes.Create(ctx, cl, nodes.CreateOpts{Name: "ipmi-0", Driver: "ipmi", BootInterface: "ipxe", RAIDInterface: "agent",
		DriverInfo: map[string]any{
			"ipmi_port": strconv.Itoa(sim.Port), "ipmi_username": ipmisim.Username, "ipmi_address": sim.Address,
			"ipmi_password": ipmisim.Password, "deploy_kernel": "http://172.22.0.1/images/tinyipa-stable-rocky.vmlinuz",
			"deploy_ramdisk": "http://172.22.0.1/images/tinyipa-stable-rocky.gz"}}).Extract()
	require.NoError(t, err)
	assert.Equal(t, "ipmi", n.PowerInterface)
	assert.Equal(t, "ipmi", n.ManagementInterface)
	assert.Equal(t, "ipxe", n.BootInterface)
	assert.Equal(t, "agent", n.RAIDInterface)
	assert.Equal(t, "******", n.DriverInfo["ipmi_password"])
	err = nodes.SetRAIDConfig(ctx, cl, n.UUID, nodes.RAIDConfigOpts{LogicalDisks: []nodes.LogicalDisk{
		{SizeGB: ptr(100), RAIDLevel: nodes.RAID1, IsRootVolume: ptr(true)}}}).ExtractErr()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "Ferric's agent does not build software RAID")
	d2, err := nodes.Create(ctx, cl, nodes.CreateOpts{Name: "ipmi-defaults", Driver: "ipmi", DriverInfo: map[string]any{
		"ipmi_address": sim.Address}}).Extract()
	require.NoError(t, err)
	assert.Equal(t, "ipxe", d2.BootInterface, "network boot by default, as Ironic's ipmi")
	assert.Equal(t, "no-raid", d2.RAIDInterface)

	v, err := nodes.Validate(ctx, cl, n.UUID).Extract()
	require.NoError(t, err)
	assert.True(t, v.Power.Result, v.Power.Reason)
	assert.True(t, v.Management.Result, v.Management.Reason)

	require.NoError(t, nodes.ChangePowerState(ctx, cl, n.UUID, nodes.PowerStateOpts{Target: nodes.PowerOn}).ExtractErr())
	require.Eventually(t, func() bool {
		got, err := nodes.Get(ctx, cl, n.UUID).Extract()
		return err == nil && got.PowerState == "power on" && got.TargetPowerState == ""
	}, 90*time.Second, 200*time.Millisecond)
	assert.Equal(t, "on", sim.Power())

	require.NoError(t, nodes.SetBootDevice(ctx, cl, n.UUID, nodes.BootDeviceOpts{BootDevice: "pxe", Persistent: true}).ExtractErr())
	assert.Equal(t, "pxe", sim.Boot())
	bd, err := nodes.GetBootDevice(ctx, cl, n.UUID).Extract()
	require.NoError(t, err)
	assert.Equal(t, "pxe", bd.BootDevice)

	// A driver_info the type cannot serve is named at validate, before any BMC traffic.
	_, err = nodes.Update(ctx, cl, n.UUID, nodes.UpdateOpts{nodes.UpdateOperation{Op: nodes.AddOp,
		Path: "/driver_info/ipmi_bridging", Value: "single"}}).Extract()
	require.NoError(t, err)
	v, err = nodes.Validate(ctx, cl, n.UUID).Extract()
	require.NoError(t, err)
	assert.False(t, v.Power.Result)
	assert.Contains(t, v.Power.Reason, `driver_info.ipmi_bridging "single" is not supported`)
	assert.NotContains(t, v.Power.Reason, ipmisim.Password)
}

// TestIPMIWithBaremetalCLI: OpenStack's own client enrolls an ipmi node against ipmi_sim, sees power and management
// validate, the password masked, and sets and reads the boot device through the BMC.
func TestIPMIWithBaremetalCLI(t *testing.T) {
	sim := ipmisim.Start(t)
	c := conductortest.Start(t)
	bm := testenv.Baremetal(t, c.URL).Run
	assert.Contains(t, bm("driver", "property", "list", "ipmi"), "ipmi_priv_level")
	bm("node", "create", "--driver", "ipmi", "--name", "ipmi-cli", "--driver-info", "ipmi_address="+sim.Address,
		"--driver-info", "ipmi_port="+strconv.Itoa(sim.Port), "--driver-info", "ipmi_username="+ipmisim.Username,
		"--driver-info", "ipmi_password="+ipmisim.Password)
	var rows []map[string]any
	require.NoError(t, json.Unmarshal([]byte(bm("node", "validate", "ipmi-cli", "-f", "json")), &rows))
	results := map[string]any{}
	for _, r := range rows {
		results[r["Interface"].(string)] = r["Result"]
	}
	assert.Equal(t, true, results["power"], rows)
	assert.Equal(t, true, results["management"], rows)
	shown := bm("node", "show", "ipmi-cli", "-f", "json", "-c", "driver_info")
	assert.Contains(t, shown, `"ipmi_password": "******"`)
	assert.NotContains(t, shown, ipmisim.Password)

	bm("node", "boot", "device", "set", "ipmi-cli", "cdrom")
	assert.Equal(t, "cdrom", sim.Boot())
	assert.Equal(t, "cdrom", strings.TrimSpace(bm("node", "boot", "device", "show", "ipmi-cli", "-f", "value", "-c", "boot_device")))
}

// ptr returns a pointer to v (gophercloud's optional fields).
func ptr[T any](v T) *T { return &v }
