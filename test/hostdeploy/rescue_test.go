package hostdeploy_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/GehirnInc/crypt/sha512_crypt"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/nodes"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rescueShadowHash reads the rescue user's hash from the local agent's rescue root: the agent's --state-dir
// (the local-agent boot interface's run directory, r<first 8 bytes of sha256(uuid)>) + rescue-root. A local agent
// never writes the host's own /etc.
func (r *rig) rescueShadowHash(t *testing.T, uuid string) string {
	sum := sha256.Sum256([]byte(uuid))
	b, err := os.ReadFile(filepath.Join(r.state, "r"+hex.EncodeToString(sum[:8]), "rescue-root", "etc", "shadow"))
	require.NoError(t, err, "the agent wrote the rescue user's shadow entry")
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Split(l, ":"); f[0] == "rescue" && len(f) > 1 {
			return f[1]
		}
	}
	t.Fatalf("no rescue entry in shadow:\n%s", b)
	return ""
}

// TestRescueCycle drives adopt, rescue and unrescue through the API with the real agent as a local process:
// adoption without image_source fails naming it and leaves the disk alone; an adopted node is rescued (the agent
// boots, finalize_rescue gives it the password hash, it writes the rescue user and stays up without its API) and
// unrescued (the agent is stopped, the node active again). The clear password is in no API answer.
func TestRescueCycle(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	dev, file := loop(t, 64<<20)
	const pw = "hunter2-rescue-Pw"
	create := func(name string, ii map[string]any) *nodes.Node {
		n, err := nodes.Create(ctx, r.cl, nodes.CreateOpts{Name: name, Driver: "fake-hardware", BootInterface: "local-agent",
			DeployInterface: "bootc", RescueInterface: "agent", DriverInfo: map[string]any{"local_agent_device": dev},
			Properties: map[string]any{"capabilities": "boot_mode:uefi"}}).Extract()
		require.NoError(t, err)
		var ops nodes.UpdateOpts
		for k, v := range ii {
			ops = append(ops, nodes.UpdateOperation{Op: nodes.AddOp, Path: "/instance_info/" + k, Value: v})
		}
		if len(ops) > 0 {
			_, err = nodes.Update(ctx, r.cl, n.UUID, ops).Extract()
			require.NoError(t, err)
		}
		require.NoError(t, nodes.ChangeProvisionState(ctx, r.cl, n.UUID, nodes.ProvisionStateOpts{Target: nodes.TargetManage}).ExtractErr())
		r.wait(t, n.UUID, "manageable", time.Minute)
		require.NoError(t, nodes.ChangeProvisionState(ctx, r.cl, n.UUID, nodes.ProvisionStateOpts{Target: nodes.TargetAdopt}).ExtractErr())
		return n
	}
	f, err := os.OpenFile(file, os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteAt([]byte("instance bytes"), 0) // a disk with an instance on it
	require.NoError(t, err)
	require.NoError(t, f.Close())

	bad := create("adopt-bad", nil)
	got := r.wait(t, bad.UUID, "adopt failed", time.Minute)
	assert.Contains(t, got.LastError, "instance_info.image_source is missing")

	n := create("rescue-a", map[string]any{"image_source": "oci://" + r.reg.Host + "/ferric/os:stable"})
	r.wait(t, n.UUID, "active", time.Minute)
	disk, err := os.ReadFile(file)
	require.NoError(t, err)
	assert.Equal(t, "instance bytes", string(disk[:14]), "adoption does not touch the disk")

	start := time.Now()
	require.NoError(t, nodes.ChangeProvisionState(ctx, r.cl, n.UUID, nodes.ProvisionStateOpts{Target: nodes.TargetRescue, RescuePassword: pw}).ExtractErr())
	got = r.wait(t, n.UUID, "rescue", 2*time.Minute)
	t.Logf("rescue took %s", time.Since(start))
	assert.NoError(t, sha512_crypt.New().Verify(r.rescueShadowHash(t, n.UUID), []byte(pw)), "the rescue user logs in with the password")
	assert.NotContains(t, got.InstanceInfo, "rescue_password")
	assert.NotContains(t, got.InstanceInfo, "hashed_rescue_password", "removed once the agent has it")
	for _, k := range []string{"agent_url", "agent_secret_token"} {
		assert.NotContains(t, got.DriverInternalInfo, k)
	}
	pid, _ := got.DriverInternalInfo["local_agent_pid"].(float64)
	require.NotZero(t, pid)
	assert.NoError(t, syscall.Kill(int(pid), 0), "the rescued agent keeps running (the rescue environment)")
	body, _ := json.Marshal(got)
	assert.NotContains(t, string(body), pw)
	assert.NotContains(t, r.logText(t, n.UUID), pw)

	require.NoError(t, nodes.ChangeProvisionState(ctx, r.cl, n.UUID, nodes.ProvisionStateOpts{Target: nodes.TargetUnrescue}).ExtractErr())
	got = r.wait(t, n.UUID, "active", time.Minute)
	assert.Equal(t, "power on", got.PowerState)
	assert.Eventually(t, func() bool { return syscall.Kill(int(pid), 0) != nil }, 10*time.Second, 100*time.Millisecond,
		"unrescue stops the rescue agent")
}
