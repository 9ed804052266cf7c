package engine

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// TestTraitsUnderLock: traits are set, added (idempotent) and removed under the node's lock; a held lock is a
// LockedError, a missing trait Ironic's NodeTraitNotFound, more than 50 traits a 400 that changes nothing.
func TestTraitsUnderLock(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, Config{LockRetries: 1})
	n := f.node(t, "available")

	require.NoError(t, f.eng.SetTraits(ctx, n.UUID, []string{"CUSTOM_B", "CUSTOM_A", "CUSTOM_B"}))
	require.NoError(t, f.eng.AddTrait(ctx, n.UUID, "HW_CPU_X86_AVX2"))
	require.NoError(t, f.eng.AddTrait(ctx, n.UUID, "CUSTOM_A"))
	assert.Equal(t, []string{"CUSTOM_A", "CUSTOM_B", "HW_CPU_X86_AVX2"}, f.get(t, n.UUID).Traits, "sorted, no duplicates")

	var nf *TraitNotFoundError
	require.ErrorAs(t, f.eng.RemoveTrait(ctx, n.UUID, "CUSTOM_C"), &nf)
	assert.Equal(t, "Node "+n.UUID+" doesn't have a trait 'CUSTOM_C'", nf.Error())
	require.NoError(t, f.eng.RemoveTrait(ctx, n.UUID, "CUSTOM_B"))
	assert.Equal(t, []string{"CUSTOM_A", "HW_CPU_X86_AVX2"}, f.get(t, n.UUID).Traits)

	var many []string
	for i := 0; i < MaxTraitsPerNode; i++ {
		many = append(many, fmt.Sprintf("CUSTOM_T%02d", i))
	}
	require.NoError(t, f.eng.SetTraits(ctx, n.UUID, many))
	err := f.eng.AddTrait(ctx, n.UUID, "CUSTOM_ONE_TOO_MANY")
	require.ErrorIs(t, err, ErrInvalidInput)
	assert.Contains(t, err.Error(), "would exceed the maximum number of traits per node (51 vs. 50)")
	assert.Len(t, f.get(t, n.UUID).Traits, MaxTraitsPerNode, "a refused add changes nothing")
	require.ErrorIs(t, f.eng.SetTraits(ctx, n.UUID, []string{"lower_case"}), ErrInvalidInput)

	_, err = f.st.Reserve(ctx, n.UUID, "other-conductor")
	require.NoError(t, err)
	var le *store.LockedError
	require.ErrorAs(t, f.eng.RemoveAllTraits(ctx, n.UUID), &le, "a reserved node's traits do not change")
	require.NoError(t, f.st.Release(ctx, n.UUID, "other-conductor"))
	require.NoError(t, f.eng.RemoveAllTraits(ctx, n.UUID))
	assert.Equal(t, []string{}, f.get(t, n.UUID).Traits)
}

func TestValidTraitName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"CUSTOM_X", true}, {"CUSTOM_RAID_5", true}, {"HW_CPU_X86_AVX2", true}, {"", false}, {"CUSTOM_", false},
		{"custom_x", false}, {"CUSTOM-X", false}, {"CUSTOM_" + strings.Repeat("A", 248), true},
		{"CUSTOM_" + strings.Repeat("A", 249), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidTraitName(tc.name)
			if tc.ok {
				assert.NoError(t, err)
			} else {
				assert.ErrorIs(t, err, ErrInvalidInput)
			}
		})
	}
}

// TestDeployTemplateApplied: a deploy whose instance_info.traits names a template runs the template's steps
// (here the fake BIOS factory_reset at priority 150, before the core step), in the plan and the deploy log;
// the user's deploy_steps win over a template step of the same name.
func TestDeployTemplateApplied(t *testing.T) {
	ctx := context.Background()
	f, d := stepFixture(t, Config{})
	n := f.node(t, "available")
	require.NoError(t, f.eng.SetTraits(ctx, n.UUID, []string{"CUSTOM_X", "CUSTOM_Y"}))
	require.NoError(t, f.eng.CreateDeployTemplate(ctx, &store.DeployTemplate{Name: "CUSTOM_X", Steps: []store.TemplateStep{
		{Interface: "bios", Step: "factory_reset", Args: map[string]any{}, Priority: 150}}}))
	writeNode(t, f.st, n.UUID, func(n *store.Node) { n.InstanceInfo["traits"] = []any{"CUSTOM_X"} })
	res, err := f.eng.Validate(ctx, n.UUID)
	require.NoError(t, err)
	assert.True(t, res["deploy"].Result, res["deploy"].Reason)

	require.NoError(t, f.eng.Provision(ctx, n.UUID, ProvisionRequest{Target: "active"}))
	f.eng.Wait()
	got := f.get(t, n.UUID)
	assert.Equal(t, "active", got.ProvisionState, got.LastError)
	assert.Equal(t, []string{"deploy:bios.factory_reset"}, d.steps(), "the template's step ran")
	lines, err := f.st.DeployLog(ctx, n.UUID, "")
	require.NoError(t, err)
	assert.Contains(t, logText(lines), "deploy steps: bios.factory_reset (priority 150), deploy.deploy (priority 100)")

	// A user step of the same interface and step replaces the template's: priority 0 disables it.
	d.mu.Lock()
	d.ran = nil
	d.mu.Unlock()
	require.NoError(t, f.eng.Provision(ctx, n.UUID, ProvisionRequest{Target: "rebuild", DeploySteps: []map[string]any{
		{"interface": "bios", "step": "factory_reset", "priority": 0.0, "args": map[string]any{}}}}))
	f.eng.Wait()
	got = f.get(t, n.UUID)
	assert.Equal(t, "active", got.ProvisionState, got.LastError)
	assert.Empty(t, d.steps(), "the user's priority 0 wins over the template")
}

