package agentdeploy

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
	"github.com/ferric-metal/ferric/configdrive"
	"github.com/ferric-metal/ferric/deploy"
)

// The deploy steps of Ironic's AgentDeploy flow that every agent interface shares, around its own write step.
const (
	StepDeploy        = "deploy"
	StepSetBootToDisk = "set_boot_to_disk"
	StepPrepareBoot   = "prepare_instance_boot"
	StepTearDownAgent = "tear_down_agent"
	StepBootInstance  = "boot_instance"
)

// IPA's priorities of the generic hardware manager's erase steps. The engine's priority overrides (the conductor's
// --erase-devices-priority and --erase-devices-metadata-priority) decide what automated cleaning runs.
const (
	agentEraseDevicesPriority  = 10
	agentEraseMetadataPriority = 99
)

// DeploySteps lists the deploy steps of an agent interface whose own step (write, Ironic's priority 80) writes
// the instance: the core step boots the agent, then write, then the conductor-side steps as Ironic orders them.
func DeploySteps(write string) []steps.Step {
	return []steps.Step{
		{Interface: "deploy", Step: StepDeploy, Priority: 100},
		{Interface: "deploy", Step: write, Priority: 80},
		{Interface: "deploy", Step: StepSetBootToDisk, Priority: 60},
		{Interface: "deploy", Step: StepPrepareBoot, Priority: 60},
		{Interface: "deploy", Step: StepTearDownAgent, Priority: 40},
		{Interface: "deploy", Step: StepBootInstance, Priority: 20},
	}
}

// CleanSteps lists the agent's erase steps (in-band, run after booting the agent). They are offered with IPA's
// own priorities; the engine applies the operator's overrides, so these numbers are what get_clean_steps
// reports, not what automated cleaning runs.
func (a *Agent) CleanSteps() []steps.Step {
	meta := agentEraseMetadataPriority
	if a.NoCleaning {
		meta = 0
	}
	return []steps.Step{
		{Interface: "deploy", Step: deploy.StepEraseDevices, Priority: agentEraseDevicesPriority, Abortable: true, InBand: true},
		{Interface: "deploy", Step: deploy.StepEraseDevicesMetadata, Priority: meta, Abortable: true, InBand: true},
	}
}

// FlowStep runs one of the shared conductor-side deploy steps after the write. The bool is false when step is
// not one of them (the interface's own step, or an unknown one): the caller handles it.
func (a *Agent) FlowStep(ctx context.Context, t *driver.Task, step string) (driver.Outcome, bool, error) {
	n := t.Node
	switch step {
	case StepSetBootToDisk:
		if err := t.Management.SetBootDevice(ctx, n, driver.BootDisk, true); err != nil {
			return driver.Done, true, fmt.Errorf("set the boot device to disk: %w", err)
		}
		return driver.Done, true, nil
	case StepPrepareBoot:
		if err := t.Boot.PrepareInstance(ctx, t); err != nil {
			return driver.Done, true, fmt.Errorf("prepare the instance boot: %w", err)
		}
		return driver.Done, true, nil
	case StepTearDownAgent:
		c, _ := a.Client(n) // nil when the agent is gone: it is powered off out of band then
		if c != nil {
			defer c.Close()
		}
		a.StopAgent(ctx, t, c)
		return driver.Done, true, nil
	// Ironic's boot_instance (priority 20) powers the node on into the installed disk.
	case StepBootInstance:
		if err := t.Power.SetPowerState(ctx, n, driver.PowerOn, 0); err != nil {
			return driver.Done, true, fmt.Errorf("power on the instance: %w", err)
		}
		SetProgress(n, deploy.Progress{Phase: "done", Percent: 100})
		t.Logf(ctx, "deploy %s finished", n.DriverInternalInfo[KeyRun])
		return driver.Done, true, nil
	}
	return driver.Done, false, nil
}

// ResumeStep says how another conductor carries on deploy step s of an agent interface whose own step is write,
// after the conductor running it died: the core step (it boots the agent) and the conductor-side steps after the
// write (boot device, instance boot, agent power-off, power on) are run again, as each only sets what it sets;
// the write and in-band steps run on the agent, started at most once (StartOnce), and are followed by waiting
// for the agent. Clean and service steps are not carried on (the node fails, as in Ironic).
func ResumeStep(kind steps.Kind, s steps.Step, write string) driver.Resume {
	if kind != steps.Deploy {
		return driver.ResumeNever
	}
	switch {
	case s.InBand || s.Step == write:
		return driver.ResumeWait
	case s.Step == StepDeploy, s.Step == StepSetBootToDisk, s.Step == StepPrepareBoot, s.Step == StepTearDownAgent,
		s.Step == StepBootInstance:
		return driver.ResumeRerun
	}
	return driver.ResumeNever
}

