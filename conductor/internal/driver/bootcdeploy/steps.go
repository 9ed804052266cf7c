package bootcdeploy

import (
	"context"
	"fmt"

	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/driver/agentdeploy"
	"github.com/ferric-metal/ferric/conductor/internal/steps"
	"github.com/ferric-metal/ferric/deploy"
)

// Steps lists the interface's steps. Deploy: the core step and the conductor-side steps around the install, as
// Ironic's bootc interface orders them. Clean: the agent's erase steps (in-band, run after booting the agent).
// Service: none of its own (the agent's service steps are not offered yet).
func (d *Deploy) Steps(kind steps.Kind) []steps.Step {
	switch kind {
	case steps.Deploy:
		return agentdeploy.DeploySteps(deploy.StepBootcInstall)
	case steps.Clean:
		return d.CleanSteps()
	}
	return nil
}

// ResumeStep says how another conductor carries on a deploy step after the one running it died
// (agentdeploy.ResumeStep): the install is followed on the agent, never sent twice.
func (d *Deploy) ResumeStep(kind steps.Kind, s steps.Step) driver.Resume {
	return agentdeploy.ResumeStep(kind, s, deploy.StepBootcInstall)
}

// ExecuteStep runs one step. The conductor-side deploy steps finish at once, except the core step (it boots the
// agent: Wait) and the install (Wait until the agent finished). An in-band step boots the agent first when this
// clean or service has not booted it yet; it is started on the agent at once when the agent is up, else on its
// call-back (Continue).
func (d *Deploy) ExecuteStep(ctx context.Context, t *driver.Task, kind steps.Kind, s steps.Step) (driver.Outcome, error) {
	n := t.Node
	if kind == steps.Deploy && !s.InBand {
		switch s.Step {
		case agentdeploy.StepDeploy:
			return d.Deploy(ctx, t)
		// Start afresh: a command id left from an earlier attempt names a command of another agent boot.
		case deploy.StepBootcInstall:
			delete(n.DriverInternalInfo, keyCommand)
			// No agent yet (it has not called back): wait, and Continue starts the install on its heartbeat.
			c, err := d.Client(n)
			if err != nil {
				return driver.Wait, nil
			}
			defer c.Close()
			return d.continueInstall(ctx, t, c)
		}
		if out, ok, err := d.FlowStep(ctx, t, s.Step); ok {
			return out, err
		}
		return driver.Done, fmt.Errorf("the bootc deploy interface has no deploy step %s: %w", s.ID(), driver.ErrInvalid)
	}
	return d.ExecuteInBand(ctx, t, kind, s)
}
