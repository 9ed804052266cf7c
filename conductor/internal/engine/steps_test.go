package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/steps"
	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// stepDeploy is a deploy interface with steps, like bootc's: "erase_devices_metadata" and "erase_devices" are
// in-band (they wait, and Continue finishes them), "explode" fails, the rest finish at once. It records every
// step it ran, with the node's current step field at that moment.
type stepDeploy struct {
	driver.FakeDeploy
	mu      sync.Mutex
	ran     []string
	current []map[string]any
	pending string // the in-band step the "agent" runs
	fail    string // the agent's failure message for the pending step
	// st, when set, is read as each step starts: stored lists "state/step" as the database had it then.
	st     store.Store
	stored []string
}

func (d *stepDeploy) Steps(kind steps.Kind) []steps.Step {
	switch kind {
	case steps.Clean:
		return []steps.Step{
			{Interface: "deploy", Step: "erase_devices", Priority: 10, Abortable: true, InBand: true},
			{Interface: "deploy", Step: "erase_devices_metadata", Priority: 99, Abortable: true, InBand: true},
			{Interface: "deploy", Step: "explode"},
			{Interface: "bios", Step: "factory_reset"},
		}
	case steps.Service:
		return []steps.Step{{Interface: "bios", Step: "factory_reset"}}
	}
	return d.FakeDeploy.Steps(kind)
}

func (d *stepDeploy) ExecuteStep(ctx context.Context, t *driver.Task, kind steps.Kind, s steps.Step) (driver.Outcome, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.ran = append(d.ran, string(kind)+":"+s.ID())
	d.current = append(d.current, map[steps.Kind]map[string]any{steps.Clean: t.Node.CleanStep, steps.Deploy: t.Node.DeployStep,
		steps.Service: t.Node.ServiceStep}[kind])
	if d.st != nil {
		if n, err := d.st.GetNode(ctx, t.Node.UUID); err == nil {
			d.stored = append(d.stored, fmt.Sprintf("%s/%v", n.ProvisionState, n.CleanStep["step"]))
		}
	}
	if s.Step == "explode" {
		return driver.Done, errors.New("the BMC caught fire")
	}
	if s.InBand {
		d.pending = s.ID()
		return driver.Wait, nil
	}
	return driver.Done, nil
}

// Continue is the agent's answer: the pending step finished (or failed with d.fail).
func (d *stepDeploy) Continue(context.Context, *driver.Task) (driver.Outcome, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fail != "" {
		return driver.Done, errors.New(d.fail)
	}
	d.pending = ""
	return driver.Done, nil
}

func (d *stepDeploy) steps() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string{}, d.ran...)
}

// stepFixture is a fake-hardware engine whose deploy interface is a stepDeploy.
func stepFixture(t *testing.T, cfg Config) (*fixture, *stepDeploy) {
	f := newFixture(t, cfg)
	d := &stepDeploy{}
	f.eng.reg.AddDeploy("fake", d)
	return f, d
}

func (f *fixture) get(t *testing.T, uuid string) *store.Node {
	n, err := f.st.GetNode(context.Background(), uuid)
	require.NoError(t, err)
	return n
}

// agentCalledBack gives a waiting node an agent address, as its first heartbeat would, so polls continue it.
func (f *fixture) agentCalledBack(t *testing.T, uuid string) {
	writeNode(t, f.st, uuid, func(n *store.Node) { n.DriverInternalInfo["agent_url"] = "https://192.0.2.10:9999" })
}

