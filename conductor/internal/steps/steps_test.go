package steps

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func ids(list []Step) []string {
	out := []string{}
	for _, s := range list {
		out = append(out, s.ID())
	}
	return out
}

// bootcOffered is what the bootc deploy interface and a Redfish management interface offer for deploys.
func bootcOffered() []Step {
	return []Step{
		{Interface: "deploy", Step: "deploy", Priority: 100},
		{Interface: "deploy", Step: "execute_bootc_install", Priority: 80},
		{Interface: "deploy", Step: "set_boot_to_disk", Priority: 60},
		{Interface: "deploy", Step: "prepare_instance_boot", Priority: 60},
		{Interface: "deploy", Step: "tear_down_agent", Priority: 40},
		{Interface: "deploy", Step: "boot_instance", Priority: 20},
		{Interface: "management", Step: "set_boot_mode", Priority: 0,
			ArgsInfo: map[string]ArgInfo{"mode": {Required: true, Description: "uefi or bios"}}},
		{Interface: "deploy", Step: "erase_devices_metadata", Priority: 0, InBand: true},
	}
}

func TestSortPriorityThenInterface(t *testing.T) {
	list := []Step{
		{Interface: "raid", Step: "r", Priority: 10},
		{Interface: "deploy", Step: "d", Priority: 10},
		{Interface: "bios", Step: "b", Priority: 10},
		{Interface: "deploy", Step: "top", Priority: 99},
		{Interface: "management", Step: "m", Priority: 10},
		{Interface: "power", Step: "low", Priority: 1},
	}
	Sort(list)
	assert.Equal(t, []string{"deploy.top", "management.m", "deploy.d", "bios.b", "raid.r", "power.low"}, ids(list))
}

func TestAutomated(t *testing.T) {
	offered := []Step{
		{Interface: "deploy", Step: "erase_devices", Priority: 10, InBand: true},
		{Interface: "deploy", Step: "erase_devices_metadata", Priority: 99, InBand: true},
		{Interface: "bios", Step: "factory_reset", Priority: 0},
	}
	for _, tc := range []struct {
		name      string
		overrides map[string]int
		want      []string
	}{
		{"agent priorities", nil, []string{"deploy.erase_devices_metadata", "deploy.erase_devices"}},
		{"Ferric default: no full erase", map[string]int{"deploy.erase_devices": 0}, []string{"deploy.erase_devices_metadata"}},
		{"override reorders", map[string]int{"deploy.erase_devices": 100, "bios.factory_reset": 5},
			[]string{"deploy.erase_devices", "deploy.erase_devices_metadata", "bios.factory_reset"}},
		{"everything off", map[string]int{"deploy.erase_devices": 0, "deploy.erase_devices_metadata": 0}, []string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, ids(Automated(offered, tc.overrides)))
		})
	}
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name string
		kind Kind
		raw  []map[string]any
		err  string
	}{
		{"ok", Clean, []map[string]any{{"interface": "deploy", "step": "erase_devices", "args": map[string]any{}}}, ""},
		{"missing interface", Clean, []map[string]any{{"step": "erase_devices"}}, "Invalid clean_steps[0]: 'interface' is a required property"},
		{"bad interface", Service, []map[string]any{{"interface": "disk", "step": "x"}}, "Invalid service_steps[0]: 'disk' is not one of"},
		{"missing step", Clean, []map[string]any{{"interface": "deploy"}}, "'step' is a required property"},
		{"args not a dict", Clean, []map[string]any{{"interface": "deploy", "step": "x", "args": []any{1}}}, "'args' must be a dictionary"},
		{"deploy needs priority", Deploy, []map[string]any{{"interface": "deploy", "step": "x", "args": map[string]any{}}}, "Invalid deploy_steps[0]: 'priority' is a required property"},
		{"deploy needs args", Deploy, []map[string]any{{"interface": "deploy", "step": "x", "priority": 1.0}}, "Invalid deploy_steps[0]: 'args' is a required property"},
		{"negative priority", Deploy, []map[string]any{{"interface": "deploy", "step": "x", "args": map[string]any{}, "priority": -1.0}}, "'priority' must be a non-negative integer"},
		{"unknown key", Clean, []map[string]any{{"interface": "deploy", "step": "x", "foo": 1.0}}, "('foo' was unexpected)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(tc.kind, string(tc.kind)+"_steps", tc.raw)
			if tc.err == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, ErrInvalid)
			assert.Contains(t, err.Error(), tc.err)
		})
	}
}

