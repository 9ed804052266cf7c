package engine

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/driver/directdeploy"
	"github.com/ferric-metal/ferric/conductor/internal/store"
	"github.com/ferric-metal/ferric/deploy"
)

// writeAgent is an agent that offers IPA's write_image deploy step, records the step's params, and reports the
// command RUNNING until done is set, then SUCCEEDED with a deploy_result (or FAILED with failure).
type writeAgent struct {
	mu      sync.Mutex
	token   string
	names   []string
	params  []deploy.StepParams
	done    bool
	failure string
}

func (a *writeAgent) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if r.URL.Query().Get("agent_token") != a.token {
		http.Error(w, "bad token", http.StatusUnauthorized)
		return
	}
	if r.Method == http.MethodGet {
		res := deploy.CommandResult{ID: "w1", CommandName: deploy.CmdExecuteDeployStep, CommandStatus: deploy.StatusRunning}
		switch {
		case a.done && a.failure != "":
			res.CommandStatus = deploy.StatusFailed
			res.CommandError = &deploy.CommandError{Type: "ImageChecksumError", Code: 500, Message: a.failure}
		case a.done:
			res.CommandStatus = deploy.StatusSucceeded
			res.CommandResult = json.RawMessage(`{"deploy_result":{"device":"/dev/vda","format":"qcow2"},"deploy_step":{"step":"write_image"}}`)
		}
		_ = json.NewEncoder(w).Encode(res)
		return
	}
	var req struct {
		Name   string          `json:"name"`
		Params json.RawMessage `json:"params"`
	}
	_ = json.NewDecoder(r.Body).Decode(&req)
	a.names = append(a.names, req.Name)
	res := deploy.CommandResult{ID: "x", CommandName: req.Name, CommandStatus: deploy.StatusSucceeded}
	switch req.Name {
	case deploy.CmdProgress:
		res.CommandResult, _ = json.Marshal(deploy.Progress{Phase: "writing /dev/vda", BytesDone: 5, BytesTotal: 10, Percent: 50})
	case deploy.CmdGetDeploySteps:
		res.CommandResult = json.RawMessage(`{"deploy_steps":{"GenericHardwareManager":[{"interface":"deploy","step":"write_image","priority":0}]},` +
			`"hardware_manager_version":{"generic_hardware_manager":"1.2"}}`)
	case deploy.CmdExecuteDeployStep:
		var p deploy.StepParams
		_ = json.Unmarshal(req.Params, &p)
		a.params = append(a.params, p)
		res.ID, res.CommandStatus = "w1", deploy.StatusRunning
	}
	_ = json.NewEncoder(w).Encode(res)
}

// newDirectFixture is the rescue fixture's engine with the direct deploy interface on fake-hardware.
func newDirectFixture(t *testing.T) *rescueFixture {
	return newAgentFixture(t, driver.FakeHardware([]string{"direct"}, nil), "direct", directdeploy.New(directdeploy.Config{}))
}

// heartbeat makes the node's agent heartbeat with the fake agent's URL (looking up first for the token).
func (f *rescueFixture) heartbeat(t *testing.T, id string, a *writeAgent, url string) {
	ctx := context.Background()
	if a.token == "" {
		lr, err := f.eng.Lookup(ctx, id, nil)
		require.NoError(t, err)
		a.mu.Lock()
		a.token = lr.Token
		a.mu.Unlock()
	}
	require.NoError(t, f.eng.HeartbeatNode(ctx, id, Heartbeat{CallbackURL: url, AgentToken: a.token}))
	f.eng.Wait()
}

const directSum = "1044dec7206e8d7c9fbb4ae8f766668406d2567fc7fc1a160a9d4700fcf8f8e9"

