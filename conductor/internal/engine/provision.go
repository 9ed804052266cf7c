package engine

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/fsm"
	"github.com/ferric-metal/ferric/conductor/internal/steps"
	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// ProvisionRequest is a PUT /v1/nodes/{id}/states/provision body, already checked against the API version.
type ProvisionRequest struct {
	Target       string
	ConfigDrive  any // string (gzip+base64 or URL) or the dict form; nil when absent
	CleanSteps   []map[string]any
	DeploySteps  []map[string]any
	ServiceSteps []map[string]any
	// RescuePassword is the clear password of the rescue verb; only its hash is kept (recordRescuePassword).
	RescuePassword string
	// DisableRamdisk is Ironic's disable_ramdisk (manual clean, 1.70): only out-of-band steps may run, an
	// in-band one is refused before anything changes (validateRequestSteps). The agent boots for in-band steps
	// only, so out-of-band steps never boot it.
	DisableRamdisk bool
}

// Provision starts the transition a provision verb asks for. It returns once the node is in its new (transient)
// state; the rest runs asynchronously under the node's lock.
//
// The order of the checks is Ironic's split between its API and its conductor: first what needs no node
// (the verb, required fields), then under the lock the state machine, maintenance, the interfaces' Validate
// and the requested steps. Every refusal happens before anything is saved, so a refused request leaves
// the node exactly as it was. On success the node is saved in its new state and the lock passes to the
// background work (handedOff); on any error return the deferred release frees it.
func (e *Engine) Provision(ctx context.Context, ident string, req ProvisionRequest) error {
	verb, ok := fsm.Verbs()[req.Target]
	if !ok {
		return fmt.Errorf("%q is not a valid provision target: %w", req.Target, ErrInvalidInput)
	}
	// Manual cleaning without steps is refused by Ironic's API too; a rescue password of blanks would
	// leave a rescue nobody can log in to.
	if verb.Event == fsm.EvClean && len(req.CleanSteps) == 0 {
		return fmt.Errorf("\"clean_steps\" is required when setting target provision state to clean: %w", ErrInvalidInput)
	}
	if verb.Event == fsm.EvRescue && strings.TrimSpace(req.RescuePassword) == "" {
		return fmt.Errorf("A non-empty \"rescue_password\" is required when setting target provision state to rescue: %w", ErrInvalidInput)
	}
	// Another conductor drives the node: it starts the work (handoff.go) and its answer is this call's.
	if owner, n, err := e.handOffTarget(ctx, ident); err != nil {
		return err
	} else if owner != "" {
		return e.handOff(ctx, n, owner, jobProvision, req)
	}
	return e.provisionHere(ctx, ident, req)
}

// provisionHere is Provision on this conductor, which drives the node (or took the job handed to it).
func (e *Engine) provisionHere(ctx context.Context, ident string, req ProvisionRequest) error {
	verb, ok := fsm.Verbs()[req.Target]
	if !ok { // a job queued by a conductor that knows a verb this one does not
		return fmt.Errorf("%q is not a valid provision target: %w", req.Target, ErrInvalidInput)
	}
	// The reservation retries briefly, as Ironic's task manager does, before giving NodeLocked (409).
	n, err := e.reserve(ctx, ident, true)
	if err != nil {
		return err
	}
	handedOff := false
	defer func() {
		if !handedOff {
			e.release(n.UUID)
		}
	}()
	if err := checkProtectedRetired(n, verb.Event); err != nil {
		return err
	}
	from := fsm.State(n.ProvisionState)
	to, err := e.fsm.Next(from, verb.Event)
	if err != nil {
		return fmt.Errorf("The requested action \"%s\" can not be performed on node \"%s\" while it is in state \"%s\".: %w",
			req.Target, n.UUID, n.ProvisionState, ErrInvalidState)
	}
	t, err := e.task(n)
	if err != nil {
		return err
	}
	if err := e.checkRequest(ctx, t, verb.Event, req); err != nil {
		return err
	}
	if err := e.recordRequest(ctx, n, verb.Event, req); err != nil {
		return err
	}

	// Abort saves its own state change and decides itself whether background work takes the lock.
	if verb.Event == fsm.EvAbort {
		handedOff, err = e.abort(ctx, n)
		return err
	}
	e.setState(n, to, "")
	if err := e.store.UpdateNode(ctx, n); err != nil {
		return err
	}
	if fsm.IsStable(to) {
		return nil // e.g. available -> manageable: nothing more to do
	}
	// From here the background goroutine owns the lock and saves the node when it ends (async).
	handedOff = true
	if verb.Event == fsm.EvUnhold {
		e.async(n, "unhold", func(ctx context.Context, n *store.Node) { e.unhold(ctx, t) })
		return nil
	}
	e.async(n, "provision "+req.Target, func(ctx context.Context, n *store.Node) { e.drive(ctx, t) })
	return nil
}

