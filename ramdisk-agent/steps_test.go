package agent

import (
	"context"
	"encoding/json"
	"io"
	"testing"

	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/deploy"
	"github.com/ferric-metal/ferric/ramdisk-agent/internal/api"
)

// TestGetStepsShape: get_clean_steps, get_deploy_steps and get_service_steps answer at once with IPA's shape:
// steps by hardware manager, and the manager's version.
func TestGetStepsShape(t *testing.T) {
	l := logrus.New()
	l.SetOutput(io.Discard)
	a := &Agent{cfg: Config{SysRoot: machine(t)}, log: logrus.NewEntry(l)}
	for _, tc := range []struct {
		cmd, key string
		want     string
	}{
		{deploy.CmdGetCleanSteps, "clean_steps", `[{"interface":"deploy","step":"erase_devices","priority":10,"reboot_requested":false,"abortable":true},` +
			`{"interface":"deploy","step":"erase_devices_metadata","priority":99,"reboot_requested":false,"abortable":true}]`},
		{deploy.CmdGetDeploySteps, "deploy_steps", `[{"interface":"deploy","step":"execute_bootc_install","priority":0,"reboot_requested":false,"abortable":false},` +
			`{"interface":"deploy","step":"write_image","priority":0,"reboot_requested":false,"abortable":false}]`},
		{deploy.CmdGetServiceSteps, "service_steps", `[{"interface":"deploy","step":"execute_bootc_install","priority":0,"reboot_requested":false,"abortable":false}]`},
	} {
		t.Run(tc.cmd, func(t *testing.T) {
			spec, ok := a.commands()[tc.cmd]
			require.True(t, ok)
			assert.False(t, spec.Async, "answered at once")
			res, err := spec.Handler(context.Background(), json.RawMessage(`{"node":{},"ports":[]}`), nil)
			require.NoError(t, err)
			b, err := json.Marshal(res)
			require.NoError(t, err)
			var got map[string]map[string]json.RawMessage
			require.NoError(t, json.Unmarshal(b, &got))
			assert.JSONEq(t, tc.want, string(got[tc.key]["GenericHardwareManager"]))
			assert.JSONEq(t, `"1.2"`, string(got["hardware_manager_version"]["generic_hardware_manager"]))
		})
	}
}

// TestExecuteUnknownStep: a step the agent does not offer for the kind is the caller's mistake (a client error
// naming the step and what is offered), and nothing runs.
func TestExecuteUnknownStep(t *testing.T) {
	l := logrus.New()
	l.SetOutput(io.Discard)
	a := &Agent{cfg: Config{SysRoot: machine(t)}, log: logrus.NewEntry(l)}
	for _, tc := range []struct{ cmd, step, want string }{
		{deploy.CmdExecuteCleanStep, "frobnicate", "clean step deploy.frobnicate is not supported by this agent; it offers: deploy.erase_devices, deploy.erase_devices_metadata"},
		{deploy.CmdExecuteServiceStep, "erase_devices", "service step deploy.erase_devices is not supported"},
	} {
		spec := a.commands()[tc.cmd]
		assert.True(t, spec.Async, "execute_*_step runs asynchronously")
		params, _ := json.Marshal(deploy.StepParams{Step: deploy.Step{Interface: "deploy", Step: tc.step}, Node: map[string]any{}})
		_, err := spec.Handler(context.Background(), params, nil)
		var ce *api.ClientError
		require.ErrorAs(t, err, &ce)
		assert.Contains(t, err.Error(), tc.want)
	}
}
