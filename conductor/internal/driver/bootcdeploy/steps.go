package bootcdeploy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/ferric-metal/ferric/conductor/internal/agentclient"
	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/steps"
	"github.com/ferric-metal/ferric/conductor/internal/store"
	"github.com/ferric-metal/ferric/deploy"
)

// The deploy steps of Ironic's bootc interface (CustomAgentDeploy plus BootcAgentDeploy), with its priorities.
const (
	stepDeploy        = "deploy"
	stepSetBootToDisk = "set_boot_to_disk"
	stepPrepareBoot   = "prepare_instance_boot"
	stepTearDownAgent = "tear_down_agent"
	stepBootInstance  = "boot_instance"
)

// IPA's priorities of the generic hardware manager's erase steps. The engine's priority overrides (the conductor's
// --erase-devices-priority and --erase-devices-metadata-priority) decide what automated cleaning runs.
const (
	agentEraseDevicesPriority  = 10
	agentEraseMetadataPriority = 99
)

// Steps lists the interface's steps. Deploy: the core step and the conductor-side steps around the install, as
// Ironic's bootc interface orders them. Clean: the agent's erase steps (in-band, run after booting the agent).
// Service: none of its own (the agent's service steps are not offered yet).
func (d *Deploy) Steps(kind steps.Kind) []steps.Step {
	switch kind {
	case steps.Deploy:
		return []steps.Step{
			{Interface: "deploy", Step: stepDeploy, Priority: 100},
			{Interface: "deploy", Step: deploy.StepBootcInstall, Priority: 80},
			{Interface: "deploy", Step: stepSetBootToDisk, Priority: 60},
			{Interface: "deploy", Step: stepPrepareBoot, Priority: 60},
			{Interface: "deploy", Step: stepTearDownAgent, Priority: 40},
			{Interface: "deploy", Step: stepBootInstance, Priority: 20},
		}
	case steps.Clean:
		// The steps are offered with IPA's own priorities; the engine applies the operator's overrides, so
		// these numbers are what get_clean_steps reports, not what automated cleaning runs.
		meta := agentEraseMetadataPriority
		if d.cfg.NoCleaning {
			meta = 0
		}
		return []steps.Step{
			{Interface: "deploy", Step: deploy.StepEraseDevices, Priority: agentEraseDevicesPriority, Abortable: true, InBand: true},
			{Interface: "deploy", Step: deploy.StepEraseDevicesMetadata, Priority: meta, Abortable: true, InBand: true},
		}
	}
	return nil
}

// ExecuteStep runs one step. The conductor-side deploy steps finish at once, except the core step (it boots the
// agent: Wait) and the install (Wait until the agent finished). An in-band step boots the agent first when this
// clean or service has not booted it yet; it is started on the agent at once when the agent is up, else on its
// call-back (Continue).
func (d *Deploy) ExecuteStep(ctx context.Context, t *driver.Task, kind steps.Kind, s steps.Step) (driver.Outcome, error) {
	n := t.Node
	if kind == steps.Deploy && !s.InBand {
		switch s.Step {
		case stepDeploy:
			return d.Deploy(ctx, t)
		// Start afresh: a command id left from an earlier attempt names a command of another agent boot.
		case deploy.StepBootcInstall:
			delete(n.DriverInternalInfo, keyCommand)
			// No agent yet (it has not called back): wait, and Continue starts the install on its heartbeat.
			c, err := d.client(n)
			if err != nil {
				return driver.Wait, nil
			}
			defer c.Close()
			return d.continueInstall(ctx, t, c)
		case stepSetBootToDisk:
			if err := t.Management.SetBootDevice(ctx, n, driver.BootDisk, true); err != nil {
				return driver.Done, fmt.Errorf("set the boot device to disk: %w", err)
			}
			return driver.Done, nil
		case stepPrepareBoot:
			if err := t.Boot.PrepareInstance(ctx, t); err != nil {
				return driver.Done, fmt.Errorf("prepare the instance boot: %w", err)
			}
			return driver.Done, nil
		case stepTearDownAgent:
			c, _ := d.client(n) // nil when the agent is gone: it is powered off out of band then
			if c != nil {
				defer c.Close()
			}
			d.stopAgent(ctx, t, c)
			return driver.Done, nil
		// Ironic's boot_instance (priority 20) powers the node on into the installed disk.
		case stepBootInstance:
			if err := t.Power.SetPowerState(ctx, n, driver.PowerOn, 0); err != nil {
				return driver.Done, fmt.Errorf("power on the instance: %w", err)
			}
			setProgress(n, deploy.Progress{Phase: "done", Percent: 100})
			t.Logf(ctx, "deploy %s finished", n.DriverInternalInfo[keyRun])
			return driver.Done, nil
		}
		return driver.Done, fmt.Errorf("the bootc deploy interface has no deploy step %s: %w", s.ID(), driver.ErrInvalid)
	}
	// In-band steps. A deploy's agent is already up (the core step booted it); a clean or service boots one
	// for its first in-band step and keeps it for the rest, as Ironic's prepare_cleaning does once.
	delete(n.DriverInternalInfo, keyStepCmd)
	if booted, _ := n.DriverInternalInfo[keyStepAgent].(bool); !booted && kind != steps.Deploy {
		n.DriverInternalInfo[keyStepAgent] = true
		if err := d.bootAgent(ctx, t); err != nil {
			return driver.Done, err
		}
		return driver.Wait, nil
	}
	c, err := d.client(n)
	if err != nil {
		return driver.Wait, nil
	}
	defer c.Close()
	return d.continueInBand(ctx, t, c, kind, s)
}