// checkProtectedRetired is Ironic's NodeProtected for undeploy (do_node_tear_down) and rebuild, checked
// before the state machine as Ironic's conductor does, and its NodeIsRetired for provide from manageable: a
// retired node waits in manageable for an operator, never returns to the pool.
func checkProtectedRetired(n *store.Node, ev fsm.Event) error {
	if n.Protected && (ev == fsm.EvDelete || ev == fsm.EvRebuild) {
		return protectedError(n.UUID)
	}
	if n.Retired && ev == fsm.EvProvide && n.ProvisionState == string(fsm.Manageable) {
		return fmt.Errorf("The providing operation can't be performed on node %s because it is retired.: %w", n.UUID, ErrInvalidInput)
	}
	return nil
}

// checkRequest applies every check Ironic makes before it accepts a provision request on the reserved node
// (maintenance, interface validation, the verb's interface, requested steps, abortable step); nothing is saved
// when one fails. The rescue password's hash is put on the node here, since the rescue interface validates it.
func (e *Engine) checkRequest(ctx context.Context, t *driver.Task, ev fsm.Event, req ProvisionRequest) error {
	n := t.Node
	// Ironic refuses to deploy onto a node in maintenance: nobody should be handed a machine an operator
	// has taken out of service.
	// (Ironic's NodeInMaintenance with op "provisioning", from deployments.validate_node.)
	if n.Maintenance && (ev == fsm.EvDeploy || ev == fsm.EvRebuild) {
		return fmt.Errorf("The provisioning operation can't be performed on node %s because it's in maintenance mode.: %w",
			n.UUID, ErrInvalidInput)
	}
	// Ironic validates power, boot and deploy before it accepts a deploy, so a missing deploy_kernel or
	// image_source fails the request with 400 instead of later in deploy failed.
	// An autodetect node is switched to the interface that can deploy its image first (Ironic's switch_interface),
	// so that the chosen interface is the one validated; a refused request saves none of it.
	if ev == fsm.EvDeploy || ev == fsm.EvRebuild {
		if err := e.detectDeploy(ctx, t, string(steps.Deploy)); err != nil {
			return err
		}
		if err := e.validateForDeploy(ctx, t); err != nil {
			return err
		}
	}
	// A clean of an autodetect node runs the fallback interface's steps: switched before the steps are checked.
	if ev == fsm.EvProvide || ev == fsm.EvClean {
		e.switchForClean(t)
	}
	// Ironic's NodeInMaintenance: these verbs would act on hardware an operator has taken out of service
	// (provide too: Ironic's allow_provisioning_in_maintenance is false by default).
	if op := map[fsm.Event]string{fsm.EvRescue: "rescuing", fsm.EvUnrescue: "unrescuing", fsm.EvClean: "cleaning",
		fsm.EvProvide: "providing", fsm.EvService: "service"}[ev]; op != "" && n.Maintenance {
		return fmt.Errorf("The %s operation can't be performed on node %s because it's in maintenance mode.: %w", op, n.UUID, ErrInvalidInput)
	}
	if ev == fsm.EvRescue {
		if err := recordRescuePassword(n, req.RescuePassword); err != nil { // only its hash, checked by Validate
			return err
		}
	}
	// An interface that cannot do the verb (no-inspect, no-rescue) refuses it here, with Ironic's 400.
	if err := validateVerbInterface(ctx, t, ev); err != nil {
		return err
	}
	// Steps nobody offers are refused before anything changes (Ironic fails the clean later, in clean failed).
	if err := e.validateRequestSteps(ctx, t, ev, req); err != nil {
		return err
	}
	if err := checkAbortable(n, ev); err != nil {
		return err
	}
	return nil
}

