package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/driver/autodetect"
	"github.com/ferric-metal/ferric/conductor/internal/steps"
	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// The autodetect deploy interface's switching, as Ironic's switch_interface / restore_interface do it. A deploy,
// rebuild or adopt of a node whose deploy_interface is `autodetect` first asks the autodetect interface which
// concrete interface can deploy the node's image, then puts that one on the node (deploy_interface shows it while
// the node is deployed) and keeps `autodetect` in driver_internal_info.original_deploy_interface. A rebuild of a node
// autodetect switched detects again: the new image may be of another kind. The original interface comes back where
// Ironic restores it: when cleaning finishes or is skipped, when it fails, when an adopt fails. A clean of an
// autodetect node (provide, manual clean) has no image to detect: it switches to the fallback (the last of
// --autodetect-deploy-interfaces), whose agent clean steps run, and is restored the same way.
// Every function here works on a node whose lock the caller holds; nothing is saved here.

// autodetectFor returns the autodetect interface when the node's deploy interface must be (re)detected: the node
// is on `autodetect`, or autodetect switched it and it is still on the interface autodetect chose (an operator who
// changed deploy_interface by hand since is obeyed). Nil otherwise, or when no autodetect interface is registered.
func (e *Engine) autodetectFor(n *store.Node) *autodetect.Interface {
	cur := n.Interfaces["deploy"]
	if cur != autodetect.Name {
		orig, _ := n.DriverInternalInfo[autodetect.KeyOriginal].(string)
		rec, _ := n.DriverInternalInfo[autodetect.KeyRecord].(map[string]any)
		if chosen, _ := rec["interface"].(string); orig != autodetect.Name || chosen != cur {
			return nil
		}
	}
	d, _ := e.reg.DeployInterface(autodetect.Name)
	ad, _ := d.(*autodetect.Interface)
	return ad
}

// detectDeploy switches the task's node to the deploy interface autodetect chooses for op ("deploy" for deploy and
// rebuild, "adopt"); a node autodetect does not concern is left alone. A candidate that cannot tell refuses the
// request (ErrInvalidInput, naming the interface and the cause), and the node is left unchanged.
func (e *Engine) detectDeploy(ctx context.Context, t *driver.Task, op string) error {
	ad := e.autodetectFor(t.Node)
	if ad == nil {
		return nil
	}
	// The deploy's log run starts later (runSteps); a line written now would land in the previous run's log.
	dt := *t
	dt.DeployLog = nil
	c, err := ad.Choose(ctx, &dt)
	if err != nil {
		return fmt.Errorf("%v: %w", err, ErrInvalidInput)
	}
	e.switchDeploy(t, c, op)
	return nil
}

// switchForClean switches a node still on `autodetect` to the fallback interface for a clean (see the top).
func (e *Engine) switchForClean(t *driver.Task) {
	if t.Node.Interfaces["deploy"] != autodetect.Name {
		return
	}
	d, _ := e.reg.DeployInterface(autodetect.Name)
	ad, ok := d.(*autodetect.Interface)
	if !ok {
		return // Registry.Task would have refused a node on an unregistered interface already
	}
	fb := ad.Fallback()
	e.switchDeploy(t, autodetect.Choice{Name: fb.Name, Deploy: fb.Deploy, Detection: driver.Detection{
		Reason: fmt.Sprintf("a clean has no image to detect: the clean steps of %s, the last of --autodetect-deploy-interfaces", fb.Name)}},
		string(steps.Clean))
}

// switchDeploy puts choice c on the task's node and task, and records it: original_deploy_interface (Ironic's key)
// and driver_internal_info.autodetect (the chosen interface, the reason, the operation, the detector's record and
// when).
func (e *Engine) switchDeploy(t *driver.Task, c autodetect.Choice, op string) {
	n := t.Node
	rec := map[string]any{}
	for k, v := range c.Detection.Record {
		rec[k] = v
	}
	// Ferric's keys win over a detector's record of the same name.
	rec["interface"], rec["reason"], rec["operation"] = c.Name, c.Detection.Reason, op
	rec["detected_at"] = e.now().UTC().Format(time.RFC3339)
	if c.Fallback {
		rec["fallback"] = true
	}
	n.DriverInternalInfo[autodetect.KeyRecord] = rec
	n.DriverInternalInfo[autodetect.KeyOriginal] = autodetect.Name
	n.Interfaces["deploy"] = c.Name
	t.Deploy = c.Deploy
	log := t.Log.WithField("deploy_interface", c.Name).WithField("operation", op)
	if c.Fallback {
		log.Warn("autodetect: " + c.Detection.Reason)
		return
	}
	log.Info("autodetect switched the deploy interface: " + c.Detection.Reason)
}

// logAutodetect writes the switch to the log run of the operation of kind k that starts now, if autodetect chose
// the interface for it; a fallback is written as a warning.
func (e *Engine) logAutodetect(ctx context.Context, t *driver.Task, k steps.Kind) {
	dii := t.Node.DriverInternalInfo
	rec, _ := dii[autodetect.KeyRecord].(map[string]any)
	if orig, _ := dii[autodetect.KeyOriginal].(string); orig != autodetect.Name || rec["operation"] != string(k) {
		return
	}
	if fb, _ := rec["fallback"].(bool); fb {
		t.Logf(ctx, "WARNING: autodetect: %v", rec["reason"])
		return
	}
	t.Logf(ctx, "autodetect chose deploy interface %v: %v", rec["interface"], rec["reason"])
}

// restoreDeployInterface puts back the deploy interface autodetect switched from and forgets
// original_deploy_interface (Ironic's restore_interface). The record of the last choice stays, for the operator.
func (e *Engine) restoreDeployInterface(n *store.Node) {
	orig, _ := n.DriverInternalInfo[autodetect.KeyOriginal].(string)
	if orig == "" {
		return
	}
	e.log.WithField("node", n.UUID).WithField("from", n.Interfaces["deploy"]).WithField("to", orig).
		Info("restoring the deploy interface autodetect switched from")
	n.Interfaces["deploy"] = orig
	delete(n.DriverInternalInfo, autodetect.KeyOriginal)
}

// validateDeploy is the deploy interface's check for GET /v1/nodes/{id}/validate: autodetect validates the
// interface it would choose (Ironic's AutodetectDeploy.validate), with the node's task but without its deploy log
// (the check takes no lock and belongs to no run).
func validateDeploy(ctx context.Context, t *driver.Task) error {
	if tv, ok := t.Deploy.(interface {
		ValidateTask(context.Context, *driver.Task) error
	}); ok {
		vt := *t
		vt.DeployLog = nil
		return tv.ValidateTask(ctx, &vt)
	}
	return t.Deploy.Validate(ctx, t.Node)
}
