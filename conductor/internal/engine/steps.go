package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/fsm"
	"github.com/ferric-metal/ferric/conductor/internal/steps"
	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// The step engine: clean, deploy and service run the same way. Every function here works on a node whose lock the
// caller holds, and changes it in memory; the node is saved by whoever holds the lock when it is released. When the operation starts, its steps are planned
// (gathered from the node's interfaces, chosen and ordered by the steps package) into driver_internal_info
// <kind>_steps; then they run one at a time, the current one in the node's clean_step/deploy_step/service_step
// and its index in <kind>_step_index. A step that waits (the agent runs it, or the agent must boot first) moves
// the node to the wait state; the agent-driven interface's Continue reports it done and finishWait resumes with
// the next step. The first failure ends the operation in its failure state, naming the step.
// This is Ironic's design, keys included, so tools that read driver_internal_info or clean_step (Metal3, the
// Ironic client) see what they expect.

// DefaultStepPriorities are the priority overrides applied when Config.StepPriorities is nil: Ferric's automated
// cleaning wipes disk metadata (the agent's erase_devices_metadata, priority 99) but does not erase whole disks
// (erase_devices: the agent offers it at 10, as IPA does; Ferric runs it only when asked, in a manual clean).
func DefaultStepPriorities() map[string]int {
	return map[string]int{"deploy.erase_devices": 0}
}

// stepKind is the step kind of a provision state, if it runs steps.
func stepKind(st fsm.State) (steps.Kind, bool) {
	switch st {
	case fsm.Cleaning, fsm.CleanWait, fsm.CleanHold:
		return steps.Clean, true
	case fsm.Deploying, fsm.DeployWait, fsm.DeployHold:
		return steps.Deploy, true
	case fsm.Servicing, fsm.ServiceWait, fsm.ServiceHold:
		return steps.Service, true
	}
	return "", false
}

// Keys in driver_internal_info: the planned steps (Ironic's clean_steps, deploy_steps, service_steps; the
// request's steps are kept under the same key until planned, except deploy's: user_deploy_steps) and the index
// of the current one.
func listKey(k steps.Kind) string  { return string(k) + "_steps" }
func indexKey(k steps.Kind) string { return string(k) + "_step_index" }

// setCurrent records s as the node's current step of kind (nil: none, shown as {}). The field shows Ironic's
// keys only: whether the agent runs the step stays in the plan.
func setCurrent(n *store.Node, k steps.Kind, s map[string]any) {
	if s == nil {
		s = map[string]any{}
	}
	// in_band is Ferric's planning flag; Ironic clients do not know it.
	delete(s, "in_band")
	switch k {
	case steps.Clean:
		n.CleanStep = s
	case steps.Deploy:
		n.DeployStep = s
	case steps.Service:
		n.ServiceStep = s
	}
}

// currentStep returns the node's current step of kind ("" step when none).
func currentStep(n *store.Node, k steps.Kind) steps.Step {
	m := map[steps.Kind]map[string]any{steps.Clean: n.CleanStep, steps.Deploy: n.DeployStep, steps.Service: n.ServiceStep}[k]
	if len(m) == 0 {
		return steps.Step{}
	}
	// A malformed stored step (edited by hand, or from an older Ferric) reads as no step rather than failing.
	list, err := steps.FromAny([]any{m})
	if err != nil || len(list) == 0 {
		return steps.Step{}
	}
	return list[0]
}

// resetSteps forgets the plan and the current step of kind.
func resetSteps(n *store.Node, k steps.Kind) {
	delete(n.DriverInternalInfo, listKey(k))
	delete(n.DriverInternalInfo, indexKey(k))
	setCurrent(n, k, nil)
}

// providers returns the node's interfaces that offer steps, deploy first (its steps win a name clash). The raid
// interface comes last: fake-hardware's deploy interface offers the raid steps itself (fake.go).
func providers(t *driver.Task) []driver.StepProvider {
	var out []driver.StepProvider
	// One driver object may implement several interfaces; offer its steps once.
	seen := map[any]bool{}
	for _, x := range []any{t.Deploy, t.Management, t.Power, t.Boot, t.RAID} {
		if p, ok := x.(driver.StepProvider); ok && !seen[x] {
			seen[x] = true
			out = append(out, p)
		}
	}
	return out
}