func TestValidateUser(t *testing.T) {
	offered := []Step{
		{Interface: "deploy", Step: "erase_devices", Priority: 10, Abortable: true, InBand: true},
		{Interface: "management", Step: "set_boot_mode", ArgsInfo: map[string]ArgInfo{"mode": {Required: true}}},
	}
	got, err := ValidateUser(Clean, []Step{{Interface: "deploy", Step: "erase_devices"}, {Interface: "deploy", Step: "hold"},
		{Interface: "management", Step: "set_boot_mode", Args: map[string]any{"mode": "uefi"}}}, offered)
	require.NoError(t, err)
	require.Len(t, got, 3)
	assert.True(t, got[0].Abortable, "abortable comes from the offered step")
	assert.True(t, got[0].InBand)
	assert.Equal(t, 10, got[0].Priority)
	assert.Equal(t, "hold", got[1].Step, "reserved steps pass")
	assert.Equal(t, "uefi", got[2].Args["mode"])

	for _, tc := range []struct {
		name string
		user []Step
		err  []string
	}{
		{"unknown step", []Step{{Interface: "deploy", Step: "frobnicate"}},
			[]string{"node does not support this clean step: {'interface': 'deploy', 'step': 'frobnicate'}", "offer these clean steps: deploy.erase_devices, management.set_boot_mode"}},
		{"wrong interface", []Step{{Interface: "bios", Step: "erase_devices"}}, []string{"{'interface': 'bios', 'step': 'erase_devices'}"}},
		{"missing arg", []Step{{Interface: "management", Step: "set_boot_mode"}}, []string{"is missing these required arguments: mode"}},
		{"unexpected arg", []Step{{Interface: "deploy", Step: "erase_devices", Args: map[string]any{"x": 1}}}, []string{"has these unexpected arguments: x"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ValidateUser(Clean, tc.user, offered)
			require.ErrorIs(t, err, ErrInvalid)
			for _, e := range tc.err {
				assert.Contains(t, err.Error(), e)
			}
		})
	}
}

func TestMergeDeploy(t *testing.T) {
	driverOrder := []string{"deploy.deploy", "deploy.execute_bootc_install", "deploy.set_boot_to_disk",
		"deploy.prepare_instance_boot", "deploy.tear_down_agent", "deploy.boot_instance"}
	for _, tc := range []struct {
		name      string
		user      []Step
		templates []Step
		want      []string
		err       string
	}{
		{"driver steps only", nil, nil, driverOrder, ""},
		{"user step runs between driver steps by priority", []Step{
			{Interface: "management", Step: "set_boot_mode", Priority: 90, Args: map[string]any{"mode": "uefi"}}},
			nil, []string{"deploy.deploy", "management.set_boot_mode", "deploy.execute_bootc_install", "deploy.set_boot_to_disk",
				"deploy.prepare_instance_boot", "deploy.tear_down_agent", "deploy.boot_instance"}, ""},
		{"user re-prioritises a driver step", []Step{{Interface: "deploy", Step: "boot_instance", Priority: 70}}, nil,
			[]string{"deploy.deploy", "deploy.execute_bootc_install", "deploy.boot_instance", "deploy.set_boot_to_disk",
				"deploy.prepare_instance_boot", "deploy.tear_down_agent"}, ""},
		{"priority 0 disables", []Step{{Interface: "deploy", Step: "set_boot_to_disk", Priority: 0}}, nil,
			[]string{"deploy.deploy", "deploy.execute_bootc_install", "deploy.prepare_instance_boot", "deploy.tear_down_agent", "deploy.boot_instance"}, ""},
		{"hold is accepted", []Step{{Interface: "deploy", Step: "hold", Priority: 85}}, nil,
			[]string{"deploy.deploy", "deploy.hold", "deploy.execute_bootc_install", "deploy.set_boot_to_disk",
				"deploy.prepare_instance_boot", "deploy.tear_down_agent", "deploy.boot_instance"}, ""},
		{"user wins over template", []Step{{Interface: "management", Step: "set_boot_mode", Priority: 90, Args: map[string]any{"mode": "uefi"}}},
			[]Step{{Interface: "management", Step: "set_boot_mode", Priority: 10, Args: map[string]any{"mode": "bios"}},
				{Interface: "deploy", Step: "erase_devices_metadata", Priority: 95}},
			[]string{"deploy.deploy", "deploy.erase_devices_metadata", "management.set_boot_mode", "deploy.execute_bootc_install",
				"deploy.set_boot_to_disk", "deploy.prepare_instance_boot", "deploy.tear_down_agent", "deploy.boot_instance"}, ""},
		{"core step cannot be overridden", []Step{{Interface: "deploy", Step: "deploy", Priority: 50}}, nil, nil, "is a core step"},
		{"unknown step", []Step{{Interface: "bios", Step: "nope", Priority: 5}}, nil, nil, "node does not support this deploy step: {'interface': 'bios', 'step': 'nope'}"},
		{"duplicate", []Step{{Interface: "deploy", Step: "boot_instance", Priority: 5}, {Interface: "deploy", Step: "boot_instance", Priority: 6}},
			nil, nil, "Duplicate deploy steps for deploy.boot_instance"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := MergeDeploy(bootcOffered(), tc.user, tc.templates)
			if tc.err != "" {
				require.ErrorIs(t, err, ErrInvalid)
				assert.Contains(t, err.Error(), tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, ids(got))
		})
	}
	got, err := MergeDeploy(bootcOffered(), []Step{{Interface: "management", Step: "set_boot_mode", Priority: 90, Args: map[string]any{"mode": "uefi"}}},
		[]Step{{Interface: "management", Step: "set_boot_mode", Priority: 10, Args: map[string]any{"mode": "bios"}}})
	require.NoError(t, err)
	assert.Equal(t, "uefi", got[1].Args["mode"], "the user's args win over the template's")
}

func TestFromAnyRoundTrip(t *testing.T) {
	in := []Step{{Interface: "deploy", Step: "erase_devices", Priority: 10, Abortable: true, InBand: true, Args: map[string]any{}}}
	got, err := FromAny(Maps(in))
	require.NoError(t, err)
	assert.Equal(t, in, got)
	got, err = FromAny([]any{map[string]any{"interface": "deploy", "step": "x", "priority": 5.0, "args": map[string]any{}}})
	require.NoError(t, err)
	assert.Equal(t, 5, got[0].Priority)
}