// FinishSteps stops the agent booted for the steps of a clean or service (Ironic's tear_down_cleaning and
// tear_down_service). It runs only when every step succeeded; a failure is torn down by the engine instead.
// It never fails: an agent that cannot be reached is powered off out of band.
func (d *Deploy) FinishSteps(ctx context.Context, t *driver.Task, _ steps.Kind) error {
	n := t.Node
	delete(n.DriverInternalInfo, keyStepCmd)
	if booted, _ := n.DriverInternalInfo[keyStepAgent].(bool); !booted {
		return nil
	}
	delete(n.DriverInternalInfo, keyStepAgent)
	c, _ := d.client(n)
	if c != nil {
		defer c.Close()
	}
	d.stopAgent(ctx, t, c)
	return nil
}

// currentStep returns the step the node's wait state is running: its kind and the step recorded in clean_step,
// deploy_step or service_step.
func currentStep(n *store.Node) (steps.Kind, steps.Step) {
	kind, field := steps.Deploy, n.DeployStep
	switch n.ProvisionState {
	case "clean wait", "cleaning":
		kind, field = steps.Clean, n.CleanStep
	case "service wait", "servicing":
		kind, field = steps.Service, n.ServiceStep
	}
	var s steps.Step
	if b, err := json.Marshal(field); err == nil {
		_ = json.Unmarshal(b, &s) // an empty or unreadable field is no step: the agent is told nothing
	}
	return kind, s
}

// getCommand is the agent command that lists the in-band steps of kind.
func getCommand(kind steps.Kind) string {
	return map[steps.Kind]string{steps.Clean: deploy.CmdGetCleanSteps, steps.Deploy: deploy.CmdGetDeploySteps,
		steps.Service: deploy.CmdGetServiceSteps}[kind]
}

// agentOffers asks the agent which steps of kind it has (get_*_steps, as Ironic does once the agent is up) and
// refuses s when the agent does not offer it: an agent image older or other than this conductor expects fails
// here, naming the step and what the agent has, instead of on an unknown command. It returns the agent's
// hardware manager versions.
func (d *Deploy) agentOffers(ctx context.Context, t *driver.Task, c *agentclient.Client, kind steps.Kind, s steps.Step) (map[string]string, error) {
	n := t.Node
	r, err := c.Execute(ctx, getCommand(kind), deploy.GetStepsParams{Node: map[string]any{"uuid": n.UUID}, Ports: []any{}}, true)
	if errors.Is(err, agentclient.ErrIdentity) {
		return nil, identityError(n, err)
	}
	if err != nil {
		return nil, fmt.Errorf("the agent could not list its %s steps (%v): use an agent ramdisk of this Ferric version", kind, err)
	}
	var got map[string]json.RawMessage
	if err := json.Unmarshal(r.CommandResult, &got); err != nil {
		return nil, fmt.Errorf("the agent's %s steps are unreadable: %w", kind, err)
	}
	// IPA's answer: {"<kind>_steps": {"<hardware manager>": [steps]}, "hardware_manager_version": {...}}.
	var byManager map[string][]deploy.Step
	_ = json.Unmarshal(got[string(kind)+"_steps"], &byManager) // missing or malformed: the agent offers nothing
	var version map[string]string
	_ = json.Unmarshal(got["hardware_manager_version"], &version) // optional: sent back as it came
	var names []string
	for _, list := range byManager {
		for _, x := range list {
			if x.Interface == s.Interface && x.Step == s.Step {
				return version, nil
			}
			names = append(names, x.Interface+"."+x.Step)
		}
	}
	return nil, fmt.Errorf("the agent does not offer %s step %s (it offers: %s); use an agent ramdisk of this Ferric version",
		kind, s.ID(), strings.Join(names, ", "))
}

