package redfish_test

import (
	"context"
	"io"
	"sort"
	"testing"

	"github.com/sirupsen/logrus"
	"github.com/stmcginnis/gofish"
	"github.com/stmcginnis/gofish/schemas"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/driver/redfish"
	"github.com/ferric-metal/ferric/conductor/internal/steps"
	"github.com/ferric-metal/ferric/test/vbmc"
)

// TestRedfishRAIDSteps: Ironic's redfish RAID steps, all of priority 0 and out-of-band: create and delete for
// cleaning, apply (raid_config required) and delete for deploy and service.
func TestRedfishRAIDSteps(t *testing.T) {
	r := &redfish.RAID{Driver: &redfish.Driver{}}
	ids := func(k steps.Kind) []string {
		var out []string
		for _, s := range r.Steps(k) {
			assert.Equal(t, 0, s.Priority, s.ID())
			assert.False(t, s.InBand, s.ID())
			out = append(out, s.ID())
		}
		return out
	}
	assert.Equal(t, []string{"raid.create_configuration", "raid.delete_configuration"}, ids(steps.Clean))
	assert.Equal(t, []string{"raid.apply_configuration", "raid.delete_configuration"}, ids(steps.Deploy))
	assert.Equal(t, []string{"raid.apply_configuration", "raid.delete_configuration"}, ids(steps.Service))
	assert.True(t, r.Steps(steps.Deploy)[0].ArgsInfo["raid_config"].Required)
}

// TestRedfishRAIDValidate: Ironic's schema, plus redfish RAID's refusal of interface_type scsi; each error names
// the field.
func TestRedfishRAIDValidate(t *testing.T) {
	r := &redfish.RAID{Driver: &redfish.Driver{}}
	ctx := context.Background()
	n := vbmcNode("http://127.0.0.1:1")
	disk := func(kv ...any) map[string]any {
		d := map[string]any{"raid_level": "1", "size_gb": float64(10)}
		for i := 0; i < len(kv); i += 2 {
			d[kv[i].(string)] = kv[i+1]
		}
		return map[string]any{"logical_disks": []any{d}}
	}
	require.NoError(t, r.ValidateRAIDConfig(ctx, n, disk()))
	require.NoError(t, r.ValidateRAIDConfig(ctx, n, disk("size_gb", "MAX", "interface_type", "sas")))
	for name, tc := range map[string]struct {
		cfg map[string]any
		msg string
	}{
		"level":   {disk("raid_level", "7"), "logical_disks[0].raid_level 7 is not one of"},
		"size":    {disk("size_gb", "big"), "logical_disks[0].size_gb big is neither a non-negative integer nor 'MAX'"},
		"scsi":    {disk("interface_type", "scsi"), "logical_disks[0]: interface type `scsi` not supported by Redfish RAID"},
		"root":    {disk("is_root_volume", "yes"), "logical_disks[0].is_root_volume yes is not a boolean"},
		"unknown": {disk("colour", "red"), "('colour' was unexpected)"},
	} {
		err := r.ValidateRAIDConfig(ctx, n, tc.cfg)
		require.ErrorIs(t, err, driver.ErrInvalid, name)
		assert.Contains(t, err.Error(), tc.msg, name)
	}
	n.TargetRAIDConfig = disk("interface_type", "scsi")
	assert.ErrorIs(t, r.Validate(ctx, n), driver.ErrInvalid, "Validate checks the node's target_raid_config")
}

// raidTask is a task for a node of ferric-vbmc's vm1.
func raidTask(url string) *driver.Task {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return &driver.Task{Node: vbmcNode(url), Log: logrus.NewEntry(l)}
}

// bmcVolumes lists the RAID types of the volumes ferric-vbmc holds, by volume id, through gofish.
func bmcVolumes(t *testing.T, url string) []string {
	c, err := gofish.Connect(gofish.ClientConfig{Endpoint: url, Username: "admin", Password: "pw", BasicAuth: true})
	require.NoError(t, err)
	defer c.Logout()
	vols, err := schemas.GetCollectionObjects[schemas.Volume](c, "/redfish/v1/Systems/vm1/Storage/RAID.Integrated.1-1/Volumes")
	require.NoError(t, err)
	sort.Slice(vols, func(i, j int) bool { return vols[i].ID < vols[j].ID }) // gofish reads members concurrently
	out := []string{}
	for _, v := range vols {
		out = append(out, string(v.RAIDType))
	}
	return out
}