// ExecuteInBand runs an in-band step. A deploy's agent is already up (the core step booted it); a clean or
// service boots one for its first in-band step and keeps it for the rest, as Ironic's prepare_cleaning does once.
func (a *Agent) ExecuteInBand(ctx context.Context, t *driver.Task, kind steps.Kind, s steps.Step) (driver.Outcome, error) {
	n := t.Node
	delete(n.DriverInternalInfo, KeyStepCmd)
	if booted, _ := n.DriverInternalInfo[KeyStepAgent].(bool); !booted && kind != steps.Deploy {
		n.DriverInternalInfo[KeyStepAgent] = true
		if err := a.BootAgent(ctx, t); err != nil {
			return driver.Done, err
		}
		return driver.Wait, nil
	}
	c, err := a.Client(n)
	if err != nil {
		return driver.Wait, nil
	}
	defer c.Close()
	return a.ContinueInBand(ctx, t, c, kind, s)
}

// FinishSteps stops the agent booted for the steps of a clean or service (Ironic's tear_down_cleaning and
// tear_down_service). It runs only when every step succeeded; a failure is torn down by the engine instead.
// It never fails: an agent that cannot be reached is powered off out of band.
func (a *Agent) FinishSteps(ctx context.Context, t *driver.Task, _ steps.Kind) error {
	n := t.Node
	delete(n.DriverInternalInfo, KeyStepCmd)
	if booted, _ := n.DriverInternalInfo[KeyStepAgent].(bool); !booted {
		return nil
	}
	delete(n.DriverInternalInfo, KeyStepAgent)
	c, _ := a.Client(n)
	if c != nil {
		defer c.Close()
	}
	a.StopAgent(ctx, t, c)
	return nil
}

// ConfigDrive is the config drive to hand the agent, in string form (nil: none): the task's (kept apart from the
// node, never instance_info's). The dict form (API 1.56) is built into an ISO here, as Ironic's conductor
// builds it, so the agent only ever writes an image.
func ConfigDrive(ctx context.Context, t *driver.Task) (*string, error) {
	n := t.Node
	var drive any
	if t.ConfigDrive != nil {
		var err error
		if drive, err = t.ConfigDrive(ctx); err != nil {
			return nil, fmt.Errorf("read the config drive of node %s: %w", n.UUID, err)
		}
	}
	switch cd := drive.(type) {
	case nil:
		return nil, nil
	case string:
		if cd == "" {
			return nil, nil
		}
		return &cd, nil
	case map[string]any:
		drive, err := configdrive.FromMap(cd)
		if err != nil {
			return nil, err
		}
		iso, err := configdrive.Build(drive, configdrive.NodeInfo{UUID: n.UUID, Name: n.Name})
		if err != nil {
			return nil, fmt.Errorf("build the config drive: %w", err)
		}
		s, err := configdrive.Encode(iso)
		if err != nil {
			return nil, err
		}
		return &s, nil
	}
	return nil, fmt.Errorf("the config drive of node %s has an unexpected type %T; deploy again with a string or a dict", n.UUID, drive)
}