// TestDirectDeployThroughAllSteps: a node with the direct interface boots the agent, gets IPA's write_image with
// Ironic's args (config drive from the deploy request), follows it, records what was written, stops the agent,
// boots the disk and ends active. A failed write fails the deploy with the agent's message, agent powered off.
func TestDirectDeployThroughAllSteps(t *testing.T) {
	for _, tc := range []struct {
		name, failure string
	}{{"written", ""}, {"checksum mismatch", "image checksum mismatch: expected " + directSum + ", got 00ff"}} {
		t.Run(tc.name, func(t *testing.T) {
			f := newDirectFixture(t)
			ctx := context.Background()
			n := &store.Node{UUID: uuid.NewString(), Driver: "fake-hardware", Interfaces: map[string]string{"deploy": "direct"},
				ProvisionState: "available", InstanceInfo: map[string]any{"image_source": "https://images.example.com/disk.qcow2",
					"image_checksum": directSum, "image_disk_format": "qcow2"}}
			require.NoError(t, f.eng.CreateNode(ctx, n))
			// The node boots from the network until set_boot_to_disk says otherwise (the fake defaults to disk).
			require.NoError(t, f.mgmt.SetBootDevice(ctx, n, driver.BootPXE, true))
			require.NoError(t, f.eng.Provision(ctx, n.UUID, ProvisionRequest{Target: "active", ConfigDrive: "H4sIAAAAAAAA/wMAAAAAAAAAAAA="}))
			f.eng.Wait()
			got, err := f.st.GetNode(ctx, n.UUID)
			require.NoError(t, err)
			require.Equal(t, "wait call-back", got.ProvisionState, got.LastError)
			assert.Equal(t, "ramdisk", f.boot.Prepared(n.UUID))

			a := &writeAgent{failure: tc.failure}
			srv := httptest.NewServer(a)
			defer srv.Close()
			f.heartbeat(t, n.UUID, a, srv.URL) // core step done; write_image started on the agent
			got, err = f.st.GetNode(ctx, n.UUID)
			require.NoError(t, err)
			require.Equal(t, "write_image", got.DeployStep["step"], got.LastError)
			require.Len(t, a.params, 1, "write_image started once")
			p := a.params[0]
			assert.Equal(t, "write_image", p.Step.Step)
			info, _ := p.Step.Args["image_info"].(map[string]any)
			assert.Equal(t, []any{"https://images.example.com/disk.qcow2"}, info["urls"])
			assert.Equal(t, directSum, info["checksum"])
			assert.Equal(t, "H4sIAAAAAAAA/wMAAAAAAAAAAAA=", p.Step.Args["configdrive"], "the deploy request's config drive")
			b, _ := json.Marshal(got)
			assert.NotContains(t, string(b), "H4sIAAAAAAAA", "the config drive is not stored in the node")

			a.mu.Lock()
			a.done = true
			a.mu.Unlock()
			f.heartbeat(t, n.UUID, a, srv.URL)
			got, err = f.st.GetNode(ctx, n.UUID)
			require.NoError(t, err)
			if tc.failure != "" {
				assert.Equal(t, "deploy failed", got.ProvisionState)
				assert.Contains(t, got.LastError, "writing the image failed")
				assert.Contains(t, got.LastError, directSum, "last_error names the sums")
				assert.Equal(t, driver.PowerOff, got.PowerState)
				assert.Contains(t, a.names, deploy.CmdPowerOff)
				return
			}
			require.Equal(t, "active", got.ProvisionState, got.LastError)
			assert.Equal(t, driver.PowerOn, got.PowerState)
			dev, err := f.mgmt.BootDevice(ctx, got)
			require.NoError(t, err)
			assert.Equal(t, driver.BootDisk, dev.Device)
			assert.Contains(t, a.names, deploy.CmdPowerOff, "tear_down_agent asked the agent to power off")
			rec, _ := got.DriverInternalInfo["direct_installed"].(map[string]any)
			require.NotNil(t, rec)
			assert.Equal(t, "/dev/vda", rec["device"])
			assert.Equal(t, "qcow2", rec["format"])
			assert.True(t, strings.HasPrefix(rec["image"].(string), "https://images.example.com/"))
		})
	}
}

// TestDirectDeployRefusedAtRequest: a bad direct field is refused by the deploy request itself (the API's 400),
// naming the field, and the node stays available.
func TestDirectDeployRefusedAtRequest(t *testing.T) {
	f := newDirectFixture(t)
	ctx := context.Background()
	n := &store.Node{UUID: uuid.NewString(), Driver: "fake-hardware", Interfaces: map[string]string{"deploy": "direct"},
		ProvisionState: "available", InstanceInfo: map[string]any{"image_source": "https://images.example.com/disk.qcow2"}}
	require.NoError(t, f.eng.CreateNode(ctx, n))
	err := f.eng.Provision(ctx, n.UUID, ProvisionRequest{Target: "active"})
	require.ErrorIs(t, err, ErrInvalidInput)
	assert.Contains(t, err.Error(), "Failed to validate deploy interface")
	assert.Contains(t, err.Error(), "instance_info.image_checksum")
	f.eng.Wait()
	got, err := f.st.GetNode(ctx, n.UUID)
	require.NoError(t, err)
	assert.Equal(t, "available", got.ProvisionState)
}