// recordRequest records on the reserved node what the drivers need of the request: the config drive (kept apart
// from the node), the requested steps, and the flags of a manual clean.
func (e *Engine) recordRequest(ctx context.Context, n *store.Node, ev fsm.Event, req ProvisionRequest) error {
	var err error
	switch ev {
	case fsm.EvDeploy, fsm.EvRebuild:
		// The config drive is kept apart from the node, for the deploy interface (Task.ConfigDrive) only; the
		// store deletes it when the deploy ends. A rebuild without one installs none (Ironic would reuse the
		// previous deploy's drive, which Ferric no longer keeps).
		delete(n.InstanceInfo, "configdrive")
		if req.ConfigDrive != nil {
			err = e.store.PutConfigDrive(ctx, n.UUID, req.ConfigDrive)
		} else {
			err = e.store.DeleteConfigDrive(ctx, n.UUID)
		}
		if err != nil {
			return fmt.Errorf("keep the config drive of node %s: %w", n.UUID, err)
		}
		resetSteps(n, steps.Deploy)
		setOrDelete(n.DriverInternalInfo, "user_deploy_steps", req.DeploySteps)
	case fsm.EvClean:
		// The requested steps wait under clean_steps until the clean plans them (validated, with the offered
		// steps' priority and abortable), as Ironic keeps them.
		resetSteps(n, steps.Clean)
		n.DriverInternalInfo["clean_steps"] = req.CleanSteps
		n.DriverInternalInfo["manual_clean"] = true
	case fsm.EvService:
		resetSteps(n, steps.Service)
		setOrDelete(n.DriverInternalInfo, "service_steps", req.ServiceSteps)
	case fsm.EvDelete:
		resetSteps(n, steps.Clean)
	case fsm.EvProvide:
		resetSteps(n, steps.Clean)
		delete(n.DriverInternalInfo, "manual_clean")
	}
	return nil
}

// checkAbortable refuses an abort while the node runs a step that cannot be aborted (Ironic: only abortable clean
// steps may be interrupted in clean wait).
func checkAbortable(n *store.Node, ev fsm.Event) error {
	if ev != fsm.EvAbort || fsm.State(n.ProvisionState) != fsm.CleanWait {
		return nil
	}
	if s := currentStep(n, steps.Clean); s.Step != "" && !s.Abortable {
		return fmt.Errorf("Node %s is currently in the middle of clean step %s which is not abortable; wait until it finishes: %w",
			n.UUID, s.ID(), ErrInvalidInput)
	}
	return nil
}

// validateVerbInterface checks the interface an inspect or rescue verb needs, as Ironic's conductor does before
// it accepts the request.
func validateVerbInterface(ctx context.Context, t *driver.Task, ev fsm.Event) error {
	var err error
	switch ev {
	case fsm.EvInspect:
		err = t.Inspect.Validate(ctx, t.Node)
	case fsm.EvRescue:
		err = validateRescue(ctx, t)
	default:
		return nil
	}
	if err != nil {
		return fmt.Errorf("%v: %w", err, ErrInvalidInput)
	}
	return nil
}

