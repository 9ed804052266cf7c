package conductor_test

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/httpbasic"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/drivers"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/nodes"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/ports"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/ferric-metal/ferric/conductor"
	"github.com/ferric-metal/ferric/test/conductortest"
)

// fetch GETs url without credentials, as iPXE does.
func fetch(t *testing.T, url string) (int, string) {
	t.Helper()
	res, err := http.Get(url)
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res.StatusCode, string(b)
}

// TestIPXENetworkBoot drives an agent boot through the ipxe boot interface of a conductor with authentication on
// (iPXE has no credentials): a fake-hardware node with a port starts in-band inspection, and the test fetches what
// iPXE would — boot.ipxe, the per-MAC script it chains to, then the kernel, initramfs and configuration the script
// names — and the agent's lookup with the token from the command line. Aborting the inspection ends the boot:
// every file is a 404 again and the token is forgotten.
func TestIPXENetworkBoot(t *testing.T) {
	arts := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(arts, "vmlinuz"), []byte("AGENT-KERNEL"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(arts, "initramfs"), []byte("AGENT-INITRAMFS"), 0o600))
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	require.NoError(t, err)
	ht := filepath.Join(arts, "htpasswd")
	require.NoError(t, os.WriteFile(ht, []byte("admin:"+string(hash)+"\n"), 0o600))
	c := conductortest.Start(t, func(cfg *conductor.Config) {
		cfg.Auth, cfg.HTPasswd = "http_basic", ht
		cfg.ArtifactsDir = arts
	})
	cl, err := httpbasic.NewBareMetalHTTPBasic(httpbasic.EndpointOpts{IronicEndpoint: c.URL + "/v1", IronicUser: "admin",
		IronicUserPassword: "s3cret"})
	require.NoError(t, err)
	cl.Microversion = "1.89"
	ctx := context.Background()

	d, err := drivers.GetDriverDetails(ctx, cl, "redfish").Extract()
	require.NoError(t, err)
	assert.Subset(t, d.EnabledBootInterfaces, []string{"redfish-virtual-media", "ipxe", "pxe"}, "as Ironic's redfish hardware type")
	assert.Equal(t, "redfish-virtual-media", d.DefaultBootInterface)

	n, err := nodes.Create(ctx, cl, nodes.CreateOpts{Name: "netboot", Driver: "fake-hardware", BootInterface: "ipxe",
		InspectInterface: "agent", DriverInfo: map[string]any{"deploy_kernel": filepath.Join(arts, "vmlinuz"),
			"deploy_ramdisk": filepath.Join(arts, "initramfs")}}).Extract()
	require.NoError(t, err)
	v, err := nodes.Validate(ctx, cl, n.UUID).Extract()
	require.NoError(t, err)
	assert.False(t, v.Boot.Result)
	assert.Contains(t, v.Boot.Reason, "has no port: create one with the MAC address", "iPXE finds the script by MAC")
	const mac, hexhyp = "52:54:00:aa:bb:01", "52-54-00-aa-bb-01"
	_, err = ports.Create(ctx, cl, ports.CreateOpts{NodeUUID: n.UUID, Address: mac}).Extract()
	require.NoError(t, err)
	v, err = nodes.Validate(ctx, cl, n.UUID).Extract()
	require.NoError(t, err)
	assert.True(t, v.Boot.Result, v.Boot.Reason)
	base := c.URL + "/v1/ipxe/"
	code, _ := fetch(t, base+hexhyp+"/boot.ipxe")
	assert.Equal(t, http.StatusNotFound, code, "enroll: not booting its agent")

	provision(t, cl, n.UUID, nodes.ProvisionStateOpts{Target: nodes.TargetManage})
	waitState(t, cl, n.UUID, "manageable")
	provision(t, cl, n.UUID, nodes.ProvisionStateOpts{Target: nodes.TargetInspect})
	// The target stays manageable while inspecting (and after an abort): wait for the state alone.
	reach := func(state string) {
		require.Eventually(t, func() bool {
			got, err := nodes.Get(ctx, cl, n.UUID).Extract()
			return err == nil && got.ProvisionState == state
		}, 20*time.Second, 20*time.Millisecond, state)
	}
	reach("inspect wait")

	code, boot := fetch(t, base+"boot.ipxe")
	require.Equal(t, http.StatusOK, code)
	chain := regexp.MustCompile(`chain (\S+)\$\{mac:hexhyp\}/boot.ipxe`).FindStringSubmatch(boot)
	require.NotNil(t, chain, boot)
	code, script := fetch(t, chain[1]+hexhyp+"/boot.ipxe")
	require.Equal(t, http.StatusOK, code)
	kernel := regexp.MustCompile(`(?m)^kernel (\S+) (.*) \|\| goto retry$`).FindStringSubmatch(script)
	require.NotNil(t, kernel, script)
	args := kernel[2]
	assert.Contains(t, args, "ipa-api-url="+c.URL)
	assert.Contains(t, args, "ferric.node_uuid="+n.UUID)
	assert.Contains(t, args, "ipa-inspection-callback-url="+c.URL+"/v1/continue_inspection")
	token := regexp.MustCompile(`ipa-agent-token=(\S+)`).FindStringSubmatch(args)
	require.NotNil(t, token)
	files := map[string]string{kernel[1]: "AGENT-KERNEL"}
	for _, m := range regexp.MustCompile(`(?m)^initrd (\S+) `).FindAllStringSubmatch(script, -1) {
		files[m[1]] = ""
	}
	require.Len(t, files, 3, "kernel, initramfs and configuration")
	for u, want := range files {
		code, body := fetch(t, u)
		assert.Equal(t, http.StatusOK, code, u)
		if want != "" {
			assert.Equal(t, want, body)
		}
		if strings.HasSuffix(u, "/config") {
			assert.Contains(t, body, `"token": "`+token[1]+`"`, "agent.json carries the same token")
		}
	}
	// A restart keeps serving the boot of a node still waiting for its agent.
	c.Restart()
	code, again := fetch(t, chain[1]+hexhyp+"/boot.ipxe")
	require.Equal(t, http.StatusOK, code, "after a restart")
	assert.Equal(t, script, again)

	// The token was made for this boot: the agent's lookup does not hand out another, its heartbeat needs this one.
	code, _, body := rawRequest(t, http.MethodGet, c.URL+"/v1/lookup?node_uuid="+n.UUID, "", map[string]string{"X-OpenStack-Ironic-API-Version": "1.68"})
	require.Equal(t, http.StatusOK, code, body)
	assert.Regexp(t, `"agent_token": ?"\*{6}"`, body)
	assert.NotContains(t, body, token[1])

	// Ending the boot stops serving it; the boot script stays (it holds nothing).
	provision(t, cl, n.UUID, nodes.ProvisionStateOpts{Target: nodes.TargetAbort})
	reach("inspect failed")
	for u := range files {
		code, _ := fetch(t, u)
		assert.Equal(t, http.StatusNotFound, code, u)
	}
	code, _ = fetch(t, chain[1]+hexhyp+"/boot.ipxe")
	assert.Equal(t, http.StatusNotFound, code)
	code, _ = fetch(t, base+"boot.ipxe")
	assert.Equal(t, http.StatusOK, code)
}