// CurrentStep returns the step the node's wait state is running: its kind and the step recorded in clean_step,
// deploy_step or service_step.
func CurrentStep(n *store.Node) (steps.Kind, steps.Step) {
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
func (a *Agent) agentOffers(ctx context.Context, t *driver.Task, c *agentclient.Client, kind steps.Kind, s steps.Step) (map[string]string, error) {
	n := t.Node
	r, err := c.Execute(ctx, getCommand(kind), deploy.GetStepsParams{Node: map[string]any{"uuid": n.UUID}, Ports: []any{}}, true)
	if errors.Is(err, agentclient.ErrIdentity) {
		return nil, IdentityError(n, err)
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

// stepParams asks what the agent offers (agentOffers) and builds execute_*_step's params for s.
func (a *Agent) stepParams(ctx context.Context, t *driver.Task, c *agentclient.Client, kind steps.Kind, s steps.Step) (deploy.StepParams, error) {
	n := t.Node
	version, err := a.agentOffers(ctx, t, c, kind, s)
	if err != nil {
		return deploy.StepParams{}, err
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
	return params, nil
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

// ContinueInBand starts the in-band step s on the agent (IPA's execute_*_step, asynchronous) or follows the
// command that runs it: Done once it succeeded, an error with the agent's message once it failed.
func (a *Agent) ContinueInBand(ctx context.Context, t *driver.Task, c *agentclient.Client, kind steps.Kind, s steps.Step) (driver.Outcome, error) {
	_, out, err := a.ContinueInBandResult(ctx, t, c, kind, s)
	return out, err
}

// ContinueInBandResult is ContinueInBand that also returns the agent's finished command (nil until then), for an
// interface that records what the step reported (the direct interface's write_image).
func (a *Agent) ContinueInBandResult(ctx context.Context, t *driver.Task, c *agentclient.Client, kind steps.Kind, s steps.Step) (*agentclient.Result, driver.Outcome, error) {
	n := t.Node
	if s.Step == "" {
		return nil, driver.Wait, nil // no step is running (a heartbeat between steps)
	}
	id, _ := n.DriverInternalInfo[KeyStepCmd].(string)
	// No command yet: ask what the agent offers, then start the step. The command id is saved at once so a
	// later heartbeat follows that command instead of starting the step a second time; StartOnce covers a
	// conductor that dies between the send and that save.
	if id == "" {
		var offerErr error // the agent's step list's verdict, returned as it is
		id, adopted, err := StartOnce(ctx, t, c, string(kind)+":"+s.ID(), executeCommand(kind), func() (any, error) {
			p, err := a.stepParams(ctx, t, c, kind, s)
			offerErr = err
			return p, err
		})
		switch {
		case offerErr != nil:
			return nil, driver.Done, offerErr
		// Busy: the agent still runs a previous command (IPA's 409); the next heartbeat tries again.
		case errors.Is(err, agentclient.ErrBusy):
			return nil, driver.Wait, nil
		case errors.Is(err, agentclient.ErrIdentity):
			return nil, driver.Done, IdentityError(n, err)
		case err != nil:
			return nil, driver.Done, fmt.Errorf("the agent refused the step: %w", err)
		}
		n.DriverInternalInfo[KeyStepCmd] = id
		n.DriverInternalInfo[KeyOffset] = 0
		how := "runs"
		if adopted {
			how = "already received from a conductor that stopped before recording it"
		}
		t.Logf(ctx, "agent at %s %s %s step %s (%s, command %s)", n.DriverInternalInfo["agent_url"], how, kind, s.ID(),
			executeCommand(kind), id)
		return nil, driver.Wait, t.Save(ctx)
	}
	r, out, err := a.Follow(ctx, t, c, id)
	if field := stepField(n, kind); field != nil && n.DriverInternalInfo[KeyProgress] != nil {
		field["progress"] = n.DriverInternalInfo[KeyProgress] // bytes and percent of erase_devices, for the API
	}
	if out != driver.Done || err != nil {
		return nil, out, err
	}
	// The step is over either way; the next step starts its own command.
	delete(n.DriverInternalInfo, KeyStepCmd)
	if r.CommandStatus == deploy.StatusFailed {
		return r, driver.Done, errors.New(r.Failure())
	}
	t.Logf(ctx, "agent finished %s step %s", kind, s.ID())
	return r, driver.Done, nil
}

// OwnStep continues a deploy interface's own in-band step (bootc's install, direct's write_image) with the
// agent's client.
type OwnStep func(ctx context.Context, t *driver.Task, c *agentclient.Client, cur steps.Step) (driver.Outcome, error)

// ContinueWith advances a node waiting for its agent (heartbeats and polls, node locked), as every agent-driven
// deploy interface does: Wait until the agent has called back; the core deploy step is then done (Ironic's agent
// deploys treat it so); the deploy step named own goes to ownStep; any other in-band step to ContinueInBand.
func (a *Agent) ContinueWith(ctx context.Context, t *driver.Task, own string, ownStep OwnStep) (driver.Outcome, error) {
	kind, cur := CurrentStep(t.Node)
	c, err := a.Client(t.Node)
	if err != nil {
		return driver.Wait, nil // the agent has not called back yet
	}
	defer c.Close()
	switch {
	case kind == steps.Deploy && cur.ID() == steps.Core:
		return driver.Done, nil
	case kind == steps.Deploy && cur.ID() == "deploy."+own:
		return ownStep(ctx, t, c, cur)
	}
	return a.ContinueInBand(ctx, t, c, kind, cur)
}

// StartBoot ends both interfaces' core deploy step: progress "booting agent", the node saved (the pinned image
// or checksum survives a restart), the agent booted; the node then waits for its call-back.
func (a *Agent) StartBoot(ctx context.Context, t *driver.Task) (driver.Outcome, error) {
	SetProgress(t.Node, deploy.Progress{Phase: "booting agent"})
	if err := t.Save(ctx); err != nil {
		return driver.Done, err
	}
	if err := a.BootAgent(ctx, t); err != nil {
		return driver.Done, err
	}
	return driver.Wait, nil
}
