package conductor_test

import (
	"context"
	"io"
	"net"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/noauth"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/nodes"
	"github.com/sirupsen/logrus"
	"github.com/stmcginnis/gofish"
	"github.com/stmcginnis/gofish/schemas"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/test/conductortest"
	"github.com/ferric-metal/ferric/test/vbmc"
)

// startRAIDVBMC runs ferric-vbmc with vm1, which has four simulated 10 GiB RAID drives, and returns its URL.
func startRAIDVBMC(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	l := logrus.New()
	l.SetOutput(io.Discard)
	ctx, cancel := context.WithCancel(context.Background())
	done, ready := make(chan error, 1), make(chan string, 1)
	go func() {
		done <- vbmc.Run(ctx, vbmc.Config{Username: "admin", Password: "pw", StateDir: filepath.Join(t.TempDir(), "vbmc"),
			Runner: vbmc.IdleRunner{}, Listener: ln, Ready: func(u string) { ready <- u },
			VMs: []vbmc.VMConfig{{Name: "vm1", UUID: "6a6ea6a4-4b3b-4a43-9d2f-8f0c2b1a0001", DiskGiB: 10, RAIDDrives: 4}}},
			logrus.NewEntry(l))
	}()
	t.Cleanup(func() { cancel(); <-done })
	return <-ready
}

// vbmcVolumes lists the RAID types of vm1's volumes, by volume id.
func vbmcVolumes(t *testing.T, url string) []string {
	c, err := gofish.Connect(gofish.ClientConfig{Endpoint: url, Username: "admin", Password: "pw", BasicAuth: true})
	require.NoError(t, err)
	defer c.Logout()
	vols, err := schemas.GetCollectionObjects[schemas.Volume](c, "/redfish/v1/Systems/vm1/Storage/RAID.Integrated.1-1/Volumes")
	require.NoError(t, err)
	sort.Slice(vols, func(i, j int) bool { return vols[i].ID < vols[j].ID })
	out := []string{}
	for _, v := range vols {
		out = append(out, string(v.RAIDType))
	}
	return out
}