// setOrDelete stores v under k, or removes k when v is empty, so a request without steps leaves no
// stale steps of an earlier request behind.
func setOrDelete(m map[string]any, k string, v []map[string]any) {
	if len(v) == 0 {
		delete(m, k)
		return
	}
	m[k] = v
}

// validateForDeploy runs the power, boot and deploy interfaces' Validate on a reserved node, as Ironic's
// do_node_deploy does before it starts; the first failure becomes a 400 naming the interface.
func (e *Engine) validateForDeploy(ctx context.Context, t *driver.Task) error {
	// A fixed order (Ironic's: power, boot, deploy), so the 400 names the same interface on every try.
	for _, v := range []struct {
		name  string
		check func(context.Context, *store.Node) error
	}{{"power", t.Power.Validate}, {"boot", t.Boot.Validate}, {"deploy", t.Deploy.Validate}} {
		if err := v.check(ctx, t.Node); err != nil {
			return fmt.Errorf("Failed to validate %s interface of node %s: %v: %w", v.name, t.Node.UUID, err, ErrInvalidInput)
		}
	}
	return nil
}

// abort handles the abort verb: waits and holds fail at once. The new state is saved before this returns; when it
// ends an agent boot, the tear-down (eject, power off: slow on real BMCs) runs in the background under the lock,
// and handedOff tells the caller the lock went with it.
func (e *Engine) abort(ctx context.Context, n *store.Node) (handedOff bool, err error) {
	// last_error says why the node failed; a state missing here (abort from a state the table allows
	// but that has no agent wait) leaves last_error empty.
	msg := map[fsm.State]string{
		fsm.DeployWait: "Deploy aborted by request", fsm.DeployHold: "Deploy aborted by request",
		fsm.CleanWait: "Cleaning aborted by request", fsm.CleanHold: "Cleaning aborted by request",
		fsm.InspectWait: "Inspection aborted by request", fsm.RescueWait: "Rescue aborted by request",
		fsm.ServiceWait: "Servicing aborted by request", fsm.ServiceHold: "Servicing aborted by request",
	}[fsm.State(n.ProvisionState)]
	if err := e.transition(n, fsm.EvAbort, msg); err != nil {
		return false, err
	}
	if fsm.State(n.ProvisionState) == fsm.CleanFailed {
		e.restoreDeployInterface(n) // as Ironic's clean abort (cleaning_error_handler) does
	}
	if err := e.store.UpdateNode(ctx, n); err != nil {
		return false, err
	}
	// A wait ended by abort leaves an agent booted on the node; aborting a hold or a stable-state
	// change has nothing to tear down.
	if !endsAgentBoot(fsm.State(n.ProvisionState)) {
		return false, nil
	}
	// Without a task (the driver is gone) nothing can be torn down; forget the agent so that its
	// token and URL cannot be used against the failed node.
	t, err := e.task(n)
	if err != nil {
		forgetAgent(n)
		return false, e.store.UpdateNode(ctx, n)
	}
	e.async(n, "abort", func(ctx context.Context, n *store.Node) { e.tearDownAgent(ctx, t) })
	return true, nil
}

// drive runs the work of the node's current transient state, chaining states until the node rests or waits. Each
// state's work is a method of its own (verify and delete here; clean, deploy and service in steps.go; inspect in
// inspect.go; rescue, unrescue and adopt in rescue.go) that reports whether the node moved on to a state drive
// should continue with; a method that fails moves the node to its failure state itself (failTask).
func (e *Engine) drive(ctx context.Context, t *driver.Task) {
	n := t.Node
	// The caller holds the node's lock for the whole loop, and async saves the node when it ends.
	for {
		var next bool
		switch fsm.State(n.ProvisionState) {
		case fsm.Verifying:
			next = e.verify(ctx, t)
		case fsm.Deleting:
			next = e.deleteInstance(ctx, t)
		case fsm.Cleaning:
			next = e.clean(ctx, t)
		case fsm.Deploying:
			next = e.deployNode(ctx, t)
		case fsm.Servicing:
			next = e.service(ctx, t)
		case fsm.Inspecting:
			next = e.inspect(ctx, t)
		case fsm.Rescuing:
			next = e.rescue(ctx, t)
		case fsm.Unrescuing:
			next = e.unrescue(ctx, t)
		case fsm.Adopting:
			next = e.adopt(ctx, t)
		}
		// false: the node failed, rests, or waits for its agent (a *wait state resumed by Continue).
		if !next {
			return
		}
		if fsm.IsStable(fsm.State(n.ProvisionState)) {
			t.Log.WithField("to", n.ProvisionState).Info("provision state reached")
			return
		}
	}
}