// TestRedfishRAIDAgainstVBMC: create_configuration chooses drives of ferric-vbmc's RAID controller for each
// logical disk and creates the volumes; raid_config records what the BMC then reports; delete_existing
// replaces them; delete_configuration removes them; apply_configuration takes its configuration as argument
// and builds the root volume only by default. A configuration the drives cannot hold fails naming the
// controller, its drives and the logical disks, before any volume is created.
func TestRedfishRAIDAgainstVBMC(t *testing.T) {
	url := startVBMCWith(t, vbmc.VMConfig{Name: "vm1", UUID: "6a6ea6a4-4b3b-4a43-9d2f-8f0c2b1a0001", DiskGiB: 10, RAIDDrives: 4})
	r := &redfish.RAID{Driver: &redfish.Driver{}}
	ctx := context.Background()
	task := raidTask(url)
	n := task.Node
	run := func(kind steps.Kind, step string, args map[string]any) error {
		_, err := r.ExecuteStep(ctx, task, kind, steps.Step{Interface: "raid", Step: step, Args: args})
		return err
	}
	n.TargetRAIDConfig = map[string]any{"logical_disks": []any{
		map[string]any{"raid_level": "1", "size_gb": float64(5), "is_root_volume": true, "volume_name": "root"},
		map[string]any{"raid_level": "0", "size_gb": float64(8)}}}
	require.NoError(t, run(steps.Clean, "create_configuration", nil))
	assert.Equal(t, []string{"RAID1", "RAID0"}, bmcVolumes(t, url))
	disks := n.RAIDConfig["logical_disks"].([]any)
	require.Len(t, disks, 2)
	assert.Equal(t, map[string]any{"id": "Volume0", "name": "root", "controller": "RAID.Integrated.1-1", "size_gb": 5,
		"raid_level": "1"}, disks[0])
	assert.Equal(t, "0", disks[1].(map[string]any)["raid_level"])
	assert.NotEmpty(t, n.RAIDConfig["last_updated"])

	require.NoError(t, run(steps.Clean, "create_configuration", map[string]any{"delete_existing": true,
		"create_nonroot_volumes": false}))
	assert.Equal(t, []string{"RAID1"}, bmcVolumes(t, url), "replaced, root volume only")

	require.NoError(t, run(steps.Clean, "delete_configuration", nil))
	assert.Empty(t, bmcVolumes(t, url))
	assert.Equal(t, []any{}, n.RAIDConfig["logical_disks"])

	for name, tc := range map[string]struct {
		disks []any
		msg   string
	}{
		"five drives of four": {[]any{map[string]any{"raid_level": "5", "size_gb": float64(1)},
			map[string]any{"raid_level": "1", "size_gb": float64(1)}},
			"failed to find matching physical disks for all logical disks (logical disk 0 (raid_level 5, size_gb 1); " +
				"logical disk 1 (raid_level 1, size_gb 1))"},
		"too big":  {[]any{map[string]any{"raid_level": "1", "size_gb": float64(20)}}, "raid_level 1, size_gb 20"},
		"RAID 6+0": {[]any{map[string]any{"raid_level": "6+0", "size_gb": float64(1)}}, "failed to find matching physical disks"},
	} {
		n.TargetRAIDConfig = map[string]any{"logical_disks": tc.disks}
		err := run(steps.Clean, "create_configuration", nil)
		require.Error(t, err, name)
		assert.Contains(t, err.Error(), tc.msg, name)
		assert.Contains(t, err.Error(), "controller RAID.Integrated.1-1 (RAID types RAID0, RAID1, RAID5, RAID6, RAID10; 4 drives: "+
			"Disk.Bay.0 (SSD SATA, 10 GiB)", name)
		assert.Empty(t, bmcVolumes(t, url), name)
	}
	n.TargetRAIDConfig = map[string]any{"logical_disks": []any{map[string]any{"raid_level": "1", "size_gb": "MAX"}}}
	err := run(steps.Clean, "create_configuration", nil)
	require.ErrorIs(t, err, driver.ErrInvalid)
	assert.Contains(t, err.Error(), "logical_disks[0]: size_gb 'MAX' needs physical_disks")

	// MAX on named drives: the BMC sizes the volume (no CapacityBytes sent).
	n.TargetRAIDConfig = map[string]any{"logical_disks": []any{map[string]any{"raid_level": "1", "size_gb": "MAX",
		"controller": "RAID.Integrated.1-1", "physical_disks": []any{"Disk.Bay.2", "Disk.Bay.3"}}}}
	require.NoError(t, run(steps.Clean, "create_configuration", nil))
	assert.Equal(t, 10, n.RAIDConfig["logical_disks"].([]any)[0].(map[string]any)["size_gb"])

	// apply_configuration: the argument becomes target_raid_config; only the root volume by default. Every
	// logical disk is planned all the same: the RAID 0 volume may share the RAID 1+0 volume's drives.
	cfg := map[string]any{"logical_disks": []any{map[string]any{"raid_level": "1+0", "size_gb": float64(2), "is_root_volume": true},
		map[string]any{"raid_level": "0", "size_gb": float64(1), "share_physical_disks": true}}}
	require.NoError(t, run(steps.Deploy, "apply_configuration", map[string]any{"raid_config": cfg, "delete_existing": true}))
	assert.Equal(t, cfg, n.TargetRAIDConfig)
	assert.Equal(t, []string{"RAID10"}, bmcVolumes(t, url))
	err = run(steps.Deploy, "apply_configuration", map[string]any{"raid_config": map[string]any{"logical_disks": "x"}})
	require.ErrorIs(t, err, driver.ErrInvalid)
	assert.Contains(t, err.Error(), "'logical_disks' is a required property")
}
