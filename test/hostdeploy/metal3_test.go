package hostdeploy_test

// Metal3's sequence, as baremetal-operator drives Ironic for one BareMetalHost, against real parts: the node is
// enrolled with inspect_interface=agent (BMO sets it on every node), managed, inspected in-band by the real agent,
// provided (automated cleaning through the agent's clean steps), deployed from a registry with a config drive,
// and deprovisioned (cleaning again). Only the machine is this host: the local-agent boot interface runs the agent
// as a process against a loop device. The VM suite does the same over Redfish virtual media for inspection and
// deploy; this test covers every verb of the sequence in seconds.

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/nodes"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/test/bootcimage"
	"github.com/ferric-metal/ferric/test/diskimagetest"
)

// TestMetal3Sequence: enroll -> manage -> inspect -> inventory -> validate -> provide -> deploy -> undeploy, each
// verb doing its work: inspection sets properties from the agent's inventory, cleaning runs
// erase_devices_metadata on the agent and wipes the disk's partition table, the deploy installs the pinned image.
func TestMetal3Sequence(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	digest := r.push(t, "metal3/os", "v1", bootcimage.Options{Marker: "metal3"})
	dev, file := loop(t, 3<<30)
	id := r.inspectNode(t, "bmh-0", dev) // created with inspect_interface=agent, then managed
	// BMO sets no deploy interface: a redfish node gets autodetect, its default (TestAutodetectDrivers and the VM
	// suite check that). fake-hardware's default is fake, as Ironic's, so the host rig names autodetect.
	_, err := nodes.Update(ctx, r.cl, id, nodes.UpdateOpts{nodes.UpdateOperation{Op: nodes.ReplaceOp, Path: "/deploy_interface",
		Value: "autodetect"}}).Extract()
	require.NoError(t, err)

	// Inspection (BMO: PUT provision inspect, then GET inventory; a 404 there would restart inspection).
	took := r.inspect(t, id)
	t.Logf("inspect: %s", took)
	n, err := nodes.Get(ctx, r.cl, id).Extract()
	require.NoError(t, err)
	assert.Equal(t, "autodetect", n.DeployInterface, "a clean does not leave the node on the interface it cleaned with")
	assert.Greater(t, n.Properties["memory_mb"], float64(0), "properties come from the inventory")
	assert.Equal(t, float64(2), n.Properties["local_gb"], "the 3 GiB loop device is the root disk: 3 - 1 GiB")
	req, _ := http.NewRequest(http.MethodGet, r.c.URL+"/v1/nodes/"+id+"/inventory", nil)
	req.Header.Set("X-OpenStack-Ironic-API-Version", "1.81")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode, "BMO reads the inventory after inspection")

	// BMO validates the node's interfaces before it provisions.
	var valid map[string]struct {
		Result bool   `json:"result"`
		Reason string `json:"reason"`
	}
	resp, err = http.Get(r.c.URL + "/v1/nodes/" + id + "/validate")
	require.NoError(t, err)
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&valid))
	resp.Body.Close()
	for _, k := range []string{"power", "management", "boot", "inspect"} {
		assert.True(t, valid[k].Result, "%s: %s", k, valid[k].Reason)
	}

	// Provide: automated cleaning boots the agent and runs erase_devices_metadata on it. A partition-table-like
	// pattern at the start of the disk must be gone.
	pattern(t, dev)
	require.NoError(t, nodes.ChangeProvisionState(ctx, r.cl, id, nodes.ProvisionStateOpts{Target: nodes.TargetProvide}).ExtractErr())
	r.wait(t, id, "available", 3*time.Minute)
	assert.Contains(t, r.logText(t, id), "runs clean step deploy.erase_devices_metadata (clean.execute_clean_step")
	assert.Equal(t, make([]byte, 4096), head(t, file, 4096), "cleaning wiped the start of the disk")

	// Deploy (BMO: instance_info image_source, a config drive with user data and network data).
	r.deploy(t, id, "oci://"+r.reg.Host+"/metal3/os:v1", nodes.TargetActive,
		map[string]any{"image_pull_secret": user + ":" + pass},
		nodes.ConfigDrive{MetaData: map[string]any{"hostname": "bmh-0"}, UserData: "#cloud-config\n"})
	n = r.wait(t, id, "active", 5*time.Minute)
	assert.Equal(t, digest, installed(t, n)["digest"])
	assert.Equal(t, "power on", n.PowerState)
	// autodetect judged the image a bootable container (its labels confirm it), put bootc on the node for the
	// deploy, and the deploy installed the digest it judged.
	assert.Equal(t, "bootc", n.DeployInterface)
	assert.Equal(t, "autodetect", n.DriverInternalInfo["original_deploy_interface"])
	rec, _ := n.DriverInternalInfo["autodetect"].(map[string]any)
	assert.Equal(t, "bootc", rec["interface"], "driver_internal_info.autodetect: %v", rec)
	assert.Equal(t, digest, rec["digest"])
	assert.Equal(t, map[string]any{"containers.bootc": "1", "ostree.bootable": "1"}, rec["labels"])
	assert.Contains(t, r.logText(t, id), "autodetect chose deploy interface bootc")

	// Deprovision: undeploy, cleaning through the agent again, back to available.
	require.NoError(t, nodes.ChangeProvisionState(ctx, r.cl, id, nodes.ProvisionStateOpts{Target: nodes.TargetDeleted}).ExtractErr())
	n = r.wait(t, id, "available", 3*time.Minute)
	assert.Empty(t, n.InstanceInfo)
	assert.Equal(t, make([]byte, 4096), head(t, file, 4096), "the installed partition table is gone")
	assert.Equal(t, "autodetect", n.DeployInterface, "cleaning restored the node's own deploy interface")
	assert.NotContains(t, n.DriverInternalInfo, "original_deploy_interface")

	// The same node deploys a qcow2 whole-disk image over http and a raw disk packed as an OCI artifact: autodetect
	// picks direct for both.
	t.Run("qcow2 over http", func(t *testing.T) {
		raw := diskimagetest.RawImage(t, t.TempDir())
		qcow := diskimagetest.QCOW2(t, raw, "os.qcow2")
		srv := httptest.NewServer(http.FileServer(http.Dir(filepath.Dir(qcow))))
		defer srv.Close()
		r.deploy(t, id, srv.URL+"/os.qcow2", nodes.TargetActive, map[string]any{"image_checksum": diskimagetest.Sha256File(t, qcow)}, nil)
		r.directDeployed(t, id, raw, file, "http(s) URL")
	})
	t.Run("OCI disk artifact", func(t *testing.T) {
		raw := diskimagetest.RawImage(t, t.TempDir())
		diskimagetest.PushArtifact(t, r.reg.Host, "metal3/disk", "v1", diskimagetest.Auth(user, pass), diskimagetest.Artifact{
			File: diskimagetest.Compress(t, raw, "zstd"), MediaType: diskimagetest.MediaTypeZstd, DiskType: "raw"})
		r.deploy(t, id, "oci://"+r.reg.Host+"/metal3/disk:v1", nodes.TargetActive, map[string]any{"image_pull_secret": user + ":" + pass}, nil)
		n := r.directDeployed(t, id, raw, file, "disk image artifact")
		assert.Equal(t, "zstd", n.DriverInternalInfo["direct_oci"].(map[string]any)["compression"])
	})
}