// failTask moves the task's node to its failure state with err as last_error, tearing down an agent boot.
func (e *Engine) failTask(ctx context.Context, t *driver.Task, err error) {
	t.Log.WithField("state", t.Node.ProvisionState).WithError(err).Warn("operation failed")
	if terr := e.fail(ctx, t.Node, t, fsm.EvFail, err.Error()); terr != nil {
		t.Log.WithError(terr).Error("could not move node to its failure state")
	}
}

// verify checks the power and management interfaces of an enrolling node and reads its power state: Ironic's
// enroll -> verifying -> manageable. The error wording is Ironic's do_node_verify's, which clients match.
func (e *Engine) verify(ctx context.Context, t *driver.Task) bool {
	n := t.Node
	if err := t.Power.Validate(ctx, n); err != nil {
		e.failTask(ctx, t, fmt.Errorf("Failed to get power state for node %s. Error: %v", n.UUID, err))
		return false
	}
	if err := t.Management.Validate(ctx, n); err != nil {
		e.failTask(ctx, t, fmt.Errorf("Failed to validate management interface for node %s: %v", n.UUID, err))
		return false
	}
	ps, err := t.Power.PowerState(ctx, n)
	if err != nil {
		e.failTask(ctx, t, fmt.Errorf("Failed to get power state for node %s. Error: %v", n.UUID, err))
		return false
	}
	n.PowerState = ps
	e.cacheHardware(ctx, t) // BIOS settings and firmware versions, as Ironic's do_node_verify (bios.go)
	e.must(e.transition(n, fsm.EvDone, ""))
	return true
}

// deleteInstance tears the instance down (undeploy) and moves on to cleaning.
func (e *Engine) deleteInstance(ctx context.Context, t *driver.Task) bool {
	n := t.Node
	if err := t.Deploy.TearDown(ctx, t); err != nil {
		e.failTask(ctx, t, fmt.Errorf("Error while tearing down the instance on node %s: %v", n.UUID, err))
		return false
	}
	e.refreshPower(ctx, t)
	// As Ironic's tear-down does: the instance is gone, so are its instance_info and association, and
	// the agent token of that deploy must not survive into cleaning's agent boot.
	n.InstanceInfo = map[string]any{}
	n.InstanceUUID, n.AllocationUUID = "", "" // the allocation goes with the instance, as Ironic
	for _, k := range []string{"user_deploy_steps", "deployed_image", "agent_secret_token"} {
		delete(n.DriverInternalInfo, k)
	}
	e.must(e.transition(n, fsm.EvClean, ""))
	return true
}

// must logs transitions that the table should always allow; a failure here is a programming error.
func (e *Engine) must(err error) {
	if err != nil {
		e.log.WithError(err).Error("state machine refused an internal transition")
	}
}

// refreshPower re-reads the node's power state after an operation that may have changed it. A BMC error
// keeps the last known state rather than failing an operation that itself succeeded.
func (e *Engine) refreshPower(ctx context.Context, t *driver.Task) {
	if ps, err := t.Power.PowerState(ctx, t.Node); err == nil {
		t.Node.PowerState = ps
	}
}