// offered gathers the steps of kind the node's interfaces offer, and which interface runs each.
func offered(t *driver.Task, k steps.Kind) ([]steps.Step, map[string]driver.StepProvider) {
	var list []steps.Step
	by := map[string]driver.StepProvider{}
	for _, p := range providers(t) {
		for _, s := range p.Steps(k) {
			// First provider wins: providers() lists the deploy interface first.
			if _, dup := by[s.ID()]; !dup {
				by[s.ID()] = p
				list = append(list, s)
			}
		}
	}
	return list, by
}

// stepOverrides returns the operator's priority overrides, keyed "interface.step" like Ironic's
// [conductor]clean_step_priority_override; a priority of 0 leaves the step out of automated cleaning.
func (e *Engine) stepOverrides() map[string]int {
	if e.cfg.StepPriorities != nil {
		return e.cfg.StepPriorities
	}
	return DefaultStepPriorities()
}

// planSteps chooses the steps of the operation the node starts: automated clean takes the enabled steps,
// manual clean and service exactly the requested ones, deploy merges the user's deploy_steps into the driver's.
func (e *Engine) planSteps(ctx context.Context, t *driver.Task, k steps.Kind) ([]steps.Step, error) {
	n := t.Node
	offer, _ := offered(t, k)
	switch k {
	case steps.Clean:
		if manual, _ := n.DriverInternalInfo["manual_clean"].(bool); !manual {
			return steps.Automated(offer, e.stepOverrides()), nil
		}
		user, err := steps.FromAny(n.DriverInternalInfo[listKey(k)])
		if err != nil {
			return nil, err
		}
		return steps.ValidateUser(k, user, offer)
	case steps.Service:
		user, err := steps.FromAny(n.DriverInternalInfo[listKey(k)])
		if err != nil {
			return nil, err
		}
		return steps.ValidateUser(k, user, offer)
	}
	user, err := steps.FromAny(n.DriverInternalInfo["user_deploy_steps"])
	if err != nil {
		return nil, err
	}
	// The user's deploy_steps add to or re-prioritise the driver's; the core step may only be disabled. The
	// steps of the deploy templates matching the node's instance traits come between the two (templates.go).
	tmpl, err := e.templateSteps(ctx, t)
	if err != nil {
		return nil, err
	}
	return steps.MergeDeploy(offer, user, tmpl)
}

// validateRequestSteps checks the steps a clean, service or deploy request names against what the node's
// interfaces offer, before any state changes (Ironic's 400 wording, with the offered steps named). A deploy
// interface without steps runs its own Clean and Deploy, which take no steps: nothing is checked then, except
// that a deploy has no instance traits naming deploy templates (their steps could not run).
func (e *Engine) validateRequestSteps(ctx context.Context, t *driver.Task, ev fsm.Event, req ProvisionRequest) error {
	var tmpl []steps.Step
	if ev == fsm.EvDeploy || ev == fsm.EvRebuild {
		var err error
		if tmpl, err = e.templateSteps(ctx, t); err != nil {
			return fmt.Errorf("Failed to validate deploy or power info for node %s: %w", t.Node.UUID, err)
		}
	}
	// Parse runs again although the API checked the shape: it yields the Step values to validate.
	if !isStepProvider(t.Deploy) {
		return nil
	}
	var err error
	switch ev {
	case fsm.EvClean, fsm.EvService:
		k, raw := steps.Clean, req.CleanSteps
		if ev == fsm.EvService {
			k, raw = steps.Service, req.ServiceSteps
		}
		var user, valid []steps.Step
		if user, err = steps.Parse(k, listKey(k), raw); err == nil {
			offer, _ := offered(t, k)
			valid, err = steps.ValidateUser(k, user, offer)
		}
		// disable_ramdisk runs out-of-band steps only (Ironic: a step that requires_ramdisk is refused).
		for _, s := range valid {
			if req.DisableRamdisk && s.InBand && err == nil {
				err = fmt.Errorf("%s step %s requires booting a ramdisk, but disable_ramdisk is set: drop the step or disable_ramdisk", k, s.ID())
			}
		}
	case fsm.EvDeploy, fsm.EvRebuild:
		if len(req.DeploySteps) == 0 {
			return nil
		}
		var user []steps.Step
		if user, err = steps.Parse(steps.Deploy, "deploy_steps", req.DeploySteps); err == nil {
			offer, _ := offered(t, steps.Deploy)
			_, err = steps.MergeDeploy(offer, user, tmpl)
		}
	}
	if err != nil {
		return fmt.Errorf("%v: %w", err, ErrInvalidInput)
	}
	return nil
}

