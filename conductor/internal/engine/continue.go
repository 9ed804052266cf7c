package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/fsm"
)

// agentWaits lists the states in which a node waits for its agent to finish work the conductor handed it; in
// these a heartbeat (or a poll) continues the operation, and the call-back timeout applies.
func agentWaits() []fsm.State {
	return []fsm.State{fsm.DeployWait, fsm.CleanWait, fsm.ServiceWait, fsm.RescueWait}
}

// agentWait reports whether s is one of agentWaits.
func agentWait(s fsm.State) bool {
	for _, w := range agentWaits() {
		if s == w {
			return true
		}
	}
	return false
}

// continuer returns the interface that continues the task's node in its wait state: the rescue interface in
// rescue wait, the deploy interface otherwise; nil when that interface is not agent-driven.
func continuer(t *driver.Task) AgentDeploy {
	var x any = t.Deploy
	if fsm.State(t.Node.ProvisionState) == fsm.RescueWait {
		x = t.Rescue
	}
	ad, _ := x.(AgentDeploy)
	return ad
}

// continueAgent hands a waiting node to its agent-driven interface and applies the outcome. It runs on a
// heartbeat or a poll with the node's lock held by the caller, which saves the node afterwards. Continue
// answers Done (the agent finished: move on), anything else (still working: stay in the wait state, and the
// next heartbeat asks again), or an error (fail the operation).
func (e *Engine) continueAgent(ctx context.Context, t *driver.Task, ad AgentDeploy) {
	n := t.Node
	st := fsm.State(n.ProvisionState)
	// A heartbeat may race an abort or a timeout that moved the node on; then there is nothing to continue.
	if !agentWait(st) {
		return
	}
	start := time.Now()
	out, err := ad.Continue(ctx, t)
	e.obs().AgentPoll(time.Since(start), err)
	switch {
	case err != nil:
		t.Log.WithError(err).Warn("agent step failed")
		msg := err.Error()
		// Ironic's step failure wording, naming the step, so last_error says which step broke.
		if k, ok := stepKind(st); ok {
			if s := currentStep(n, k); s.Step != "" {
				t.Logf(ctx, "%s step %s failed: %v", k, s.ID(), err)
				msg = fmt.Sprintf("Node %s failed %s step %s: %v", n.UUID, k, s.ID(), err)
			}
		}
		e.must(e.fail(ctx, n, t, fsm.EvFail, msg))
	case out == driver.Done:
		e.finishWait(ctx, t, st)
		t.Log.WithField("to", n.ProvisionState).Info("provision state reached")
	}
}

// finishWait moves a node whose agent finished its work out of wait state st: a node running steps goes on with
// the next step, any other to the state its operation ends in. This follows Ironic's edges: resume leaves the
// wait state for the matching transient one (deploying, cleaning...), and done (or manage) ends it.
func (e *Engine) finishWait(ctx context.Context, t *driver.Task, st fsm.State) {
	n := t.Node
	if e.nextStep(t, st) {
		e.drive(ctx, t)
		return
	}
	e.must(e.transition(n, fsm.EvResume, ""))
	switch st {
	// The deploy may have rebooted or powered the machine; record the state it ended in.
	case fsm.DeployWait:
		e.refreshPower(ctx, t)
		e.must(e.transition(n, fsm.EvDone, ""))
	// A manual clean returns to manageable, an automated one makes the node available.
	case fsm.CleanWait:
		e.finishClean(n)
	default:
		e.must(e.transition(n, fsm.EvDone, ""))
	}
}
