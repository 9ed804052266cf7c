package engine

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// inbandFixture is an engine whose fake-hardware nodes inspect in-band (AgentInspect with the store), with a fake
// boot interface the test can ask what it prepared.
func inbandFixture(t *testing.T, cfg Config) (*fixture, *driver.FakeBoot) {
	f := newFixture(t, cfg)
	driver.AddInspectRescue(f.eng.reg)
	f.eng.reg.AddInspect(driver.InspectAgent, driver.AgentInspect{Store: f.st, AddPorts: driver.AddPortsPXE})
	boot := driver.NewFakeBoot()
	f.eng.reg.AddBoot("fake", boot)
	return f, boot
}

// inspectingNode creates a manageable agent-inspect node with the given port MACs and starts its inspection.
func inspectingNode(t *testing.T, f *fixture, macs ...string) *store.Node {
	ctx := context.Background()
	n := &store.Node{UUID: uuid.NewString(), Driver: "fake-hardware", ProvisionState: "manageable",
		Interfaces: map[string]string{"inspect": "agent"}, Properties: map[string]any{"capabilities": "boot_mode:uefi"}}
	require.NoError(t, f.eng.CreateNode(ctx, n))
	for _, m := range macs {
		require.NoError(t, f.st.CreatePort(ctx, &store.Port{UUID: uuid.NewString(), Address: m, NodeUUID: n.UUID,
			CreatedAt: time.Now()}))
	}
	require.NoError(t, f.eng.Provision(ctx, n.UUID, ProvisionRequest{Target: "inspect"}))
	f.eng.Wait()
	got, err := f.st.GetNode(ctx, n.UUID)
	require.NoError(t, err)
	require.Equal(t, "inspect wait", got.ProvisionState, got.LastError)
	return got
}

// agentData is what ferric-agent posts for a machine with two NICs (the first one booted), 2 CPUs, 2 GiB and a
// 20 GiB disk.
func agentData(macs []string, pluginErr any) InspectionData {
	inv := map[string]any{
		"interfaces": []any{
			map[string]any{"name": "eth0", "mac_address": macs[0], "ipv4_address": "192.0.2.10"},
			map[string]any{"name": "eth1", "mac_address": macs[1]},
			map[string]any{"name": "lo", "mac_address": "00:00:00:00:00:00", "ipv4_address": "127.0.0.1"},
		},
		"cpu":    map[string]any{"count": float64(2), "architecture": "x86_64"},
		"memory": map[string]any{"total": float64(2040 << 20), "physical_mb": float64(2048)},
		"disks":  []any{map[string]any{"name": "/dev/vda", "size": float64(20 << 30)}},
		"boot":   map[string]any{"current_boot_mode": "uefi", "pxe_interface": "01-" + dashed(macs[0])},
	}
	return InspectionData{MACs: macs, Inventory: inv, PluginData: map[string]any{"error": pluginErr,
		"root_disk": map[string]any{"name": "/dev/vda", "size": float64(20 << 30)}}}
}

func dashed(mac string) string {
	out := []byte(mac)
	for i := range out {
		if out[i] == ':' {
			out[i] = '-'
		}
	}
	return string(out)
}

