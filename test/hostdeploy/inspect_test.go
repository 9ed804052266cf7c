package hostdeploy_test

// In-band inspection with the real agent: the conductor boots ferric-agent as a local process (local-agent boot
// interface, --inspect), the agent collects this host's inventory and posts it to /v1/continue_inspection.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/nodes"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/ports"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/conductor"
)

// inspectNode creates a manageable fake-hardware node that inspects in-band through a local agent on dev, with
// ports for macs. The node is deleted when the test ends (its inspected ports carry this host's MACs, which
// another test's node must not find).
func (r *rig) inspectNode(t testing.TB, name, dev string, macs ...string) string {
	ctx := context.Background()
	n, err := nodes.Create(ctx, r.cl, nodes.CreateOpts{Name: name, Driver: "fake-hardware", BootInterface: "local-agent",
		DeployInterface: "bootc", InspectInterface: "agent", DriverInfo: map[string]any{"local_agent_device": dev}}).Extract()
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx := context.Background()
		nodes.ChangeProvisionState(ctx, r.cl, n.UUID, nodes.ProvisionStateOpts{Target: nodes.TargetAbort})
		nodes.SetMaintenance(ctx, r.cl, n.UUID, nodes.MaintenanceOpts{Reason: "test cleanup"})
		for i := 0; i < 100 && nodes.Delete(ctx, r.cl, n.UUID).ExtractErr() != nil; i++ {
			time.Sleep(100 * time.Millisecond) // an abort's tear-down still holds the node
		}
	})
	for _, m := range macs {
		_, err := ports.Create(ctx, r.cl, ports.CreateOpts{NodeUUID: n.UUID, Address: m}).Extract()
		require.NoError(t, err)
	}
	require.NoError(t, nodes.ChangeProvisionState(ctx, r.cl, n.UUID, nodes.ProvisionStateOpts{Target: nodes.TargetManage}).ExtractErr())
	r.wait(t, n.UUID, "manageable", time.Minute)
	return n.UUID
}

// agentsOf lists the PIDs of running processes whose command line names the node (its local agent).
func agentsOf(t testing.TB, uuid string) []string {
	entries, err := os.ReadDir("/proc")
	require.NoError(t, err)
	var pids []string
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(b), uuid) && strings.Contains(string(b), "--inspect") {
			pids = append(pids, e.Name())
		}
	}
	return pids
}

// hostMACs are the MACs of this host's NICs (the agent reports them), loopback excluded.
func hostMACs(t testing.TB) []string {
	dirs, err := filepath.Glob("/sys/class/net/*/address")
	require.NoError(t, err)
	var macs []string
	for _, d := range dirs {
		b, _ := os.ReadFile(d)
		if m := strings.TrimSpace(string(b)); m != "" && m != "00:00:00:00:00:00" {
			macs = append(macs, m)
		}
	}
	return macs
}

func (r *rig) inspect(t testing.TB, id string) time.Duration {
	start := time.Now()
	require.NoError(t, nodes.ChangeProvisionState(context.Background(), r.cl, id, nodes.ProvisionStateOpts{Target: nodes.TargetInspect}).ExtractErr())
	r.wait(t, id, "manageable", 2*time.Minute)
	return time.Since(start)
}