// TestManualCleanUnknownStepRefused: a step no interface offers is a 400 naming it and what is offered, before
// anything changes (today's code accepted it and ran the metadata wipe instead).
func TestManualCleanUnknownStepRefused(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		steps []map[string]any
		want  string
	}{
		{"unknown step", []map[string]any{{"interface": "deploy", "step": "frobnicate"}},
			"node does not support this clean step: {'interface': 'deploy', 'step': 'frobnicate'}"},
		{"known step on another interface", []map[string]any{{"interface": "raid", "step": "erase_devices"}},
			"the node's interfaces offer these clean steps: bios.factory_reset, deploy.erase_devices, deploy.erase_devices_metadata, deploy.explode"},
		{"bad shape", []map[string]any{{"step": "erase_devices"}}, "Invalid clean_steps[0]: 'interface' is a required property"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, d := stepFixture(t, Config{})
			n := f.node(t, "manageable")
			err := f.eng.Provision(ctx, n.UUID, ProvisionRequest{Target: "clean", CleanSteps: tc.steps})
			require.ErrorIs(t, err, ErrInvalidInput)
			assert.Contains(t, err.Error(), tc.want)
			f.eng.Wait()
			got := f.get(t, n.UUID)
			assert.Equal(t, "manageable", got.ProvisionState, "no state change")
			assert.NotContains(t, got.DriverInternalInfo, "clean_steps")
			assert.Empty(t, d.steps())
		})
	}
}

// TestManualCleanRunsExactlyTheRequestedSteps: in the order given, the in-band one waiting for the agent; each
// is the node's clean_step while it runs; the node returns to manageable with clean_step {}.
func TestManualCleanRunsExactlyTheRequestedSteps(t *testing.T) {
	ctx := context.Background()
	f, d := stepFixture(t, Config{})
	n := f.node(t, "manageable")
	require.NoError(t, f.eng.Provision(ctx, n.UUID, ProvisionRequest{Target: "clean", CleanSteps: []map[string]any{
		{"interface": "bios", "step": "factory_reset"}, {"interface": "deploy", "step": "erase_devices", "args": map[string]any{}}}}))
	f.eng.Wait()
	got := f.get(t, n.UUID)
	require.Equal(t, "clean wait", got.ProvisionState, "the in-band step waits for the agent")
	assert.Equal(t, "erase_devices", got.CleanStep["step"])
	assert.Equal(t, true, got.CleanStep["abortable"], "abortable comes from the offered step")

	f.agentCalledBack(t, n.UUID)
	f.eng.PollWaiting(ctx)
	f.eng.Wait()
	got = f.get(t, n.UUID)
	assert.Equal(t, "manageable", got.ProvisionState, got.LastError)
	assert.Equal(t, map[string]any{}, got.CleanStep)
	assert.Equal(t, []string{"clean:bios.factory_reset", "clean:deploy.erase_devices"}, d.steps(), "exactly the requested steps, in order")
	assert.Equal(t, "factory_reset", d.current[0]["step"], "clean_step holds the running step")
	for _, k := range []string{"clean_steps", "clean_step_index"} {
		assert.NotContains(t, got.DriverInternalInfo, k)
	}
}

// TestStepSavedBeforeItRuns: each step is in the database (transient state, current step) before it runs, so a
// conductor that dies in a step leaves the node where the take-over fails it with a clear last_error, not in the
// wait state of an earlier step (the 2,000-node kill run left 7 nodes so: their install done, later steps run by
// the dead conductor and never saved).
func TestStepSavedBeforeItRuns(t *testing.T) {
	ctx := context.Background()
	f, d := stepFixture(t, Config{})
	d.st = f.st
	n := f.node(t, "manageable")
	require.NoError(t, f.eng.Provision(ctx, n.UUID, ProvisionRequest{Target: "clean", CleanSteps: []map[string]any{
		{"interface": "bios", "step": "factory_reset"}, {"interface": "deploy", "step": "explode"}}}))
	f.eng.Wait()
	assert.Equal(t, []string{"cleaning/factory_reset", "cleaning/explode"}, d.stored)
	assert.Equal(t, "clean failed", f.get(t, n.UUID).ProvisionState)
}