// isStepProvider reports whether x offers steps; a deploy interface that does not runs its own Deploy and
// Clean instead of the step engine.
func isStepProvider(x any) bool { _, ok := x.(driver.StepProvider); return ok }

// intOf reads an index stored in driver_internal_info (an int in this process, a float64 after a reload).
func intOf(v any) (int, bool) {
	switch x := v.(type) {
	case int:
		return x, true
	case float64:
		return int(x), true
	}
	return 0, false
}

// errHeld is runStep's way of saying the step put the node on hold.
var errHeld = errors.New("held")

// runSteps runs the planned steps of kind from the current index. It reports true when all are done (the caller
// ends the operation), false when the node waits, holds or failed.
func (e *Engine) runSteps(ctx context.Context, t *driver.Task, k steps.Kind) bool {
	n := t.Node
	dii := n.DriverInternalInfo
	// No index yet means the operation starts: plan once and keep the plan, so a later heartbeat or a
	// restart resumes the same list even if the interfaces' offers change meanwhile.
	idx, started := intOf(dii[indexKey(k)])
	if !started {
		plan, err := e.planSteps(ctx, t, k)
		if err != nil {
			e.failTask(ctx, t, fmt.Errorf("Node %s has invalid %s steps: %v", n.UUID, k, err))
			return false
		}
		dii[listKey(k)] = steps.Maps(plan)
		// Each deploy, clean or service keeps a log of its own (GET /v1/nodes/{node}/deploy_logs).
		tag := ""
		if k != steps.Deploy {
			tag = string(k) + "-"
		}
		dii["deploy_run"] = e.now().UTC().Format("20060102T150405Z") + "-" + tag + uuid.NewString()[:8]
		e.logAutodetect(ctx, t, k)
		t.Logf(ctx, "%s steps: %s", k, stepList(plan))
	}
	list, err := steps.FromAny(dii[listKey(k)])
	if err != nil {
		e.failTask(ctx, t, err)
		return false
	}
	// The index and current step are recorded before each step runs, so a wait resumes at it.
	_, by := offered(t, k)
	for ; idx < len(list); idx++ {
		s := list[idx]
		dii[indexKey(k)] = idx
		setCurrent(n, k, s.Map())
		t.Logf(ctx, "%s step %s started (%d of %d)", k, s.ID(), idx+1, len(list))
		// Saved before the step runs (the save is fenced by the reservation): a conductor that dies in the step
		// leaves the node in its transient state at this step, which the take-over fails with a clear
		// last_error as Ironic does, rather than in the wait state of an earlier step whose agent is gone.
		if err := t.Save(ctx); err != nil {
			e.failStep(ctx, t, k, s, fmt.Errorf("could not record the step before running it: %w", err))
			return false
		}
		out, err := e.runStep(ctx, t, k, s, by[s.ID()])
		if errors.Is(err, errHeld) {
			e.must(e.transition(n, fsm.EvHold, ""))
			t.Logf(ctx, "%s held at step %s: resume with the unhold verb", k, s.ID())
			return false
		}
		if err != nil {
			e.failStep(ctx, t, k, s, err)
			return false
		}
		if out == driver.Wait {
			e.must(e.transition(n, fsm.EvWait, ""))
			return false
		}
		t.Logf(ctx, "%s step %s done", k, s.ID())
	}
	// Cleaning and servicing leave an agent booted for their steps; the deploy interface shuts it down
	// (Ironic's tear_down_cleaning / tear_down_service). A deploy ends in the instance instead.
	resetSteps(n, k)
	if fin, ok := t.Deploy.(driver.StepFinisher); ok && k != steps.Deploy {
		if err := fin.FinishSteps(ctx, t, k); err != nil {
			e.failTask(ctx, t, fmt.Errorf("Failed to tear down after the %s steps of node %s: %v", k, n.UUID, err))
			return false
		}
	}
	return true
}