// TestRedfishRAIDManualClean builds RAID on a redfish node as Metal3 does, through gophercloud, against a
// conductor and ferric-vbmc on this host: PUT /states/raid refuses a configuration outside Ironic's schema, or with
// interface_type scsi (Redfish RAID's own rule), with a 400 naming the field, takes a valid one, and a manual clean of raid.delete_configuration then
// raid.create_configuration creates the volumes on the BMC and records them in raid_config. A configuration the
// four drives cannot hold passes the schema but fails the clean, with a last_error naming the controller and the
// logical disks. Before: every target_raid_config of a redfish node was refused.
func TestRedfishRAIDManualClean(t *testing.T) {
	bmc := startRAIDVBMC(t)
	ctx := context.Background()
	c := conductortest.Start(t)
	cl, err := noauth.NewBareMetalNoAuth(noauth.EndpointOpts{IronicEndpoint: c.URL + "/v1"})
	require.NoError(t, err)
	cl.Microversion = "1.86"
	n, err := nodes.Create(ctx, cl, nodes.CreateOpts{Name: "raid-0", Driver: "redfish", BootInterface: "redfish-virtual-media",
		RAIDInterface: "redfish", DriverInfo: map[string]any{"redfish_address": bmc, "redfish_system_id": "/redfish/v1/Systems/vm1",
			"redfish_username": "admin", "redfish_password": "pw"}}).Extract()
	require.NoError(t, err)
	wait := func(state string) *nodes.Node {
		var got *nodes.Node
		require.Eventually(t, func() bool {
			got, err = nodes.Get(ctx, cl, n.UUID).Extract()
			return err == nil && got.ProvisionState == state
		}, 20*time.Second, 50*time.Millisecond, "waiting for %s", state)
		return got
	}
	require.NoError(t, nodes.ChangeProvisionState(ctx, cl, n.UUID, nodes.ProvisionStateOpts{Target: nodes.TargetManage}).ExtractErr())
	wait("manageable")

	size5, size8, size1 := 5, 8, 1
	err = nodes.SetRAIDConfig(ctx, cl, n.UUID, nodes.RAIDConfigOpts{LogicalDisks: []nodes.LogicalDisk{
		{SizeGB: &size5, RAIDLevel: "7"}}}).ExtractErr()
	require.Error(t, err)
	assert.True(t, gophercloud.ResponseCodeIs(err, 400), "%v", err)
	assert.Contains(t, err.Error(), "RAID config validation error: logical_disks[0].raid_level 7 is not one of")
	err = nodes.SetRAIDConfig(ctx, cl, n.UUID, nodes.RAIDConfigOpts{LogicalDisks: []nodes.LogicalDisk{
		{SizeGB: &size5, RAIDLevel: nodes.RAID1, InterfaceType: nodes.SCSI}}}).ExtractErr()
	require.Error(t, err)
	assert.True(t, gophercloud.ResponseCodeIs(err, 400), "%v", err)
	assert.Contains(t, err.Error(), "logical_disks[0]: interface type `scsi` not supported by Redfish RAID")

	require.NoError(t, nodes.SetRAIDConfig(ctx, cl, n.UUID, nodes.RAIDConfigOpts{LogicalDisks: []nodes.LogicalDisk{
		{SizeGB: &size5, RAIDLevel: nodes.RAID1, IsRootVolume: gophercloud.Enabled, VolumeName: "root"},
		{SizeGB: &size8, RAIDLevel: nodes.RAID0}}}).ExtractErr())
	clean := nodes.ProvisionStateOpts{Target: nodes.TargetClean, CleanSteps: []nodes.CleanStep{
		{Interface: nodes.InterfaceRAID, Step: "delete_configuration"}, {Interface: nodes.InterfaceRAID, Step: "create_configuration"}}}
	require.NoError(t, nodes.ChangeProvisionState(ctx, cl, n.UUID, clean).ExtractErr())
	got := wait("manageable")
	assert.Empty(t, got.LastError)
	assert.Equal(t, []string{"RAID1", "RAID0"}, vbmcVolumes(t, bmc))
	disks, _ := got.RAIDConfig["logical_disks"].([]any)
	require.Len(t, disks, 2, "%v", got.RAIDConfig)
	assert.Equal(t, map[string]any{"id": "Volume0", "name": "root", "controller": "RAID.Integrated.1-1", "size_gb": float64(5),
		"raid_level": "1"}, disks[0])
	assert.Equal(t, float64(8), disks[1].(map[string]any)["size_gb"])

	// Five drives' worth of RAID on four drives: the schema takes it, the clean step cannot build it.
	require.NoError(t, nodes.SetRAIDConfig(ctx, cl, n.UUID, nodes.RAIDConfigOpts{LogicalDisks: []nodes.LogicalDisk{
		{SizeGB: &size1, RAIDLevel: nodes.RAID5}, {SizeGB: &size1, RAIDLevel: nodes.RAID1}}}).ExtractErr())
	require.NoError(t, nodes.ChangeProvisionState(ctx, cl, n.UUID, clean).ExtractErr())
	got = wait("clean failed")
	assert.Contains(t, got.LastError, "failed clean step raid.create_configuration: Redfish RAID cannot build the target_raid_config")
	assert.Contains(t, got.LastError, "controller RAID.Integrated.1-1 (RAID types RAID0, RAID1, RAID5, RAID6, RAID10; 4 drives")
	assert.Contains(t, got.LastError, "failed to find matching physical disks for all logical disks (logical disk 0 (raid_level 5, size_gb 1)")
	assert.Empty(t, vbmcVolumes(t, bmc), "delete_configuration ran first; nothing was created")
	assert.Equal(t, []any{}, got.RAIDConfig["logical_disks"])
}
