package bootcdeploy

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/steps"
	"github.com/ferric-metal/ferric/conductor/internal/store"
	"github.com/ferric-metal/ferric/deploy"
)

// stepAgent is an agent on 127.0.0.1 that accepts execute_*_step commands, reports progress, and answers the
// command's status from status (RUNNING, SUCCEEDED or FAILED with failure).
type stepAgent struct {
	mu       sync.Mutex
	names    []string
	params   []deploy.StepParams
	status   string
	failure  string
	progress deploy.Progress
}

func (a *stepAgent) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if r.Method == http.MethodPost {
		var req struct {
			Name   string          `json:"name"`
			Params json.RawMessage `json:"params"`
		}
		json.NewDecoder(r.Body).Decode(&req)
		if req.Name == deploy.CmdGetCleanSteps {
			json.NewEncoder(w).Encode(deploy.CommandResult{ID: "g", CommandStatus: deploy.StatusSucceeded, CommandResult: json.RawMessage(
				`{"clean_steps":{"GenericHardwareManager":[{"interface":"deploy","step":"erase_devices","priority":10}]},` +
					`"hardware_manager_version":{"generic_hardware_manager":"1.2"}}`)})
			return
		}
		if req.Name == deploy.CmdProgress {
			b, _ := json.Marshal(a.progress)
			json.NewEncoder(w).Encode(deploy.CommandResult{ID: "p", CommandStatus: deploy.StatusSucceeded, CommandResult: b})
			return
		}
		a.names = append(a.names, req.Name)
		var p deploy.StepParams
		json.Unmarshal(req.Params, &p)
		a.params = append(a.params, p)
		json.NewEncoder(w).Encode(deploy.CommandResult{ID: "c1", CommandName: req.Name, CommandStatus: deploy.StatusRunning})
		return
	}
	res := deploy.CommandResult{ID: strings.TrimPrefix(r.URL.Path, "/v1/commands/"), CommandStatus: a.status,
		CommandResult: json.RawMessage(`{"clean_result":null}`)}
	if a.status == deploy.StatusFailed {
		res.CommandError = &deploy.CommandError{Type: "BlockDeviceEraseError", Code: 500, Message: a.failure}
	}
	json.NewEncoder(w).Encode(res)
}

func (a *stepAgent) set(status, failure string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.status, a.failure = status, failure
}