// TestDeployTemplateRefusals: instance traits the node lacks, a template step the node does not offer, and two
// templates with the same step are 400s before anything changes, as in Ironic's deploy validation.
func TestDeployTemplateRefusals(t *testing.T) {
	ctx := context.Background()
	f, d := stepFixture(t, Config{})
	for _, tp := range []*store.DeployTemplate{
		{Name: "CUSTOM_UNKNOWN_STEP", Steps: []store.TemplateStep{{Interface: "bios", Step: "overclock", Priority: 10}}},
		{Name: "CUSTOM_A", Steps: []store.TemplateStep{{Interface: "bios", Step: "factory_reset", Priority: 10}}},
		{Name: "CUSTOM_B", Steps: []store.TemplateStep{{Interface: "bios", Step: "factory_reset", Priority: 20}}},
	} {
		require.NoError(t, f.eng.CreateDeployTemplate(ctx, tp))
	}
	for _, tc := range []struct {
		name   string
		traits any
		want   string
	}{
		{"not a list", "CUSTOM_A", "A list of strings is expected"},
		{"not strings", []any{1.0}, "A list of strings is expected"},
		{"trait the node lacks", []any{"CUSTOM_NOT_ON_NODE"}, "is missing traits CUSTOM_NOT_ON_NODE"},
		{"step not offered", []any{"CUSTOM_UNKNOWN_STEP"},
			"Matching deploy templates: CUSTOM_UNKNOWN_STEP. Errors: node does not support this deploy step: {'interface': 'bios', 'step': 'overclock'}"},
		{"duplicate across templates", []any{"CUSTOM_A", "CUSTOM_B"}, "Duplicate deploy steps for bios.factory_reset"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := f.node(t, "available")
			require.NoError(t, f.eng.SetTraits(ctx, n.UUID, []string{"CUSTOM_A", "CUSTOM_B", "CUSTOM_UNKNOWN_STEP"}))
			writeNode(t, f.st, n.UUID, func(n *store.Node) { n.InstanceInfo["traits"] = tc.traits })
			// GET /validate shows the refusal first, as Ironic's validate_driver_interfaces does.
			res, err := f.eng.Validate(ctx, n.UUID)
			require.NoError(t, err)
			assert.False(t, res["deploy"].Result)
			assert.Contains(t, res["deploy"].Reason, tc.want)
			assert.NotContains(t, res["deploy"].Reason, ErrInvalidInput.Error(), "no sentinel in the reason")
			err = f.eng.Provision(ctx, n.UUID, ProvisionRequest{Target: "active"})
			require.ErrorIs(t, err, ErrInvalidInput)
			assert.Contains(t, err.Error(), tc.want)
			assert.Equal(t, "available", f.get(t, n.UUID).ProvisionState)
		})
	}
	assert.Empty(t, d.steps())
}

// TestValidateDeployTemplate: the checks create and patch share.
func TestValidateDeployTemplate(t *testing.T) {
	step := store.TemplateStep{Interface: "bios", Step: "apply_configuration", Priority: 10}
	for _, tc := range []struct {
		name string
		tp   store.DeployTemplate
		want string
	}{
		{"ok", store.DeployTemplate{Name: "CUSTOM_OK", Steps: []store.TemplateStep{step}}, ""},
		{"bad name", store.DeployTemplate{Name: "custom_ok", Steps: []store.TemplateStep{step}}, "is not a valid trait"},
		{"no steps", store.DeployTemplate{Name: "CUSTOM_OK"}, "a template needs at least one deploy step"},
		{"bad interface", store.DeployTemplate{Name: "CUSTOM_OK", Steps: []store.TemplateStep{{Interface: "network", Step: "x"}}},
			"steps[0].interface: 'network' is not one of bios, deploy, firmware, management, power, raid, vendor"},
		{"no step name", store.DeployTemplate{Name: "CUSTOM_OK", Steps: []store.TemplateStep{{Interface: "bios"}}}, "a step name is required"},
		{"negative priority", store.DeployTemplate{Name: "CUSTOM_OK", Steps: []store.TemplateStep{{Interface: "bios", Step: "x", Priority: -1}}},
			"less than the minimum of 0"},
		{"duplicates", store.DeployTemplate{Name: "CUSTOM_OK", Steps: []store.TemplateStep{step, step}},
			"Duplicates: interface: bios, step: apply_configuration."},
		{"bad uuid", store.DeployTemplate{UUID: "nope", Name: "CUSTOM_OK", Steps: []store.TemplateStep{step}}, "Expected a UUID"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateDeployTemplate(&tc.tp)
			if tc.want == "" {
				assert.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, ErrInvalidInput)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func logText(lines []store.LogLine) string {
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(l.Message + "\n")
	}
	return b.String()
}