// TestInbandInspection: agent inspect boots the agent (power off, ramdisk, power on) and waits; the agent's data
// sets properties, stores the inventory, creates the PXE port, cleans up the agent boot, powers off and ends in
// manageable. Before in-band inspection existed, the agent interface refused and the node ended in inspect failed.
func TestInbandInspection(t *testing.T) {
	f, boot := inbandFixture(t, Config{})
	ctx := context.Background()
	macs := []string{"52:54:00:aa:00:01", "52:54:00:aa:00:02"}
	n := inspectingNode(t, f, macs[1]) // the operator knew one NIC
	assert.Equal(t, "ramdisk", boot.Prepared(n.UUID), "the agent boot is prepared")
	assert.Equal(t, driver.PowerOn, n.PowerState)
	assert.NotNil(t, n.InspectionStartedAt)

	res, err := f.eng.ContinueInspection(ctx, agentData(macs, nil))
	require.NoError(t, err)
	assert.Equal(t, n.UUID, res.Node.UUID)
	assert.Len(t, res.Token, 43, "the token is handed out once, as on lookup")
	f.eng.Wait()

	got, err := f.st.GetNode(ctx, n.UUID)
	require.NoError(t, err)
	assert.Equal(t, "manageable", got.ProvisionState, got.LastError)
	assert.Empty(t, got.TargetProvisionState)
	assert.NotNil(t, got.InspectionFinishedAt)
	assert.Equal(t, map[string]any{"capabilities": "boot_mode:uefi", "cpus": float64(2), "memory_mb": float64(2048),
		"cpu_arch": "x86_64", "local_gb": float64(19)}, got.Properties)
	assert.Equal(t, driver.PowerOff, got.PowerState, "Ironic's [inspector]power_off")
	assert.Empty(t, boot.Prepared(n.UUID), "the agent boot is cleaned up")
	assert.NotContains(t, got.DriverInternalInfo, "agent_secret_token")
	assert.Empty(t, got.Reservation)

	inv, err := f.st.Inventory(ctx, n.UUID)
	require.NoError(t, err)
	assert.Equal(t, "x86_64", inv.Inventory["cpu"].(map[string]any)["architecture"])
	assert.Contains(t, inv.PluginData, "root_disk")
	ports, err := f.st.ListPorts(ctx, store.PortFilter{NodeUUID: n.UUID}, store.ListOptions{})
	require.NoError(t, err)
	var addrs []string
	for _, p := range ports {
		addrs = append(addrs, p.Address)
	}
	assert.ElementsMatch(t, macs, addrs, "add_ports=pxe adds the booted NIC; the known one stays")

	// A second post for the same node is refused: it is no longer in inspect wait.
	_, err = f.eng.ContinueInspection(ctx, agentData(macs, nil))
	assert.ErrorIs(t, err, ErrLookupNotFound)
}

// TestContinueInspectionRefusals: data is accepted only for a node in inspect wait whose ports (if any) include
// one of the agent's MACs; every other case is the same not-found, and the node is left untouched.
func TestContinueInspectionRefusals(t *testing.T) {
	f, _ := inbandFixture(t, Config{})
	ctx := context.Background()
	waiting := inspectingNode(t, f, "52:54:00:bb:00:01")
	bare := inspectingNode(t, f) // no ports yet
	// A node that could inspect in-band but is not inspecting: only its state keeps the data out.
	idle := &store.Node{UUID: uuid.NewString(), Driver: "fake-hardware", ProvisionState: "manageable",
		Interfaces: map[string]string{"inspect": "agent"}}
	require.NoError(t, f.eng.CreateNode(ctx, idle))
	require.NoError(t, f.st.CreatePort(ctx, &store.Port{UUID: uuid.NewString(), Address: "52:54:00:cc:00:01",
		NodeUUID: idle.UUID, CreatedAt: time.Now()}))
	strangers := []string{"52:54:00:dd:00:01", "52:54:00:dd:00:02"}

	for _, tc := range []struct {
		name     string
		macs     []string
		nodeUUID string
		bmc      []string
	}{
		{"MACs of a node not inspecting", []string{"52:54:00:cc:00:01", "52:54:00:dd:00:09"}, "", nil},
		{"unknown MACs", strangers, "", nil},
		{"UUID of a node not inspecting", strangers, idle.UUID, nil},
		{"UUID of an unknown node", strangers, uuid.NewString(), nil},
		{"UUID of an inspecting node whose ports are not the agent's", strangers, waiting.UUID, nil},
		{"MACs of one node, UUID of another", []string{"52:54:00:bb:00:01", "52:54:00:dd:00:09"}, bare.UUID, nil},
		{"a BMC address no node has", strangers, "", []string{"192.0.2.99"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := agentData(tc.macs, nil)
			d.NodeUUID, d.BMCAddresses = tc.nodeUUID, tc.bmc
			_, err := f.eng.ContinueInspection(ctx, d)
			require.ErrorIs(t, err, ErrLookupNotFound)
			assert.Equal(t, "Resource could not be found.: lookup: no node", err.Error(), "one answer for every refusal")
		})
	}
	f.eng.Wait()
	for _, id := range []string{waiting.UUID, bare.UUID, idle.UUID} {
		got, err := f.st.GetNode(ctx, id)
		require.NoError(t, err)
		assert.Contains(t, []string{"inspect wait", "manageable"}, got.ProvisionState)
		assert.NotContains(t, got.Properties, "cpus")
		_, err = f.st.Inventory(ctx, id)
		assert.ErrorIs(t, err, store.ErrNotFound)
	}

	// A node with no ports yet is found by the UUID its boot medium names (its first inspection).
	d := agentData(strangers, nil)
	d.NodeUUID = bare.UUID
	res, err := f.eng.ContinueInspection(ctx, d)
	require.NoError(t, err)
	assert.Equal(t, bare.UUID, res.Node.UUID)
	f.eng.Wait()
	got, err := f.st.GetNode(ctx, bare.UUID)
	require.NoError(t, err)
	assert.Equal(t, "manageable", got.ProvisionState, got.LastError)
}