// TestInBandCleanStep: an in-band step boots the agent first (Wait), starts clean.execute_clean_step on its
// call-back with IPA's params, copies the erase progress into clean_step while it runs, and ends Done (or with
// the agent's message); FinishSteps stops the agent it booted.
func TestInBandCleanStep(t *testing.T) {
	ctx := context.Background()
	agent := &stepAgent{status: deploy.StatusRunning, progress: deploy.Progress{Phase: "erasing /dev/vda", BytesDone: 50, BytesTotal: 100, Percent: 50}}
	srv := httptest.NewServer(agent)
	defer srv.Close()
	d := New(Config{})
	p := driver.NewFakePower()
	boot := driver.NewFakeBoot()
	n := &store.Node{UUID: "n1", ProvisionState: "cleaning", Properties: map[string]any{"root_device": map[string]any{"name": "/dev/vda"}}}
	n.Normalize()
	task := &driver.Task{Node: n, Power: p, Boot: boot, Management: driver.NewFakeManagement(), Log: quietLog(),
		Save: func(context.Context) error { return nil }}
	step := steps.Step{Interface: "deploy", Step: deploy.StepEraseDevices, Priority: 10, Abortable: true, InBand: true, Args: map[string]any{}}
	n.CleanStep = step.Map()

	out, err := d.ExecuteStep(ctx, task, steps.Clean, step)
	require.NoError(t, err)
	assert.Equal(t, driver.Wait, out, "the agent boots first")
	assert.Equal(t, "ramdisk", boot.Prepared(n.UUID))
	ps, _ := p.PowerState(ctx, n)
	assert.Equal(t, driver.PowerOn, ps)

	// The agent calls back; the next poll starts the step.
	n.ProvisionState = "clean wait"
	n.DriverInternalInfo["agent_url"], n.DriverInternalInfo["agent_secret_token"] = srv.URL, "tok"
	out, err = d.Continue(ctx, task)
	require.NoError(t, err)
	assert.Equal(t, driver.Wait, out)
	require.Equal(t, []string{deploy.CmdExecuteCleanStep}, agent.names)
	assert.Equal(t, deploy.Step{Interface: "deploy", Step: "erase_devices", Priority: 10, Abortable: true}, agent.params[0].Step)
	assert.Equal(t, map[string]any{"uuid": "n1", "properties": n.Properties}, agent.params[0].Node, "the agent gets the uuid and properties only")
	assert.Equal(t, map[string]string{"generic_hardware_manager": "1.2"}, agent.params[0].CleanVersion, "the versions the agent reported")

	out, err = d.Continue(ctx, task)
	require.NoError(t, err)
	assert.Equal(t, driver.Wait, out, "running")
	prog, _ := n.CleanStep["progress"].(map[string]any)
	assert.Equal(t, 50.0, prog["percent"], "clean_step shows the erase progress")

	agent.set(deploy.StatusSucceeded, "")
	out, err = d.Continue(ctx, task)
	require.NoError(t, err)
	assert.Equal(t, driver.Done, out)
	assert.Len(t, agent.names, 1, "the step ran once")

	// A failed step ends with the agent's message.
	agent.set(deploy.StatusFailed, "Error erasing block device /dev/vda: write error")
	n.ProvisionState = "cleaning"
	out, err = d.ExecuteStep(ctx, task, steps.Clean, step)
	require.NoError(t, err)
	assert.Equal(t, driver.Wait, out, "started at once: the agent is up")
	n.ProvisionState = "clean wait"
	_, err = d.Continue(ctx, task)
	require.EqualError(t, err, "Error erasing block device /dev/vda: write error")

	// A step the agent does not offer fails before it is sent.
	other := steps.Step{Interface: "deploy", Step: deploy.StepEraseDevicesMetadata, InBand: true}
	n.ProvisionState, n.CleanStep = "cleaning", other.Map()
	out, err = d.ExecuteStep(ctx, task, steps.Clean, other)
	require.ErrorContains(t, err, "the agent does not offer clean step deploy.erase_devices_metadata (it offers: deploy.erase_devices)")
	assert.Equal(t, driver.Done, out)
	assert.Len(t, agent.names, 2, "nothing more was sent")

	require.NoError(t, d.FinishSteps(ctx, task, steps.Clean))
	ps, _ = p.PowerState(ctx, n)
	assert.Equal(t, driver.PowerOff, ps, "the agent booted for the steps is stopped")
	assert.Empty(t, boot.Prepared(n.UUID))
	assert.NotContains(t, n.DriverInternalInfo, "agent_url")
}

// TestBootcSteps: the deploy steps of Ironic's bootc interface with their priorities, and the agent's erase
// steps with IPA's priorities for cleaning (metadata at 0 when cleaning is off).
func TestBootcSteps(t *testing.T) {
	ids := func(list []steps.Step) []string {
		var out []string
		for _, s := range list {
			out = append(out, s.ID())
		}
		return out
	}
	deploySteps := New(Config{}).Steps(steps.Deploy)
	steps.Sort(deploySteps)
	assert.Equal(t, []string{"deploy.deploy", "deploy.execute_bootc_install", "deploy.set_boot_to_disk", "deploy.prepare_instance_boot",
		"deploy.tear_down_agent", "deploy.boot_instance"}, ids(deploySteps))
	clean := New(Config{}).Steps(steps.Clean)
	assert.Equal(t, []string{"deploy.erase_devices", "deploy.erase_devices_metadata"}, ids(clean))
	assert.Equal(t, []int{10, 99}, []int{clean[0].Priority, clean[1].Priority})
	assert.True(t, clean[0].InBand && clean[1].InBand && clean[0].Abortable)
	assert.Equal(t, 0, New(Config{NoCleaning: true}).Steps(steps.Clean)[1].Priority)
}
