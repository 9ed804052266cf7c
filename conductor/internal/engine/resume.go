package engine

// Carrying on a deploy whose conductor died or restarted in the middle of a step (issue 17). Ironic fails every
// node left in a transient state ("can't be resumed"); Ferric fails only those whose step cannot be carried on
// safely. The deploy interface says which of its steps can be (driver.Resumer): run again (conductor-side steps
// that only set something: power, boot device, boot media) or followed on the agent (the install, which the agent
// runs and agentdeploy.StartOnce starts at most once). Everything else fails as before, with Ironic's message.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/fsm"
	"github.com/ferric-metal/ferric/conductor/internal/steps"
	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// resumption says how this conductor carries on t's node, left in a transient state by a conductor that is gone.
func (e *Engine) resumption(t *driver.Task) driver.Resume {
	n := t.Node
	// Only an interface that says which of its steps can be carried on is (the fake one fails, as Ironic's does).
	r, ok := t.Deploy.(driver.Resumer)
	if fsm.State(n.ProvisionState) != fsm.Deploying || !ok || !isStepProvider(t.Deploy) {
		return driver.ResumeNever
	}
	// No step index: the conductor died between the deploy request and planning the steps; nothing ran yet.
	idx, started := intOf(n.DriverInternalInfo[indexKey(steps.Deploy)])
	if !started {
		return driver.ResumeRerun
	}
	// The step as planned (with its in-band flag, which the node's deploy_step field leaves out).
	list, err := steps.FromAny(n.DriverInternalInfo[listKey(steps.Deploy)])
	if err != nil || idx < 0 || idx >= len(list) {
		return driver.ResumeNever
	}
	s := list[idx]
	switch s.Step {
	// The conductor's own flow steps (runStep): power actions and waits are safe to run again, and a hold
	// holds again.
	case "power_on", "power_off", "reboot", "wait", "hold":
		return driver.ResumeRerun
	}
	return r.ResumeStep(steps.Deploy, s)
}

// carryOn settles node n, reserved by this conductor, that a conductor which is gone left in a transient state:
// it resumes the deploy where resumption allows (the deploy log says who carried it on and how), or fails it with
// failMsg. It saves the node and releases the reservation in every case.
func (e *Engine) carryOn(ctx context.Context, n *store.Node, failMsg, why string) {
	var t *driver.Task
	mode := driver.ResumeNever
	if fsm.StuckOnRestart(fsm.State(n.ProvisionState)) {
		var err error
		if t, err = e.task(n); err == nil {
			mode = e.resumption(t)
		}
	}
	step := currentStep(n, steps.Deploy).ID()
	log := e.log.WithField("node", n.UUID).WithField("state", n.ProvisionState).WithField("step", step)
	switch {
	case !fsm.StuckOnRestart(fsm.State(n.ProvisionState)):
		// Nothing was running (a wait state, or a stable one): only what the caller changed is saved.
	case mode == driver.ResumeRerun:
		t.Logf(ctx, "%s; conductor %s runs deploy step %s again", why, e.cfg.Host, step)
		log.Warn("resuming a deploy left in a transient state: running its step again")
		ctx, cancel := context.WithTimeout(ctx, e.cfg.OperationTimeout)
		defer cancel()
		// drive resumes the steps at the recorded index; runLocked saves the node and releases it.
		e.runLocked(ctx, n, "resume deploy", func(ctx context.Context, n *store.Node) { e.drive(ctx, t) })
		return
	case mode == driver.ResumeWait:
		t.Logf(ctx, "%s; conductor %s follows deploy step %s on the agent", why, e.cfg.Host, step)
		log.Warn("resuming a deploy left in a transient state: waiting for the agent that runs its step")
		e.must(e.transition(n, fsm.EvWait, ""))
	default:
		log.Warn("failing a node left in a transient state")
		if err := e.fail(ctx, n, t, fsm.EvFail, failMsg); err != nil { // the agent it may have booted goes too
			log.WithError(err).Error("could not fail the node")
		}
	}
	defer e.release(n.UUID)
	e.applyBeat(n)
	if err := e.store.UpdateNode(ctx, n); err != nil {
		log.WithError(err).Error("could not save the node")
	}
}

// settleRecovered carries on or fails, each in the background, the nodes Recover found in a transient state.
// They run under the engine's work context, which shutdown cancels after its grace, whether or not Run has
// started; each is bounded by OperationTimeout, as any operation.
func (e *Engine) settleRecovered(uuids []string) {
	for _, uuid := range uuids {
		e.background(func(ctx context.Context) {
			n, err := e.reserveSoon(ctx, uuid)
			if err != nil {
				e.log.WithError(err).WithField("node", uuid).Error("could not reserve a node left in a transient state")
				return
			}
			e.carryOn(ctx, n, fmt.Sprintf("The %s state can't be resumed by conductor %s. Moving to fail state.",
				n.ProvisionState, e.cfg.Host), fmt.Sprintf("conductor %s restarted while the deploy ran", e.cfg.Host))
		})
	}
}

// reserveSoon reserves a node that a heartbeat or an API call may hold for a moment (an orphan just freed, or
// found at start): it tries for up to 10 s, where reserve alone gives up after LockRetries.
func (e *Engine) reserveSoon(ctx context.Context, uuid string) (*store.Node, error) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, err := e.reserve(ctx, uuid, true)
		var le *store.LockedError
		if err == nil || !errors.As(err, &le) || time.Now().After(deadline) {
			return n, err
		}
	}
}