// TestInbandInspectionFailures: an agent that reports a collection error, or an inventory without what the
// properties need, fails the inspection with a clear last_error and the agent boot torn down.
func TestInbandInspectionFailures(t *testing.T) {
	for _, tc := range []struct {
		name    string
		mutate  func(d *InspectionData)
		wantErr string
	}{
		{"ramdisk error", func(d *InspectionData) { d.PluginData["error"] = "The following errors were encountered:\n* cpu: boom" },
			"Ramdisk reported error: The following errors were encountered:\n* cpu: boom"},
		{"no architecture", func(d *InspectionData) { delete(d.Inventory["cpu"].(map[string]any), "architecture") },
			"Failed to finish inspection: Inventory for node"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, boot := inbandFixture(t, Config{})
			ctx := context.Background()
			macs := []string{"52:54:00:ee:00:01", "52:54:00:ee:00:02"}
			n := inspectingNode(t, f, macs[0])
			d := agentData(macs, nil)
			tc.mutate(&d)
			_, err := f.eng.ContinueInspection(ctx, d)
			require.NoError(t, err)
			f.eng.Wait()
			got, err := f.st.GetNode(ctx, n.UUID)
			require.NoError(t, err)
			assert.Equal(t, "inspect failed", got.ProvisionState)
			assert.Contains(t, got.LastError, tc.wantErr)
			assert.Empty(t, boot.Prepared(n.UUID), "the agent boot is torn down")
			assert.Equal(t, driver.PowerOff, got.PowerState)
			assert.NotContains(t, got.Properties, "cpus")
		})
	}
}

// TestInspectWaitTimeout: inspect wait times out from the inspection's start with Ironic's message, under its own
// limit (not the call-back timeout), tearing the agent boot down; a negative limit never times out.
func TestInspectWaitTimeout(t *testing.T) {
	for _, tc := range []struct {
		name      string
		limit     time.Duration
		age       time.Duration
		wantState string
	}{
		{"expired", time.Minute, 2 * time.Minute, "inspect failed"},
		{"within the limit", time.Minute, 10 * time.Second, "inspect wait"},
		{"call-back timeout does not apply", 0, 10 * time.Minute, "inspect wait"},
		{"unlimited", -1, 48 * time.Hour, "inspect wait"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, boot := inbandFixture(t, Config{InspectWaitTimeout: tc.limit, CallbackTimeout: time.Minute})
			ctx := context.Background()
			n := inspectingNode(t, f, "52:54:00:ff:00:01")
			r, err := f.st.Reserve(ctx, n.UUID, "test-setup")
			require.NoError(t, err)
			at := time.Now().Add(-tc.age)
			r.InspectionStartedAt, r.ProvisionUpdatedAt = &at, &at
			require.NoError(t, f.st.UpdateNode(ctx, r))
			require.NoError(t, f.st.Release(ctx, n.UUID, "test-setup"))

			f.eng.checkTimeouts(ctx)

			got, err := f.st.GetNode(ctx, n.UUID)
			require.NoError(t, err)
			assert.Equal(t, tc.wantState, got.ProvisionState)
			if tc.wantState == "inspect failed" {
				assert.Equal(t, "timeout reached while inspecting the node", got.LastError)
				assert.Empty(t, boot.Prepared(n.UUID), "the agent boot is torn down")
				assert.Equal(t, driver.PowerOff, got.PowerState)
			}
		})
	}
}

// TestAbortInspectWait: abort in inspect wait fails the inspection and tears the agent boot down.
func TestAbortInspectWait(t *testing.T) {
	f, boot := inbandFixture(t, Config{})
	ctx := context.Background()
	n := inspectingNode(t, f, "52:54:00:ab:00:01")
	require.NoError(t, f.eng.Provision(ctx, n.UUID, ProvisionRequest{Target: "abort"}))
	f.eng.Wait()
	got, err := f.st.GetNode(ctx, n.UUID)
	require.NoError(t, err)
	assert.Equal(t, "inspect failed", got.ProvisionState)
	assert.Equal(t, "Inspection aborted by request", got.LastError)
	assert.Empty(t, boot.Prepared(n.UUID))
	assert.NotContains(t, got.DriverInternalInfo, "agent_secret_token")
}
