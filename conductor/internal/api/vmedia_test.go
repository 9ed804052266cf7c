package api

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// TestNodeVMedia: the 1.89 (attach, detach) and 1.93 (list) gates, Ironic's schema and URL-scheme refusals (before
// the node is looked up, as Ironic's validators run first), the fake's attachments read back and detached by the
// query's list or the path's device type, and the refusal of a management interface without virtual media.
func TestNodeVMedia(t *testing.T) {
	srv, st, fake, _ := extrasServer(t)
	base := "/v1/nodes/fake-1/vmedia"
	cd := `{"device_type": "cdrom", "image_url": "https://example.test/a.iso", "image_download_source": "http"}`
	empty := `[{"media_types": ["USBStick"], "inserted": false, "image": null},
	  {"media_types": ["CD", "DVD"], "inserted": false, "image": null},
	  {"media_types": ["Floppy"], "inserted": false, "image": null}]`
	runExtras(t, srv, []extrasCase{
		{"GET before 1.93", "GET", base, "1.92", "", 404, "The resource could not be found."},
		{"POST before 1.89", "POST", base, "1.88", cd, 404, "The resource could not be found."},
		{"DELETE before 1.89", "DELETE", base, "1.88", "", 404, "The resource could not be found."},
		{"DELETE by path before 1.89", "DELETE", base + "/cdrom", "1.88", "", 404, "The resource could not be found."},
		{"GET unknown node", "GET", "/v1/nodes/nope/vmedia", "1.93", "", 404, "Node nope could not be found."},
		{"POST unknown node", "POST", "/v1/nodes/nope/vmedia", "1.89", cd, 404, "Node nope could not be found."},
		{"DELETE unknown node", "DELETE", "/v1/nodes/nope/vmedia", "1.89", "", 404, "Node nope could not be found."},
		{"GET empty", "GET", base, "1.93", "", 200, empty},
		{"POST missing device_type", "POST", base, "1.89", `{"image_url": "http://image"}`, 400,
			"Schema error for vmedia: 'device_type' is a required property"},
		{"POST missing image_url", "POST", base, "1.89", `{"device_type": "cdrom"}`, 400,
			"Schema error for vmedia: 'image_url' is a required property"},
		{"POST invalid device_type", "POST", "/v1/nodes/nope/vmedia", "1.89", `{"device_type": "cat", "image_url": "http://i"}`,
			400, "'cat' is not one of ['disk', 'cdrom', 'floppy']"},
		{"POST upper-case device_type", "POST", base, "1.89", `{"device_type": "CDROM", "image_url": "http://i"}`,
			400, "'CDROM' is not one of"},
		{"POST invalid source", "POST", base, "1.89", `{"device_type": "disk", "image_url": "http://i", "image_download_source": "ftp"}`,
			400, "'ftp' is not one of ['http', 'local', 'swift']"},
		{"POST image_url not a string", "POST", base, "1.89", `{"device_type": "disk", "image_url": 5}`,
			400, "5 is not of type 'string' (field image_url)"},
		{"POST extra property", "POST", base, "1.89", `{"device_type": "disk", "image_url": "http://i", "username": "u"}`,
			400, "Additional properties are not allowed ('username' was unexpected)"},
		{"POST no scheme", "POST", base, "1.89", `{"device_type": "cdrom", "image_url": "abcd"}`, 400,
			"Unsupported or missing URL scheme: "},
		{"POST file scheme", "POST", base, "1.89", `{"device_type": "cdrom", "image_url": "file:///etc/passwd"}`, 400,
			"Unsupported or missing URL scheme: file"},
		{"POST not an object", "POST", base, "1.89", `[1]`, 400, "Invalid JSON in request body"},
		{"POST cdrom", "POST", base, "1.89", cd, 204, ""},
		{"POST disk, default source", "POST", base, "latest", `{"device_type": "disk", "image_url": "nfs://srv/d.img"}`, 204, ""},
		{"POST floppy", "POST", base, "1.89", `{"device_type": "floppy", "image_url": "http://srv/f.img", "image_download_source": "local"}`, 204, ""},
		{"GET attached", "GET", base, "1.93", "", 200, `[
		  {"media_types": ["USBStick"], "inserted": true, "image": "nfs://srv/d.img"},
		  {"media_types": ["CD", "DVD"], "inserted": true, "image": "https://example.test/a.iso"},
		  {"media_types": ["Floppy"], "inserted": true, "image": "http://srv/f.img"}]`},
		{"DELETE invalid type", "DELETE", base + "?device_types=cdrom,cat,dog", "1.89", "", 400,
			"Invalid device type(s) cat, dog (valid are disk, cdrom, floppy)"},
		{"DELETE invalid type by path", "DELETE", base + "/usb", "1.89", "", 400, "Invalid device type(s) usb"},
		{"DELETE cdrom by query", "DELETE", base + "?device_types=CDROM,%20cdrom", "1.89", "", 204, ""},
		{"DELETE floppy by path", "DELETE", base + "/Floppy", "1.89", "", 204, ""},
		{"GET disk left", "GET", base, "1.93", "", 200, `[
		  {"media_types": ["USBStick"], "inserted": true, "image": "nfs://srv/d.img"},
		  {"media_types": ["CD", "DVD"], "inserted": false, "image": null},
		  {"media_types": ["Floppy"], "inserted": false, "image": null}]`},
		{"DELETE all", "DELETE", base, "1.89", "", 204, ""},
		{"GET all detached", "GET", base, "1.93", "", 200, empty},
		{"GET unsupported", "GET", "/v1/nodes/bare-1/vmedia", "1.93", "", 400,
			"Driver bare-hardware does not support get_virtual_media (disabled or not implemented)."},
		{"POST unsupported", "POST", "/v1/nodes/bare-1/vmedia", "1.89", cd, 400, "does not support attach_virtual_media"},
		{"DELETE unsupported", "DELETE", "/v1/nodes/bare-1/vmedia", "1.89", "", 400, "does not support detach_virtual_media"},
	})
	n, err := st.GetNode(context.Background(), fake.UUID)
	require.NoError(t, err)
	assert.NotContains(t, n.DriverInternalInfo, "fake_vmedia", "a full detach leaves no record")
}