// failStep ends the operation with the failed step named, as Ironic words it.
func (e *Engine) failStep(ctx context.Context, t *driver.Task, k steps.Kind, s steps.Step, err error) {
	t.Logf(ctx, "%s step %s failed: %v", k, s.ID(), err)
	e.failTask(ctx, t, fmt.Errorf("Node %s failed %s step %s: %v", t.Node.UUID, k, s.ID(), err))
}

// runStep runs one step: the conductor's own flow steps (hold, wait, power actions), the core deploy step through
// the deploy interface's Deploy, any other through the interface that offered it.
func (e *Engine) runStep(ctx context.Context, t *driver.Task, k steps.Kind, s steps.Step, p driver.StepProvider) (driver.Outcome, error) {
	n := t.Node
	switch s.Step {
	// hold, wait and power_on/power_off/reboot are Ironic's conductor flow steps: they belong to no
	// interface and run in the conductor.
	case "hold":
		return driver.Done, errHeld
	case "wait":
		// JSON numbers arrive as float64; an int comes from steps built in Go.
		secs, ok := s.Args["seconds"].(float64)
		if !ok {
			if i, isInt := s.Args["seconds"].(int); isInt {
				secs, ok = float64(i), true
			}
		}
		if !ok {
			return driver.Done, errHeld // without a duration, wait holds the node until unhold
		}
		if secs < 0 || secs != secs { // NaN too
			return driver.Done, fmt.Errorf("wait step: args.seconds must be 0 or more, not %v", s.Args["seconds"])
		}
		// As in Ironic, the wait runs in the step's worker with the node locked, so it is capped
		// (--max-wait-step-seconds, Ironic's [conductor]max_conductor_wait_step_seconds): a longer request
		// waits the maximum, and the log says so. Compared in seconds: a huge value would overflow a Duration.
		d := e.cfg.MaxWaitStep
		if secs <= e.cfg.MaxWaitStep.Seconds() {
			d = time.Duration(secs * float64(time.Second))
		} else {
			t.Logf(ctx, "wait step asked for %v s; waiting the maximum %v (--max-wait-step-seconds)", s.Args["seconds"], e.cfg.MaxWaitStep)
		}
		select {
		case <-time.After(d):
			return driver.Done, nil
		case <-ctx.Done():
			return driver.Done, ctx.Err()
		}
	case "power_on", "power_off", "reboot":
		target := map[string]string{"power_on": driver.PowerOn, "power_off": driver.PowerOff, "reboot": driver.Rebooting}[s.Step]
		err := t.Power.SetPowerState(ctx, n, target, 0)
		WipeAgentToken(n) // as for every power action of the conductor
		e.refreshPower(ctx, t)
		return driver.Done, err
	}
	// deploy.deploy is the deploy interface's Deploy, as Ironic's core step is the deploy interface's
	// deploy method; it is not in the provider's ExecuteStep.
	if k == steps.Deploy && s.ID() == steps.Core {
		return t.Deploy.Deploy(ctx, t)
	}
	// The plan was made earlier (before a wait or a restart); the driver may have changed since.
	if p == nil {
		return driver.Done, fmt.Errorf("no interface of the node offers this step any more (offered: %s)", offeredNames(t, k))
	}
	return p.ExecuteStep(ctx, t, k, s)
}

// stepList names the planned steps in run order, with their priorities.
func stepList(plan []steps.Step) string {
	if len(plan) == 0 {
		return "none"
	}
	out := ""
	for i, s := range plan {
		if i > 0 {
			out += ", "
		}
		out += fmt.Sprintf("%s (priority %d)", s.ID(), s.Priority)
	}
	return out
}

// offeredNames lists the steps of kind the node's interfaces offer, for error messages.
func offeredNames(t *driver.Task, k steps.Kind) string {
	list, _ := offered(t, k)
	return steps.Offered(list)
}