func (r *rig) postInspection(t testing.TB, query, body string) (int, string) {
	req, err := http.NewRequest(http.MethodPost, r.c.URL+"/v1/continue_inspection"+query, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("X-OpenStack-Ironic-API-Version", "1.84")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestInbandInspection: manage -> inspect (agent) -> manageable with properties, ports and the inventory served at
// /v1/nodes/{id}/inventory, the agent stopped; then continue_inspection for the node (no longer inspecting) is
// refused, a bad body gets a 400 naming the field, and an inspection whose data the conductor refuses (the node's
// ports are not the agent's) times out with Ironic's message. Before in-band inspection existed the agent inspect
// interface refused: the node ended in "inspect failed" at once.
func TestInbandInspection(t *testing.T) {
	r := newRig(t, func(cfg *conductor.Config) { cfg.Engine.InspectWaitTimeout = 10 * time.Second })
	dev, _ := loop(t, 2<<30)
	id := r.inspectNode(t, "inspect-a", dev) // no ports: found by the UUID the agent was started with
	took := r.inspect(t, id)
	t.Logf("in-band inspection, request to manageable: %s", took)
	got, err := nodes.Get(context.Background(), r.cl, id).Extract()
	require.NoError(t, err)
	for _, k := range []string{"cpus", "memory_mb", "local_gb", "cpu_arch"} {
		assert.Contains(t, got.Properties, k)
	}
	assert.Greater(t, got.Properties["memory_mb"], float64(0))
	assert.Greater(t, got.Properties["cpus"], float64(0))
	assert.NotNil(t, got.InspectionFinishedAt)
	assert.Empty(t, got.LastError)
	assert.Empty(t, agentsOf(t, id), "the agent is stopped when inspection finishes")
	assert.NotContains(t, got.DriverInternalInfo, "agent_secret_token")

	// The inventory, as Metal3 reads it.
	req, _ := http.NewRequest(http.MethodGet, r.c.URL+"/v1/nodes/"+id+"/inventory", nil)
	req.Header.Set("X-OpenStack-Ironic-API-Version", "1.81")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	var inv struct {
		Inventory  map[string]any `json:"inventory"`
		PluginData map[string]any `json:"plugin_data"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&inv))
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.NotEmpty(t, inv.Inventory["interfaces"])
	assert.NotEmpty(t, inv.Inventory["disks"])
	assert.Contains(t, inv.PluginData, "root_disk")

	// Ports for this host's NICs (add_ports=pxe without a PXE NIC: all of them, as Ironic).
	pages, err := ports.List(r.cl, ports.ListOpts{NodeUUID: id}).AllPages(context.Background())
	require.NoError(t, err)
	list, err := ports.ExtractPorts(pages)
	require.NoError(t, err)
	var addrs []string
	for _, p := range list {
		addrs = append(addrs, p.Address)
	}
	require.NotEmpty(t, addrs)
	assert.Subset(t, hostMACs(t), addrs)

	// Inspecting again finds the node by its MACs now, and gives the same facts.
	r.inspect(t, id)

	// The node rests: posting data for it is refused with the 404 every unknown node gets.
	body := fmt.Sprintf(`{"inventory": {"interfaces": [{"name": "x", "mac_address": %q}], "cpu": {"count": 64,
		"architecture": "x86_64"}, "memory": {"physical_mb": 1048576}}}`, addrs[0])
	code, msg := r.postInspection(t, "", body)
	assert.Equal(t, http.StatusNotFound, code, msg)
	assert.Contains(t, msg, "Resource could not be found.")
	code, msg = r.postInspection(t, "?node_uuid="+id, `{"inventory": {"interfaces": []}}`)
	assert.Equal(t, http.StatusBadRequest, code)
	assert.Contains(t, msg, "inventory.interfaces")
	assert.Contains(t, msg, "must be a non-empty list")
	got, err = nodes.Get(context.Background(), r.cl, id).Extract()
	require.NoError(t, err)
	assert.NotEqual(t, float64(64), got.Properties["cpus"], "refused data changes nothing")

	// A second node whose only port is not on this host: the agent's data is refused (a node with ports must own
	// one of the agent's MACs; the first node, which owns them now, goes first), the agent goes on to its lookup
	// and heartbeats, and inspect wait times out with Ironic's message.
	ctx := context.Background()
	require.NoError(t, nodes.SetMaintenance(ctx, r.cl, id, nodes.MaintenanceOpts{Reason: "done"}).ExtractErr())
	require.NoError(t, nodes.Delete(ctx, r.cl, id).ExtractErr())
	dev2, _ := loop(t, 2<<30)
	id2 := r.inspectNode(t, "inspect-b", dev2, "52:54:00:fe:ed:01")
	start := time.Now()
	require.NoError(t, nodes.ChangeProvisionState(context.Background(), r.cl, id2, nodes.ProvisionStateOpts{Target: nodes.TargetInspect}).ExtractErr())
	failed := r.wait(t, id2, "inspect failed", time.Minute)
	t.Logf("inspect wait timed out after %s", time.Since(start))
	assert.Equal(t, "timeout reached while inspecting the node", failed.LastError)
	assert.GreaterOrEqual(t, time.Since(start), 10*time.Second)
	assert.NotContains(t, failed.Properties, "cpus")
	assert.Eventually(t, func() bool { return len(agentsOf(t, id2)) == 0 }, 10*time.Second, 100*time.Millisecond,
		"the timeout stops the agent")
}

// BenchmarkInbandInspection measures in-band inspection with the real agent from the inspect request to
// manageable (the local agent starts in milliseconds: this is the conductor's and the agent's own work).
func BenchmarkInbandInspection(b *testing.B) {
	r := newRig(b)
	dev, _ := loop(b, 2<<30)
	id := r.inspectNode(b, "bench-inspect", dev)
	var took []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		took = append(took, r.inspect(b, id))
	}
	b.ReportMetric(float64(median(took).Milliseconds()), "inspect-ms/median")
}
