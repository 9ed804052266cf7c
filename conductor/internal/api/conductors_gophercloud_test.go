package api

import (
	"context"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/conductors"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/drivers"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestConductorsGophercloud lists and shows the conductor (this process) through gophercloud: the default list has
// hostname, conductor_group and alive; detail and the single GET add drivers and the timestamps; fields narrows;
// an unknown hostname and a version before 1.49 are 404s.
func TestConductorsGophercloud(t *testing.T) {
	srv, _, _, _ := extrasServer(t)
	c := gopherClient(t, srv, "1.95")
	ctx := context.Background()
	list := func(opts conductors.ListOpts) []conductors.Conductor {
		t.Helper()
		pages, err := conductors.List(c, opts).AllPages(ctx)
		require.NoError(t, err)
		out, err := conductors.ExtractConductors(pages)
		require.NoError(t, err)
		return out
	}
	plain := list(conductors.ListOpts{})
	require.Len(t, plain, 1)
	assert.Equal(t, "t", plain[0].Hostname)
	assert.True(t, plain[0].Alive)
	assert.Empty(t, plain[0].Drivers, "drivers only with detail")
	assert.True(t, plain[0].CreatedAt.IsZero())

	detail := list(conductors.ListOpts{Detail: true})
	require.Len(t, detail, 1)
	assert.ElementsMatch(t, []string{"bare-hardware", "fake-hardware"}, detail[0].Drivers)
	assert.False(t, detail[0].CreatedAt.IsZero())
	assert.False(t, detail[0].UpdatedAt.Before(detail[0].CreatedAt))

	fields := list(conductors.ListOpts{Fields: []string{"hostname", "drivers"}})
	require.Len(t, fields, 1)
	assert.Equal(t, "t", fields[0].Hostname)
	assert.NotEmpty(t, fields[0].Drivers)
	assert.False(t, fields[0].Alive, "alive was not asked for")
	assert.Empty(t, list(conductors.ListOpts{Marker: "t", Limit: 1}), "the marker was the last")
	// gophercloud refuses detail with fields itself; the server does too, as Ironic.
	rec := call(srv, "GET", "/v1/conductors?detail=true&fields=hostname", "1.95", "")
	require.Equal(t, 400, rec.Code)
	assert.Equal(t, "Can not specify ?detail=True and fields in the same request.", faultString(t, rec))
	rec = call(srv, "GET", "/v1/conductors?fields=uuid", "1.95", "")
	require.Equal(t, 400, rec.Code)
	assert.Contains(t, faultString(t, rec), `Field(s) "uuid" are not valid`)
	rec = call(srv, "GET", "/v1/conductors?sort_key=alive", "1.95", "")
	require.Equal(t, 400, rec.Code)
	rec = call(srv, "GET", "/v1/conductors/?detail=True", "1.95", "")
	require.Equal(t, 200, rec.Code, "the trailing slash python-ironicclient sends")
	assert.Contains(t, rec.Body.String(), `"drivers"`)

	one, err := conductors.Get(ctx, c, "t").Extract()
	require.NoError(t, err)
	assert.Equal(t, "t", one.Hostname)
	assert.True(t, one.Alive)
	assert.NotEmpty(t, one.Drivers)
	assert.False(t, one.CreatedAt.IsZero())
	err = conductors.Get(ctx, c, "other-host").Err
	require.Error(t, err)
	assert.True(t, gophercloud.ResponseCodeIs(err, 404), "%v", err)
	assert.Contains(t, err.Error(), "Conductor other-host could not be found.")

	// A hardware type whose default raid interface is no-raid has no logical disk properties (Ironic's 404).
	h, err := srv.eng.Registry().Hardware("bare-hardware")
	require.NoError(t, err)
	h.Defaults["raid"] = "no-raid"
	err = drivers.GetDriverDiskProperties(ctx, c, "bare-hardware").Err
	require.Error(t, err)
	assert.True(t, gophercloud.ResponseCodeIs(err, 404), "%v", err)
	assert.Contains(t, err.Error(), "Driver bare-hardware does not support raid (disabled or not implemented).")

	c.Microversion = "1.48"
	_, err = conductors.List(c, nil).AllPages(ctx)
	assert.True(t, gophercloud.ResponseCodeIs(err, 404), "%v", err)
	err = conductors.Get(ctx, c, "t").Err
	assert.True(t, gophercloud.ResponseCodeIs(err, 404), "%v", err)
}

// TestDriversGophercloud: the driver list (plain and detailed, and by type), one driver's details, its driver_info
// properties and its RAID logical disk properties, as gophercloud decodes them; a hardware type without RAID and
// an unknown one are 404s, and the RAID call before 1.12 is a 406, as Ironic.
func TestDriversGophercloud(t *testing.T) {
	f := newBIOSFix(t)
	c := gopherClient(t, f.srv, "1.95")
	ctx := context.Background()
	list := func(opts drivers.ListDriversOpts) []drivers.Driver {
		t.Helper()
		pages, err := drivers.ListDrivers(c, opts).AllPages(ctx)
		require.NoError(t, err)
		out, err := drivers.ExtractDrivers(pages)
		require.NoError(t, err)
		return out
	}
	plain := list(drivers.ListDriversOpts{})
	require.Len(t, plain, 1)
	assert.Equal(t, "fake-hardware", plain[0].Name)
	assert.Equal(t, "dynamic", plain[0].Type)
	assert.Equal(t, []string{"t"}, plain[0].Hosts)
	assert.NotEmpty(t, plain[0].Links)
	assert.NotEmpty(t, plain[0].Properties)
	assert.Empty(t, plain[0].DefaultPowerInterface, "defaults only with detail")
	detail := list(drivers.ListDriversOpts{Detail: true})
	require.Len(t, detail, 1)
	assert.Equal(t, "fake", detail[0].DefaultPowerInterface)
	assert.Contains(t, detail[0].EnabledRaidInterfaces, "fake")
	assert.Contains(t, detail[0].EnabledBiosInterfaces, "no-bios")
	assert.Len(t, list(drivers.ListDriversOpts{Type: "dynamic"}), 1)
	assert.Empty(t, list(drivers.ListDriversOpts{Type: "classic"}))

	d, err := drivers.GetDriverDetails(ctx, c, "fake-hardware").Extract()
	require.NoError(t, err)
	assert.Equal(t, "fake", d.DefaultManagementInterface)
	assert.Equal(t, "fake", d.DefaultBiosInterface)
	assert.Equal(t, "fake", d.DefaultRaidInterface)
	assert.NotEmpty(t, d.EnabledDeployInterfaces)
	err = drivers.GetDriverDetails(ctx, c, "nope").Err
	assert.True(t, gophercloud.ResponseCodeIs(err, 404), "%v", err)

	props, err := drivers.GetDriverProperties(ctx, c, "fake-hardware").Extract()
	require.NoError(t, err)
	assert.Contains(t, *props, "deploy_kernel")

	disk, err := drivers.GetDriverDiskProperties(ctx, c, "fake-hardware").Extract()
	require.NoError(t, err)
	assert.Contains(t, *disk, "raid_level")
	assert.Contains(t, *disk, "size_gb")
	assert.Contains(t, (*disk)["size_gb"], "MAX")
	err = drivers.GetDriverDiskProperties(ctx, c, "nope").Err
	assert.True(t, gophercloud.ResponseCodeIs(err, 404), "%v", err)
	c.Microversion = "1.11"
	err = drivers.GetDriverDiskProperties(ctx, c, "fake-hardware").Err
	assert.True(t, gophercloud.ResponseCodeIs(err, 406), "%v", err)
}
