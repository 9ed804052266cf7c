package redfish

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// TestAgentCmdlineInspection: an agent booted for in-band inspection gets Ironic's ipa-inspection-callback-url
// (the continue_inspection URL of the API the agent reaches); any other agent boot does not.
func TestAgentCmdlineInspection(t *testing.T) {
	v := &VirtualMedia{APIURL: "http://10.0.2.2:6385", KernelArgs: "ferric.log=debug"}
	for _, tc := range []struct {
		state, want string
	}{
		{"inspecting", "console=ttyS0,115200 ferric.log=debug ferric.dns=10.0.2.2 ipa-inspection-callback-url=http://10.0.2.2:6385/v1/continue_inspection"},
		{"deploying", "console=ttyS0,115200 ferric.log=debug ferric.dns=10.0.2.2"},
		{"cleaning", "console=ttyS0,115200 ferric.log=debug ferric.dns=10.0.2.2"},
	} {
		n := &store.Node{ProvisionState: tc.state, DriverInfo: map[string]any{"kernel_append_params": "ferric.dns=10.0.2.2"}}
		assert.Equal(t, tc.want, v.agentCmdline(n), tc.state)
	}
}

// TestInspectionCallback: Ironic's get_inspection_callback, with and without /v1 on the base URL.
func TestInspectionCallback(t *testing.T) {
	for in, want := range map[string]string{
		"http://10.0.2.2:6385":      "http://10.0.2.2:6385/v1/continue_inspection",
		"https://ironic.example/":   "https://ironic.example/v1/continue_inspection",
		"https://ironic.example/v1": "https://ironic.example/v1/continue_inspection",
	} {
		assert.Equal(t, want, InspectionCallback(in), in)
	}
}