// TestAutomatedCleanRunsEnabledSteps: provide runs the steps with priority > 0 after the overrides: by default the
// metadata wipe and not the full erase; an operator override turns the full erase on, first.
func TestAutomatedCleanRunsEnabledSteps(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name      string
		overrides map[string]int
		want      []string
	}{
		{"default", nil, []string{"clean:deploy.erase_devices_metadata"}},
		{"full erase enabled", map[string]int{"deploy.erase_devices": 100}, []string{"clean:deploy.erase_devices", "clean:deploy.erase_devices_metadata"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, d := stepFixture(t, Config{StepPriorities: tc.overrides})
			n := f.node(t, "manageable")
			require.NoError(t, f.eng.Provision(ctx, n.UUID, ProvisionRequest{Target: "provide"}))
			f.eng.Wait()
			f.agentCalledBack(t, n.UUID)
			for i := 0; i < 3 && f.get(t, n.UUID).ProvisionState != "available"; i++ {
				f.eng.Wait()
				f.eng.PollWaiting(ctx)
				f.eng.Wait()
			}
			got := f.get(t, n.UUID)
			assert.Equal(t, "available", got.ProvisionState, got.LastError)
			assert.Equal(t, tc.want, d.steps())
		})
	}
}

// TestFailingStepNamesTheStep: the first failure ends the clean in clean failed with the step and the error in
// last_error, and later steps do not run; the same for an in-band step the agent reports failed.
func TestFailingStepNamesTheStep(t *testing.T) {
	ctx := context.Background()
	f, d := stepFixture(t, Config{})
	n := f.node(t, "manageable")
	require.NoError(t, f.eng.Provision(ctx, n.UUID, ProvisionRequest{Target: "clean", CleanSteps: []map[string]any{
		{"interface": "deploy", "step": "explode"}, {"interface": "bios", "step": "factory_reset"}}}))
	f.eng.Wait()
	got := f.get(t, n.UUID)
	assert.Equal(t, "clean failed", got.ProvisionState)
	assert.Equal(t, "Node "+n.UUID+" failed clean step deploy.explode: the BMC caught fire", got.LastError)
	assert.Equal(t, []string{"clean:deploy.explode"}, d.steps(), "no step runs after a failure")

	n = f.node(t, "manageable")
	d.fail = "Error erasing block device: /dev/vda: write error"
	require.NoError(t, f.eng.Provision(ctx, n.UUID, ProvisionRequest{Target: "clean", CleanSteps: []map[string]any{
		{"interface": "deploy", "step": "erase_devices"}}}))
	f.eng.Wait()
	f.agentCalledBack(t, n.UUID)
	f.eng.PollWaiting(ctx)
	f.eng.Wait()
	got = f.get(t, n.UUID)
	assert.Equal(t, "clean failed", got.ProvisionState)
	assert.Equal(t, "Node "+n.UUID+" failed clean step deploy.erase_devices: Error erasing block device: /dev/vda: write error", got.LastError)
}

// TestHoldAndUnhold: a hold step stops in clean hold (service hold) with the hold as the current step; unhold
// runs the remaining steps.
func TestHoldAndUnhold(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		from, verb, hold, end string
		req                   ProvisionRequest
	}{
		{"manageable", "clean", "clean hold", "manageable", ProvisionRequest{Target: "clean", CleanSteps: []map[string]any{
			{"interface": "deploy", "step": "hold"}, {"interface": "bios", "step": "factory_reset"}}}},
		{"active", "service", "service hold", "active", ProvisionRequest{Target: "service", ServiceSteps: []map[string]any{
			{"interface": "deploy", "step": "hold"}, {"interface": "bios", "step": "factory_reset"}}}},
	} {
		t.Run(tc.verb, func(t *testing.T) {
			f, d := stepFixture(t, Config{})
			n := f.node(t, tc.from)
			require.NoError(t, f.eng.Provision(ctx, n.UUID, tc.req))
			f.eng.Wait()
			got := f.get(t, n.UUID)
			require.Equal(t, tc.hold, got.ProvisionState, got.LastError)
			assert.Empty(t, d.steps(), "nothing after the hold runs")
			step := map[steps.Kind]map[string]any{"clean": got.CleanStep, "service": got.ServiceStep}[steps.Kind(tc.verb)]
			assert.Equal(t, "hold", step["step"])

			require.NoError(t, f.eng.Provision(ctx, n.UUID, ProvisionRequest{Target: "unhold"}))
			f.eng.Wait()
			got = f.get(t, n.UUID)
			assert.Equal(t, tc.end, got.ProvisionState, got.LastError)
			assert.Equal(t, []string{tc.verb + ":bios.factory_reset"}, d.steps())
		})
	}
}

