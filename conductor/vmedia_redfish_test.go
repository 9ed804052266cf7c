package conductor_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/noauth"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/nodes"
	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/test/conductortest"
	"github.com/ferric-metal/ferric/test/vbmc"
)

// TestRedfishVirtualMedia attaches, lists and detaches virtual media of a redfish node through gophercloud
// (nodes.AttachVirtualMedia, GetVirtualMedia, DetachVirtualMedia) against a conductor and ferric-vbmc on this host
// (no VM: the BMC downloads the image and records it). cdrom lands in the BMC's CD, disk in its USB stick; floppy,
// which the BMC lacks, and image_download_source local, which the conductor does not serve, are refused with a 400
// before anything changes; a detach by type leaves the other device attached.
func TestRedfishVirtualMedia(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	l := logrus.New()
	l.SetOutput(io.Discard)
	ctx, cancel := context.WithCancel(context.Background())
	done, ready := make(chan error, 1), make(chan string, 1)
	go func() {
		done <- vbmc.Run(ctx, vbmc.Config{Username: "admin", Password: "pw", StateDir: filepath.Join(t.TempDir(), "vbmc"),
			Runner: vbmc.IdleRunner{}, Listener: ln, Ready: func(u string) { ready <- u },
			VMs: []vbmc.VMConfig{{Name: "vm1", UUID: "6a6ea6a4-4b3b-4a43-9d2f-8f0c2b1a0002", DiskGiB: 1}}}, logrus.NewEntry(l))
	}()
	t.Cleanup(func() { cancel(); <-done })
	bmc := <-ready
	images := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("IMAGE")) }))
	t.Cleanup(images.Close)

	c := conductortest.Start(t)
	cl, err := noauth.NewBareMetalNoAuth(noauth.EndpointOpts{IronicEndpoint: c.URL + "/v1"})
	require.NoError(t, err)
	cl.Microversion = "1.93"
	n, err := nodes.Create(ctx, cl, nodes.CreateOpts{Name: "vmedia-0", Driver: "redfish",
		DriverInfo: map[string]any{"redfish_address": bmc, "redfish_system_id": "/redfish/v1/Systems/vm1",
			"redfish_username": "admin", "redfish_password": "pw"}}).Extract()
	require.NoError(t, err)

	get := func() map[string]map[string]any {
		t.Helper()
		var list []map[string]any
		require.NoError(t, nodes.GetVirtualMedia(ctx, cl, n.UUID).ExtractInto(&list))
		byType := map[string]map[string]any{}
		for _, m := range list {
			types, _ := m["media_types"].([]any)
			require.NotEmpty(t, types, "%v", m)
			byType[types[0].(string)] = m
		}
		return byType
	}
	media := get()
	require.Len(t, media, 2, "the vbmc's CD and USB stick")
	assert.Equal(t, map[string]any{"media_types": []any{"CD", "DVD"}, "inserted": false, "image": nil}, media["CD"])

	cd, disk := images.URL+"/boot.iso", images.URL+"/disk.img"
	require.NoError(t, nodes.AttachVirtualMedia(ctx, cl, n.UUID, nodes.AttachVirtualMediaOpts{DeviceType: nodes.VirtualMediaCD,
		ImageURL: cd, ImageDownloadSource: nodes.ImageDownloadSourceHTTP}).ExtractErr())
	require.NoError(t, nodes.AttachVirtualMedia(ctx, cl, n.UUID, nodes.AttachVirtualMediaOpts{DeviceType: nodes.VirtualMediaDisk,
		ImageURL: disk, ImageDownloadSource: nodes.ImageDownloadSourceHTTP}).ExtractErr())
	// A second attach to an occupied device ejects first (the vbmc refuses an insert into an occupied slot).
	require.NoError(t, nodes.AttachVirtualMedia(ctx, cl, n.UUID, nodes.AttachVirtualMediaOpts{DeviceType: nodes.VirtualMediaCD,
		ImageURL: cd, ImageDownloadSource: nodes.ImageDownloadSourceHTTP}).ExtractErr())
	media = get()
	assert.Equal(t, map[string]any{"media_types": []any{"CD", "DVD"}, "inserted": true, "image": cd}, media["CD"])
	assert.Equal(t, map[string]any{"media_types": []any{"USBStick"}, "inserted": true, "image": disk}, media["USBStick"])

	err = nodes.AttachVirtualMedia(ctx, cl, n.UUID, nodes.AttachVirtualMediaOpts{DeviceType: nodes.VirtualMediaFloppy,
		ImageURL: disk, ImageDownloadSource: nodes.ImageDownloadSourceHTTP}).ExtractErr()
	require.Error(t, err)
	assert.True(t, gophercloud.ResponseCodeIs(err, 400), "%v", err)
	assert.Contains(t, err.Error(), "offers no Floppy virtual media")
	err = nodes.AttachVirtualMedia(ctx, cl, n.UUID, nodes.AttachVirtualMediaOpts{DeviceType: nodes.VirtualMediaCD,
		ImageURL: cd}).ExtractErr()
	require.Error(t, err)
	assert.True(t, gophercloud.ResponseCodeIs(err, 400), "%v", err)
	assert.Contains(t, err.Error(), "image_download_source local is not supported for virtual media")

	require.NoError(t, nodes.DetachVirtualMedia(ctx, cl, n.UUID, nodes.DetachVirtualMediaOpts{
		DeviceTypes: []nodes.VirtualMediaDeviceType{nodes.VirtualMediaCD}}).ExtractErr())
	media = get()
	assert.Equal(t, false, media["CD"]["inserted"])
	assert.Equal(t, true, media["USBStick"]["inserted"], "detaching cdrom leaves the disk")
	require.NoError(t, nodes.DetachVirtualMedia(ctx, cl, n.UUID, nodes.DetachVirtualMediaOpts{}).ExtractErr())
	media = get()
	assert.Equal(t, false, media["USBStick"]["inserted"])

	cl.Microversion = "1.92"
	err = nodes.GetVirtualMedia(ctx, cl, n.UUID).Err
	assert.True(t, gophercloud.ResponseCodeIs(err, 404), "GET is 1.93: %v", err)
}