// SetPower changes a node's power state asynchronously (PUT .../states/power). It reserves the node, saves
// target_power_state (the stable state the action aims at: power on for reboots, off for soft power off)
// and returns; powerAction runs under the lock in the background. The API answers 202.
func (e *Engine) SetPower(ctx context.Context, ident, target string, timeout time.Duration) error {
	switch target {
	case driver.PowerOn, driver.PowerOff, driver.Rebooting, driver.SoftRebooting, driver.SoftPowerOff:
	default:
		return fmt.Errorf("Invalid power target %q; use one of power on, power off, rebooting, soft rebooting, soft power off: %w", target, ErrInvalidInput)
	}
	if owner, n, err := e.handOffTarget(ctx, ident); err != nil {
		return err
	} else if owner != "" {
		return e.handOff(ctx, n, owner, jobPower, powerArgs{Target: target, Timeout: timeout})
	}
	return e.setPowerHere(ctx, ident, target, timeout)
}

// setPowerHere is SetPower on this conductor, which drives the node (or took the job handed to it).
func (e *Engine) setPowerHere(ctx context.Context, ident, target string, timeout time.Duration) error {
	n, err := e.reserve(ctx, ident, true)
	if err != nil {
		return err
	}
	// Ironic's API refuses power changes while cleaning: the clean steps and the agent own the power.
	switch fsm.State(n.ProvisionState) {
	case fsm.Cleaning, fsm.CleanWait:
		e.release(n.UUID)
		return fmt.Errorf("Can not change power state of node %s while it is in state %s: %w", n.UUID, n.ProvisionState, ErrInvalidInput)
	}
	// disable_power_off (Ironic 1.95) marks nodes that must never be powered off; Ironic answers
	// PowerStateFailure, Ferric a 400 naming the field.
	if n.DisablePowerOff && (target == driver.PowerOff || target == driver.SoftPowerOff) {
		e.release(n.UUID)
		return fmt.Errorf("Powering off node %s is disabled (disable_power_off): %w", n.UUID, ErrInvalidInput)
	}
	t, err := e.task(n)
	if err != nil {
		e.release(n.UUID)
		return err
	}
	n.TargetPowerState = target
	switch target {
	case driver.Rebooting, driver.SoftRebooting:
		n.TargetPowerState = driver.PowerOn
	case driver.SoftPowerOff:
		n.TargetPowerState = driver.PowerOff
	}
	if err := e.store.UpdateNode(ctx, n); err != nil {
		e.release(n.UUID)
		return err
	}
	e.async(n, "power "+target, func(ctx context.Context, n *store.Node) { e.powerAction(ctx, t, target, timeout) })
	return nil
}

// powerAction runs a power change on a reserved node; every power change made by the conductor wipes the agent
// token, so the next agent boot gets a fresh one.
func (e *Engine) powerAction(ctx context.Context, t *driver.Task, target string, timeout time.Duration) {
	n := t.Node
	err := t.Power.SetPowerState(ctx, n, target, timeout)
	// As Ironic's power action does: an agent that may have lost power cannot keep a valid token.
	WipeAgentToken(n)
	n.TargetPowerState = ""
	if err != nil {
		n.LastError = fmt.Sprintf("Failed to change power state to '%s' for node %s: %v", target, n.UUID, err)
		t.Log.WithError(err).Warn("power change failed")
	} else {
		n.LastError = ""
	}
	e.refreshPower(ctx, t)
}

// WipeAgentToken forgets the agent's token, URL and certificate unless the token was baked into the boot media.
// Ironic wipes them on power changes for the same reason: the next agent boot must register afresh, and a
// pregenerated token is kept because the media that carries it cannot be changed. The caller holds the
// node's lock and saves the node.
func WipeAgentToken(n *store.Node) {
	if pre, _ := n.DriverInternalInfo["agent_secret_token_pregenerated"].(bool); !pre {
		delete(n.DriverInternalInfo, "agent_secret_token")
	}
	delete(n.DriverInternalInfo, "agent_url")
	delete(n.DriverInternalInfo, "agent_verify_ca")
}