// TestUserDeployStepsMerged: a user deploy step runs where its priority puts it among the driver's (here before
// the core step), and priority 0 on a driver step is refused for the core step only by overriding, not disabling.
func TestUserDeployStepsMerged(t *testing.T) {
	ctx := context.Background()
	f, d := stepFixture(t, Config{})
	n := f.node(t, "available")
	require.NoError(t, f.eng.Provision(ctx, n.UUID, ProvisionRequest{Target: "active", DeploySteps: []map[string]any{
		{"interface": "bios", "step": "factory_reset", "priority": 150.0, "args": map[string]any{}}}}))
	f.eng.Wait()
	got := f.get(t, n.UUID)
	assert.Equal(t, "active", got.ProvisionState, got.LastError)
	assert.Equal(t, []string{"deploy:bios.factory_reset"}, d.steps(), "the core step runs through Deploy, after the user step")
	assert.Equal(t, "factory_reset", d.current[0]["step"], "deploy_step holds the running step")
	assert.NotContains(t, d.current[0], "in_band", "the step field shows Ironic's keys only")
	assert.Equal(t, map[string]any{}, got.DeployStep)

	err := f.eng.Provision(ctx, n.UUID, ProvisionRequest{Target: "rebuild", DeploySteps: []map[string]any{
		{"interface": "deploy", "step": "deploy", "priority": 50.0, "args": map[string]any{}}}})
	require.ErrorIs(t, err, ErrInvalidInput)
	assert.Contains(t, err.Error(), "is a core step and cannot be overridden by user steps")
}

// TestAbortRefusedInNonAbortableStep: abort in clean wait needs an abortable current step (Ironic).
func TestAbortRefusedInNonAbortableStep(t *testing.T) {
	ctx := context.Background()
	f, _ := stepFixture(t, Config{})
	n := f.node(t, "clean wait")
	writeNode(t, f.st, n.UUID, func(n *store.Node) {
		n.CleanStep = map[string]any{"interface": "deploy", "step": "erase_devices", "abortable": false}
	})
	err := f.eng.Provision(ctx, n.UUID, ProvisionRequest{Target: "abort"})
	require.ErrorIs(t, err, ErrInvalidInput)
	assert.Contains(t, err.Error(), "clean step deploy.erase_devices which is not abortable")
	writeNode(t, f.st, n.UUID, func(n *store.Node) { n.CleanStep["abortable"] = true })
	require.NoError(t, f.eng.Provision(ctx, n.UUID, ProvisionRequest{Target: "abort"}))
	f.eng.Wait()
	assert.Equal(t, "clean failed", f.get(t, n.UUID).ProvisionState)
}

// TestFlowSteps: the conductor's own steps in a manual clean: power_on through the power interface, wait for
// args.seconds, then the next step.
func TestFlowSteps(t *testing.T) {
	ctx := context.Background()
	f, d := stepFixture(t, Config{})
	n := f.node(t, "manageable")
	require.NoError(t, f.eng.Provision(ctx, n.UUID, ProvisionRequest{Target: "clean", CleanSteps: []map[string]any{
		{"interface": "power", "step": "power_on"}, {"interface": "deploy", "step": "wait", "args": map[string]any{"seconds": 0.05}},
		{"interface": "bios", "step": "factory_reset"}}}))
	f.eng.Wait()
	got := f.get(t, n.UUID)
	assert.Equal(t, "manageable", got.ProvisionState, got.LastError)
	assert.Equal(t, driver.PowerOn, got.PowerState)
	assert.Equal(t, []string{"clean:bios.factory_reset"}, d.steps())

	// A wait longer than the maximum waits the maximum, as in Ironic (MaxWaitStep is 30 s by default).
	f.eng.cfg.MaxWaitStep = 50 * time.Millisecond
	n = f.node(t, "manageable")
	start := time.Now()
	require.NoError(t, f.eng.Provision(ctx, n.UUID, ProvisionRequest{Target: "clean", CleanSteps: []map[string]any{
		{"interface": "deploy", "step": "wait", "args": map[string]any{"seconds": 7200.0}},
		{"interface": "deploy", "step": "wait", "args": map[string]any{"seconds": 1e12}}}})) // would overflow a Duration
	f.eng.Wait()
	got = f.get(t, n.UUID)
	assert.Equal(t, "manageable", got.ProvisionState, got.LastError)
	assert.Less(t, time.Since(start), 10*time.Second)

	n = f.node(t, "manageable")
	require.NoError(t, f.eng.Provision(ctx, n.UUID, ProvisionRequest{Target: "clean", CleanSteps: []map[string]any{
		{"interface": "deploy", "step": "wait", "args": map[string]any{"seconds": -1.0}}}}))
	f.eng.Wait()
	got = f.get(t, n.UUID)
	assert.Equal(t, "clean failed", got.ProvisionState)
	assert.Contains(t, got.LastError, "failed clean step deploy.wait: wait step: args.seconds must be 0 or more, not -1")
}