// clean runs automated cleaning (provide, undeploy) or a manual clean: the node's clean steps, or the deploy
// interface's Clean when it offers no steps.
func (e *Engine) clean(ctx context.Context, t *driver.Task) bool {
	n := t.Node
	manual, _ := n.DriverInternalInfo["manual_clean"].(bool)
	// Automated cleaning is skipped as Ironic's skip_automated_cleaning decides: the node's automated_clean wins
	// when set (true forces cleaning even under --no-automated-clean), else the conductor's setting.
	skip := e.cfg.NoAutomatedClean
	if n.AutomatedClean != nil {
		skip = !*n.AutomatedClean
	}
	if !manual && skip {
		e.finishClean(n)
		return true
	}
	// A node that reached cleaning still on autodetect (e.g. deploy_interface set by hand while deployed) cleans
	// with the fallback interface, as provide and manual clean do (Provision switched those already).
	e.switchForClean(t)
	e.cacheHardware(ctx, t) // as Ironic's do_node_clean (bios.go)
	if !isStepProvider(t.Deploy) {
		out, err := t.Deploy.Clean(ctx, t)
		if err != nil {
			e.failTask(ctx, t, fmt.Errorf("Failed to clean node %s: %v", n.UUID, err))
			return false
		}
		if out == driver.Wait {
			e.must(e.transition(n, fsm.EvWait, ""))
			return false
		}
		e.finishClean(n)
		return true
	}
	if !e.runSteps(ctx, t, steps.Clean) {
		return false
	}
	e.finishClean(n)
	return true
}

// deployNode runs the deploy steps, or the deploy interface's Deploy when it offers no steps.
func (e *Engine) deployNode(ctx context.Context, t *driver.Task) bool {
	n := t.Node
	if isStepProvider(t.Deploy) {
		if !e.runSteps(ctx, t, steps.Deploy) {
			return false
		}
		e.refreshPower(ctx, t)
		e.must(e.transition(n, fsm.EvDone, ""))
		return true
	}
	out, err := t.Deploy.Deploy(ctx, t)
	if err != nil {
		e.failTask(ctx, t, err) // tears the agent boot down: the deploy may have failed after booting it
		return false
	}
	if out == driver.Wait {
		e.must(e.transition(n, fsm.EvWait, ""))
		return false
	}
	e.refreshPower(ctx, t)
	e.must(e.transition(n, fsm.EvDone, ""))
	return true
}

// service runs the requested service steps of an active node.
func (e *Engine) service(ctx context.Context, t *driver.Task) bool {
	if !e.runSteps(ctx, t, steps.Service) {
		return false
	}
	e.must(e.transition(t.Node, fsm.EvDone, ""))
	return true
}

// finishClean ends a cleaning that finished or was skipped: a manual clean returns to manageable, automated
// cleaning makes the node available.
func (e *Engine) finishClean(n *store.Node) {
	resetSteps(n, steps.Clean)
	// Ironic's restore_interface: the node leaves deploy and clean, autodetect chooses again next time.
	e.restoreDeployInterface(n)
	// A retired node ends an automated clean in manageable too (Ironic's cleaning), out of the pool.
	if manual, _ := n.DriverInternalInfo["manual_clean"].(bool); manual || n.Retired {
		e.must(e.transition(n, fsm.EvManage, ""))
		return
	}
	e.must(e.transition(n, fsm.EvDone, ""))
}

// nextStep moves a node whose current step finished in its wait state back to the transient state and past that
// step; drive then runs the rest. It reports false when the node runs no steps of that kind (a legacy wait).
func (e *Engine) nextStep(t *driver.Task, st fsm.State) bool {
	n := t.Node
	k, ok := stepKind(st)
	if !ok {
		return false
	}
	idx, started := intOf(n.DriverInternalInfo[indexKey(k)])
	if !started {
		return false
	}
	// The finished step stays in the plan; only the index moves, as Ironic advances clean_step_index.
	n.DriverInternalInfo[indexKey(k)] = idx + 1
	e.must(e.transition(n, fsm.EvResume, ""))
	return true
}

// unhold resumes a held node (the unhold verb moved it to its wait state) with the step after the hold.
func (e *Engine) unhold(ctx context.Context, t *driver.Task) {
	if e.nextStep(t, fsm.State(t.Node.ProvisionState)) {
		e.drive(ctx, t)
	}
}
