package engine

import (
	"context"
	"fmt"

	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/fsm"
	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// endsAgentBoot reports the failure states that end an operation driven by an agent ramdisk. Entering one of them
// must leave nothing of the agent behind: a booted agent with a valid token and served boot media is a node that
// anyone on the provisioning network can talk to.
func endsAgentBoot(s fsm.State) bool {
	switch s {
	case fsm.DeployFailed, fsm.CleanFailed, fsm.InspectFailed, fsm.RescueFailed, fsm.ServiceFailed:
		return true
	}
	return false
}

// agentKeys are the driver_internal_info keys that let someone act as, or reach, the node's agent.
func agentKeys() []string {
	// agent_booted_for_steps and agent_step_command_id belong to the step runner of agent-driven deploy
	// interfaces: left behind after a failure, the next clean would believe an agent is up and never boot one.
	return []string{"agent_secret_token", "agent_secret_token_pregenerated", "agent_url", "agent_verify_ca",
		"agent_version", "agent_status", "agent_booted_for_steps", "agent_step_command_id"}
}

// forgetAgent wipes every credential and address of the node's agent, pre-generated tokens included (WipeAgentToken
// keeps those, because a power action must not invalidate media that are still inserted).
func forgetAgent(n *store.Node) {
	for _, k := range agentKeys() {
		delete(n.DriverInternalInfo, k)
	}
}

// tearDownAgent undoes an agent boot on the reserved node: the boot interface ejects and deletes the boot media (or
// stops a local agent), the node is powered off (unless disable_power_off is set, as Ironic honours it), and the
// agent's token, URL and certificate are forgotten. Each step runs even when an earlier one fails; failures are
// logged and written to the deploy log, never hidden.
func (e *Engine) tearDownAgent(ctx context.Context, t *driver.Task) {
	n := t.Node
	log := t.Log.WithField("node", n.UUID)
	if err := t.Boot.CleanUpRamdisk(ctx, t); err != nil {
		log.WithError(err).Warn("could not clean up the agent boot")
		t.Logf(ctx, "tear-down: could not clean up the agent boot: %v", err)
	}
	if !n.DisablePowerOff {
		if err := t.Power.SetPowerState(ctx, n, driver.PowerOff, 0); err != nil {
			log.WithError(err).Warn("could not power the node off after a failure")
			t.Logf(ctx, "tear-down: could not power the node off: %v", err)
		}
		e.refreshPower(ctx, t)
	}
	forgetAgent(n)
	driver.RemoveRescuePassword(n) // as Ironic's rescue clean_up: a rescue that ends this way keeps no password
}

// fail moves the reserved node n to the state event ev (EvFail or EvAbort) leads to, with last_error msg. When that
// state ends an agent-driven operation the agent boot is torn down first; t may be nil (it is built then). This is
// the one path into a failure state: the agent's errors, call-back timeouts, aborts and restart recovery all use it.
func (e *Engine) fail(ctx context.Context, n *store.Node, t *driver.Task, ev fsm.Event, msg string) error {
	to, err := e.fsm.Next(fsm.State(n.ProvisionState), ev)
	if err != nil {
		return fmt.Errorf("%v: %w", err, ErrInvalidState)
	}
	if endsAgentBoot(to) {
		if t == nil {
			t, err = e.task(n)
		}
		if err == nil {
			e.tearDownAgent(ctx, t)
		} else {
			// Without a task the interfaces cannot be reached; the credentials go at least.
			e.log.WithError(err).WithField("node", n.UUID).Warn("cannot tear down the agent boot: no driver task")
			forgetAgent(n)
		}
	}
	// Ironic restores the deploy interface autodetect switched from when cleaning or adoption fails.
	if to == fsm.CleanFailed || to == fsm.AdoptFailed {
		e.restoreDeployInterface(n)
	}
	e.setState(n, to, msg)
	e.recordFailure(ctx, n, to, msg)
	return nil
}