// TestAutomatedCleanSkip: whether provide cleans follows Ironic's skip_automated_cleaning: the node's
// automated_clean wins when set (true cleans even under --no-automated-clean), else the conductor's setting.
func TestAutomatedCleanSkip(t *testing.T) {
	ctx := context.Background()
	yes, no := true, false
	for _, tc := range []struct {
		name     string
		global   bool // NoAutomatedClean
		node     *bool
		cleaning bool
	}{
		{"defaults clean", false, nil, true},
		{"conductor off", true, nil, false},
		{"node off", false, &no, false},
		{"node on wins over conductor off", true, &yes, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, d := stepFixture(t, Config{NoAutomatedClean: tc.global})
			n := f.node(t, "manageable")
			writeNode(t, f.st, n.UUID, func(n *store.Node) { n.AutomatedClean = tc.node })
			require.NoError(t, f.eng.Provision(ctx, n.UUID, ProvisionRequest{Target: "provide"}))
			f.eng.Wait()
			f.agentCalledBack(t, n.UUID)
			for i := 0; i < 3 && f.get(t, n.UUID).ProvisionState != "available"; i++ {
				f.eng.PollWaiting(ctx)
				f.eng.Wait()
			}
			got := f.get(t, n.UUID)
			assert.Equal(t, "available", got.ProvisionState, got.LastError)
			if tc.cleaning {
				assert.Equal(t, []string{"clean:deploy.erase_devices_metadata"}, d.steps())
			} else {
				assert.Empty(t, d.steps())
			}
		})
	}
}

// TestDisableRamdiskRefusesInBandSteps: with disable_ramdisk a manual clean may run out-of-band steps only; an
// in-band one is refused (400) before the node changes, as Ironic refuses a step that requires a ramdisk.
func TestDisableRamdiskRefusesInBandSteps(t *testing.T) {
	ctx := context.Background()
	f, d := stepFixture(t, Config{})
	n := f.node(t, "manageable")
	err := f.eng.Provision(ctx, n.UUID, ProvisionRequest{Target: "clean", DisableRamdisk: true,
		CleanSteps: []map[string]any{{"interface": "deploy", "step": "erase_devices_metadata"}}})
	require.ErrorIs(t, err, ErrInvalidInput)
	assert.Contains(t, err.Error(), "clean step deploy.erase_devices_metadata requires booting a ramdisk, but disable_ramdisk is set")
	assert.Equal(t, "manageable", f.get(t, n.UUID).ProvisionState)

	require.NoError(t, f.eng.Provision(ctx, n.UUID, ProvisionRequest{Target: "clean", DisableRamdisk: true,
		CleanSteps: []map[string]any{{"interface": "bios", "step": "factory_reset"}}}))
	f.eng.Wait()
	assert.Equal(t, "manageable", f.get(t, n.UUID).ProvisionState)
	assert.Equal(t, []string{"clean:bios.factory_reset"}, d.steps())
}
