package api

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestNodeBootModeAndSecureBoot: both endpoints behind 1.76, their target validation with Ironic's messages, the
// refusal of a management interface without boot modes, 409 while the node moves, and the values landing in the
// node's boot_mode / secure_boot fields (1.75).
func TestNodeBootModeAndSecureBoot(t *testing.T) {
	srv, st, fake, _ := extrasServer(t)
	bm, sb := "/v1/nodes/"+fake.UUID+"/states/boot_mode", "/v1/nodes/"+fake.UUID+"/states/secure_boot"
	runExtras(t, srv, []extrasCase{
		{"boot_mode before 1.76", "PUT", bm, "1.75", `{"target": "uefi"}`, 404,
			"This endpoint is supported starting with the API version 1.76"},
		{"secure_boot before 1.76", "PUT", sb, "1.75", `{"target": true}`, 404,
			"This endpoint is supported starting with the API version 1.76"},
		{"boot_mode unknown node", "PUT", "/v1/nodes/nope/states/boot_mode", "1.76", `{"target": "uefi"}`, 404,
			"Node nope could not be found."},
		{"boot_mode invalid", "PUT", bm, "1.76", `{"target": "efi"}`, 400,
			"Invalid boot mode efi requested for node. Allowed boot modes are: bios, uefi"},
		{"boot_mode missing", "PUT", bm, "1.76", `{}`, 400, "Invalid boot mode None requested for node."},
		{"secure_boot invalid", "PUT", sb, "1.76", `{"target": "yes please"}`, 400,
			"Invalid secure_boot yes please requested for node. Allowed secure_boot states are: True, False"},
		{"secure_boot null", "PUT", sb, "1.76", `{"target": null}`, 400, "Invalid secure_boot None requested"},
		{"boot_mode unsupported", "PUT", "/v1/nodes/bare-1/states/boot_mode", "1.76", `{"target": "bios"}`, 400,
			"Driver bare-hardware does not support set_boot_mode (disabled or not implemented)."},
		{"secure_boot unsupported", "PUT", "/v1/nodes/bare-1/states/secure_boot", "1.76", `{"target": true}`, 400,
			"Driver bare-hardware does not support set_secure_boot_state"},
		{"boot_mode bios", "PUT", bm, "1.76", `{"target": "bios"}`, 202, ""},
		{"boot_mode uefi", "PUT", bm, "latest", `{"target": "uefi"}`, 202, ""},
		{"secure_boot on", "PUT", sb, "1.76", `{"target": "true"}`, 202, ""},
	})
	got, err := st.GetNode(context.Background(), fake.UUID)
	require.NoError(t, err)
	assert.Equal(t, "uefi", got.BootMode)
	require.NotNil(t, got.SecureBoot)
	assert.True(t, *got.SecureBoot)
	rec := call(srv, "GET", "/v1/nodes/"+fake.UUID+"?fields=boot_mode,secure_boot,uuid", "1.75", "")
	assert.Contains(t, rec.Body.String(), `"boot_mode": "uefi"`)
	assert.Contains(t, rec.Body.String(), `"secure_boot": true`)
	rec = call(srv, "PUT", bm, "1.76", `{"target": "bios"}`)
	assert.Equal(t, "http://127.0.0.1:6385/v1/nodes/"+fake.UUID+"/states", rec.Header().Get("Location"))

	// A node moving between states is left alone (Ironic's 409), and nothing is written.
	n, err := st.Reserve(context.Background(), fake.UUID, "t")
	require.NoError(t, err)
	n.ProvisionState = "cleaning"
	require.NoError(t, st.UpdateNode(context.Background(), n))
	require.NoError(t, st.Release(context.Background(), n.UUID, "t"))
	rec = call(srv, "PUT", bm, "1.76", `{"target": "uefi"}`)
	require.Equal(t, 409, rec.Code, rec.Body.String())
	assert.Contains(t, faultString(t, rec), "Node is in cleaning state. Since node is transitioning")
	got, err = st.GetNode(context.Background(), fake.UUID)
	require.NoError(t, err)
	assert.Equal(t, "bios", got.BootMode)
}