// directDeployed waits for the node autodetect switched to direct to be active, checks the choice (the reason
// mentions why), and that the disk holds the raw image's partition (the GPT itself gained the config drive's
// entry), then undeploys it back to available on autodetect.
func (r *rig) directDeployed(t *testing.T, id, raw, file, why string) *nodes.Node {
	n := r.wait(t, id, "active", 3*time.Minute)
	assert.Equal(t, "direct", n.DeployInterface)
	rec, _ := n.DriverInternalInfo["autodetect"].(map[string]any)
	assert.Equal(t, "direct", rec["interface"], "driver_internal_info.autodetect: %v", rec)
	assert.Contains(t, rec["reason"], why)
	want, err := os.ReadFile(raw)
	require.NoError(t, err)
	f, err := os.Open(file)
	require.NoError(t, err)
	defer f.Close()
	got := make([]byte, 60<<20)
	_, err = f.ReadAt(got, 1<<20)
	require.NoError(t, err)
	require.True(t, bytes.Equal(want[1<<20:61<<20], got), "the disk holds the image's first partition")
	require.NoError(t, nodes.ChangeProvisionState(context.Background(), r.cl, id, nodes.ProvisionStateOpts{Target: nodes.TargetDeleted}).ExtractErr())
	after := r.wait(t, id, "available", 3*time.Minute)
	assert.Equal(t, "autodetect", after.DeployInterface)
	return n
}

// head reads the first size bytes of the disk image file.
func head(t testing.TB, file string, size int) []byte {
	f, err := os.Open(file)
	require.NoError(t, err)
	defer f.Close()
	b := make([]byte, size)
	_, err = f.ReadAt(b, 0)
	require.NoError(t, err)
	return b
}