// TestNodeVMediaRecordAndPowerFailure: the fake's record in driver_internal_info says it is fake and keeps the
// download source (Ironic's default local when omitted); a node in maintenance for a power failure is refused
// with Ironic's TemporaryFailure (503); a success clears last_error.
func TestNodeVMediaRecordAndPowerFailure(t *testing.T) {
	srv, st, fake, _ := extrasServer(t)
	ctx := context.Background()
	base := "/v1/nodes/" + fake.UUID + "/vmedia"
	rec := call(srv, "POST", base, "1.89", `{"device_type": "cdrom", "image_url": "http://srv/a.iso"}`)
	require.Equal(t, 204, rec.Code, rec.Body.String())
	n, err := st.GetNode(ctx, fake.UUID)
	require.NoError(t, err)
	assert.Equal(t, map[string]any{"cdrom": map[string]any{"image_url": "http://srv/a.iso", "image_download_source": "http",
		"fake": true}}, n.DriverInternalInfo["fake_vmedia"])

	edit := func(fn func(n *store.Node)) {
		n, err := st.Reserve(ctx, fake.UUID, "t")
		require.NoError(t, err)
		fn(n)
		require.NoError(t, st.UpdateNode(ctx, n))
		require.NoError(t, st.Release(ctx, n.UUID, "t"))
	}
	edit(func(n *store.Node) { n.Maintenance, n.Fault, n.LastError = true, "power failure", "BMC gone" })
	rec = call(srv, "POST", base, "1.89", `{"device_type": "disk", "image_url": "http://srv/d.img"}`)
	require.Equal(t, 503, rec.Code, rec.Body.String())
	assert.Contains(t, faultString(t, rec), "Unable to attach virtual media for node "+fake.UUID+" due to power failure state")
	rec = call(srv, "DELETE", base, "1.89", "")
	require.Equal(t, 503, rec.Code, rec.Body.String())
	assert.Contains(t, faultString(t, rec), "Unable to detach virtual media")

	edit(func(n *store.Node) { n.Fault = "" })
	rec = call(srv, "DELETE", base+"?device_types=cdrom", "1.89", "")
	require.Equal(t, 204, rec.Code, rec.Body.String())
	n, err = st.GetNode(ctx, fake.UUID)
	require.NoError(t, err)
	assert.Empty(t, n.LastError, "a successful detach clears last_error, as Ironic's start of the operation does")
}