// stepField is the node's field holding its current step of kind (nil when none is recorded).
func stepField(n *store.Node, kind steps.Kind) map[string]any {
	return map[steps.Kind]map[string]any{steps.Clean: n.CleanStep, steps.Deploy: n.DeployStep, steps.Service: n.ServiceStep}[kind]
}

// executeCommand is the agent command that runs an in-band step of kind.
func executeCommand(kind steps.Kind) string {
	return map[steps.Kind]string{steps.Clean: deploy.CmdExecuteCleanStep, steps.Deploy: deploy.CmdExecuteDeployStep,
		steps.Service: deploy.CmdExecuteServiceStep}[kind]
}

// continueInBand starts the in-band step s on the agent (IPA's execute_*_step, asynchronous) or follows the
// command that runs it: Done once it succeeded, an error with the agent's message once it failed.
func (d *Deploy) continueInBand(ctx context.Context, t *driver.Task, c *agentclient.Client, kind steps.Kind, s steps.Step) (driver.Outcome, error) {
	n := t.Node
	if s.Step == "" {
		return driver.Wait, nil // no step is running (a heartbeat between steps)
	}
	id, _ := n.DriverInternalInfo[keyStepCmd].(string)
	// No command yet: ask what the agent offers, then start the step. The command id is saved at once so a
	// later heartbeat follows that command instead of starting the step a second time.
	if id == "" {
		version, err := d.agentOffers(ctx, t, c, kind, s)
		if err != nil {
			return driver.Done, err
		}
		// The agent is told only what it needs: the step, the node's uuid and properties (root device hints).
		params := deploy.StepParams{Step: deploy.Step{Interface: s.Interface, Step: s.Step, Args: s.Args, Priority: s.Priority,
			Abortable: s.Abortable, RebootRequired: s.RebootRequested},
			Node: map[string]any{"uuid": n.UUID, "properties": n.Properties}, Ports: []any{}}
		// Ironic hands back the hardware manager versions the agent reported with its steps (clean_version and
		// friends); IPA refuses the step if its managers changed since, rather than run a different step.
		switch kind {
		case steps.Clean:
			params.CleanVersion = version
		case steps.Deploy:
			params.DeployVersion = version
		case steps.Service:
			params.ServiceVersion = version
		}
		r, err := c.Execute(ctx, executeCommand(kind), params, false)
		switch {
		// Busy: the agent still runs a previous command (IPA's 409); the next heartbeat tries again.
		case errors.Is(err, agentclient.ErrBusy):
			return driver.Wait, nil
		case errors.Is(err, agentclient.ErrIdentity):
			return driver.Done, identityError(n, err)
		case err != nil:
			return driver.Done, fmt.Errorf("the agent refused the step: %w", err)
		}
		n.DriverInternalInfo[keyStepCmd] = r.ID
		n.DriverInternalInfo[keyOffset] = 0
		t.Logf(ctx, "agent at %s runs %s step %s (%s, command %s)", n.DriverInternalInfo["agent_url"], kind, s.ID(), executeCommand(kind), r.ID)
		return driver.Wait, t.Save(ctx)
	}
	r, out, err := d.follow(ctx, t, c, id)
	if field := stepField(n, kind); field != nil && n.DriverInternalInfo[keyProgress] != nil {
		field["progress"] = n.DriverInternalInfo[keyProgress] // bytes and percent of erase_devices, for the API
	}
	if out != driver.Done || err != nil {
		return out, err
	}
	// The step is over either way; the next step starts its own command.
	delete(n.DriverInternalInfo, keyStepCmd)
	if r.CommandStatus == deploy.StatusFailed {
		return driver.Done, errors.New(r.Failure())
	}
	t.Logf(ctx, "agent finished %s step %s", kind, s.ID())
	return driver.Done, nil
}
