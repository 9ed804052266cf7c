package rollout

// The controller drives running rollouts one tick at a time. Every tick re-reads what it needs from the store,
// so a conductor that takes a rollout over (the cluster ring moved it) continues where the last one stopped,
// and an operator's pause written between two ticks wins: the controller writes a rollout only from the state
// it read.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/sirupsen/logrus"

	"github.com/ferric-metal/ferric/bootchost"
	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// Store is what the controller reads and writes (store.Store satisfies it).
type Store interface {
	ListBootcRollouts(ctx context.Context, state string) ([]*store.BootcRollout, error)
	GetBootcRollout(ctx context.Context, id string) (*store.BootcRollout, error)
	UpdateBootcRollout(ctx context.Context, r *store.BootcRollout, from string) (bool, error)
	ListBootcRolloutNodes(ctx context.Context, id string, wave int) ([]store.BootcRolloutNode, error)
	UpdateBootcRolloutNode(ctx context.Context, n *store.BootcRolloutNode) error
	GetNode(ctx context.Context, ident string) (*store.Node, error)
	BootcReporter(ctx context.Context, nodeUUID string) (*store.BootcReporter, error)
	CreateBootcAction(ctx context.Context, a *store.BootcAction) error
	GetBootcAction(ctx context.Context, nodeUUID, id string) (*store.BootcAction, error)
	MoveBootcAction(ctx context.Context, nodeUUID, id, from, to, errText string) (bool, error)
	PutFleetLockGroup(ctx context.Context, group string, u store.FleetLockUpdate) (*store.FleetLockGroup, error)
}

// Config holds the controller's dependencies.
type Config struct {
	Store Store
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// Owns reports whether this conductor drives the rollout (the cluster ring's owner of its id), so that
	// exactly one of several conductors queues its actions; nil: always.
	Owns func(rolloutID string) bool
	Log  *logrus.Entry
}

// Controller drives rollouts.
type Controller struct{ cfg Config }

// New returns a controller.
func New(cfg Config) *Controller {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Owns == nil {
		cfg.Owns = func(string) bool { return true }
	}
	return &Controller{cfg: cfg}
}

// Run ticks every interval until ctx ends; each tick is bounded by the interval.
func (c *Controller) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		tctx, cancel := context.WithTimeout(ctx, every)
		if err := c.Tick(tctx); err != nil && ctx.Err() == nil {
			c.cfg.Log.WithError(err).Warn("rollout tick failed; retrying at the next tick")
		}
		cancel()
	}
}

// Tick advances every running rollout this conductor owns by what the store shows now.
func (c *Controller) Tick(ctx context.Context) error {
	list, err := c.cfg.Store.ListBootcRollouts(ctx, StateRunning)
	if err != nil {
		return err
	}
	var errs []error
	for _, r := range list {
		if !c.cfg.Owns(r.ID) {
			continue
		}
		if err := c.tick(ctx, r); err != nil {
			errs = append(errs, fmt.Errorf("rollout %s: %w", r.ID, err))
		}
	}
	return errors.Join(errs...)
}

// tick advances one rollout: start the current wave when it may start, move each of its nodes, then pause on a
// failure or pass the wave when every node is healthy or skipped.
func (c *Controller) tick(ctx context.Context, r *store.BootcRollout) error {
	spec, err := DecodeSpec(r.Spec)
	if err != nil {
		return err
	}
	now := c.cfg.Now().UTC()
	if r.WaveStartedAt == nil {
		if started, err := c.startWave(ctx, r, spec, now); err != nil || !started {
			return err
		}
	}
	nodes, err := c.cfg.Store.ListBootcRolloutNodes(ctx, r.ID, r.CurrentWave)
	if err != nil {
		return err
	}
	// Skipped nodes do not hold the wave (their reason is shown), failed ones stop the whole rollout: one broken
	// host of a wave is the signal a phased rollout exists to catch before the next wave repeats it.
	var failed []string
	passed := true
	for i := range nodes {
		n := &nodes[i]
		if err := c.step(ctx, r, spec, n, now); err != nil {
			return err
		}
		switch n.State {
		case NodeHealthy, NodeSkipped:
		case NodeFailed:
			failed = append(failed, fmt.Sprintf("%s: %s", n.NodeUUID, n.Reason))
		default:
			passed = false
		}
	}
	log := c.cfg.Log.WithField("rollout", r.ID).WithField("wave", r.CurrentWave)
	// Both writes are conditional on running: an operator's pause or abort since this tick read the rollout wins.
	switch {
	case len(failed) > 0:
		r.State = StatePaused
		r.PauseReason = fmt.Sprintf("wave %d failed its health gate on %d node(s): %s; fix them and resume, or abort "+
			"to roll the wave back", r.CurrentWave, len(failed), strings.Join(failed, "; "))
		log.WithField("reason", r.PauseReason).Warn("rollout paused")
		_, err = c.cfg.Store.UpdateBootcRollout(ctx, r, StateRunning)
		return err
	case passed:
		r.CurrentWave++
		r.WaveStartedAt, r.WavePassedAt = nil, &now
		if r.CurrentWave >= r.Waves {
			r.State = StateDone
		}
		log.WithField("state", r.State).Info("rollout wave passed")
		_, err = c.cfg.Store.UpdateBootcRollout(ctx, r, StateRunning)
		return err
	}
	return nil
}

// startWave starts the current wave once the wait after the previous one is over and a maintenance window is
// open, with the rollout's reboot group limited to max_unavailable slots. It reports whether the wave started.
func (c *Controller) startWave(ctx context.Context, r *store.BootcRollout, spec *Spec, now time.Time) (bool, error) {
	if r.CurrentWave >= r.Waves {
		r.State = StateDone
		_, err := c.cfg.Store.UpdateBootcRollout(ctx, r, StateRunning)
		return false, err
	}
	if r.WavePassedAt != nil && now.Before(r.WavePassedAt.Add(spec.WaitBetween)) {
		return false, nil
	}
	windows, err := ParseWindows(spec.Windows)
	if err != nil {
		return false, err
	}
	if !InWindow(windows, now) {
		return false, nil
	}
	// The group's slots are (re)set at every wave start, an idempotent write: the limit holds even if an operator
	// reset the group meanwhile, and hosts of the rollout share it with nobody else (its name is the rollout's).
	slots := max(1, spec.MaxUnavailable)
	if _, err := c.cfg.Store.PutFleetLockGroup(ctx, RebootGroup(r.ID), store.FleetLockUpdate{Slots: &slots}); err != nil {
		return false, err
	}
	r.WaveStartedAt = &now
	return c.cfg.Store.UpdateBootcRollout(ctx, r, StateRunning)
}

// step moves one node of the current wave as far as the store allows now, and writes it when it changed.
func (c *Controller) step(ctx context.Context, r *store.BootcRollout, spec *Spec, n *store.BootcRolloutNode, now time.Time) error {
	// Most ticks change nothing for most nodes: a node is written only when it moved, which keeps a tick over a
	// wave of hundreds of hosts to reads.
	before := *n
	var err error
	switch n.State {
	case NodePending:
		err = c.queue(ctx, r, spec, n)
	case NodeUpdating, NodeVerifying:
		err = c.watch(ctx, r, spec, n, now)
	}
	if err != nil || *n == before {
		return err
	}
	return c.cfg.Store.UpdateBootcRolloutNode(ctx, n)
}

// queue gives a pending node its next switch (a barrier or the target), or skips it with the reason a host
// cannot take an action now.
func (c *Controller) queue(ctx context.Context, r *store.BootcRollout, spec *Spec, n *store.BootcRolloutNode) error {
	node, err := c.cfg.Store.GetNode(ctx, n.NodeUUID)
	if errors.Is(err, store.ErrNotFound) {
		n.State, n.Reason = NodeSkipped, "the node was deleted"
		return nil
	}
	if err != nil {
		return err
	}
	rep, err := c.cfg.Store.BootcReporter(ctx, n.NodeUUID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	// Checked when the wave starts, not when the rollout was planned: hours may pass between the two, and a node
	// put in maintenance meanwhile is exactly one the operator wants left alone.
	if why := refusal(node, rep); why != "" {
		n.State, n.Reason = NodeSkipped, why
		return nil
	}
	// The next step follows from what the host boots now, not from a remembered path: a host moved by hand, or
	// retried after a failure, takes the step it needs from where it is.
	next := spec.NextImage(rep.Report.BootedDigest, r.Image)
	if next == "" {
		n.State, n.Reason = NodeHealthy, ""
		return nil
	}
	a := &store.BootcAction{ID: uuid.NewString(), NodeUUID: n.NodeUUID, Kind: bootchost.ActionSwitch, Image: next,
		Reboot: true, RebootGroup: RebootGroup(r.ID)}
	switch err := c.cfg.Store.CreateBootcAction(ctx, a); {
	case errors.Is(err, store.ErrActionOpen):
		n.State, n.Reason = NodeSkipped, "the node already has an unfinished bootc action"
	case errors.Is(err, store.ErrNotFound):
		n.State, n.Reason = NodeSkipped, "the node was deleted"
	case err != nil:
		return err
	default:
		n.ActionID, n.StepImage, n.State, n.Reason = a.ID, next, NodeUpdating, ""
	}
	return nil
}

// refusal says why a host cannot take a rollout's action now ("" when it can): the checks an operator's switch
// gets, worded for the rollout's node list.
func refusal(n *store.Node, rep *store.BootcReporter) string {
	switch {
	case n.ProvisionState != "active":
		return "the node is " + n.ProvisionState + ", not active"
	case n.Maintenance:
		return "the node is in maintenance"
	case rep == nil || rep.Report == nil:
		return "the host never reported (no ferric-hostd)"
	case rep.Revoked:
		return "the host's reporter credential is revoked"
	case rep.Report.Incompatible:
		return "the host has local changes bootc cannot carry over (incompatible)"
	}
	return ""
}

// watch follows a node's action: a failed or cancelled action fails the node, and so does a reboot not finished
// within the health deadline. A done one waits for a report, sent after the action was queued, showing the step's
// digest booted: it makes the node healthy (or pending again when the step was a barrier); none within the health
// deadline after the action ended fails it.
func (c *Controller) watch(ctx context.Context, r *store.BootcRollout, spec *Spec, n *store.BootcRolloutNode, now time.Time) error {
	a, err := c.cfg.Store.GetBootcAction(ctx, n.NodeUUID, n.ActionID)
	if err != nil {
		return err
	}
	switch a.State {
	case bootchost.StateFailed:
		n.State, n.Reason = NodeFailed, fmt.Sprintf("its switch to %s failed: %s", n.StepImage, a.Error)
		return nil
	case bootchost.StateCancelled:
		n.State, n.Reason = NodeFailed, fmt.Sprintf("its switch to %s was cancelled", n.StepImage)
		return nil
	case bootchost.StateDone:
		n.State = NodeVerifying
	case bootchost.StateRebooting:
		// A host that rebooted and has not finished its action by the deadline did not come back (or came back
		// without its reporter): the same health gate as a missing report.
		if now.After(a.UpdatedAt.Add(spec.HealthDeadline)) {
			n.State, n.Reason = NodeFailed, fmt.Sprintf("it rebooted into %s at %s and has not reported back within %s",
				Digest(n.StepImage), a.UpdatedAt.Format(time.RFC3339), spec.HealthDeadline)
		}
		return nil
	default:
		return nil
	}
	rep, err := c.cfg.Store.BootcReporter(ctx, n.NodeUUID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	// The report must be newer than the action's creation: the host did not boot the step's digest then (it
	// would have had no step), so a report showing it booted can only come from after the switch. hostd reports
	// the new boot before it marks the action done, so "after the action ended" would miss that report.
	deadline := a.UpdatedAt.Add(spec.HealthDeadline)
	if rep != nil && rep.Report != nil && rep.Report.BootedDigest == Digest(n.StepImage) &&
		!rep.Report.ReportedAt.Before(a.CreatedAt) && !rep.Report.ReportedAt.After(deadline) {
		n.State, n.Reason = NodeHealthy, ""
		if n.StepImage != r.Image {
			n.State = NodePending // a barrier passed: the next step is due
		}
		return nil
	}
	if now.After(deadline) {
		last := "it never reported"
		if rep != nil && rep.Report != nil {
			last = fmt.Sprintf("its last report at %s shows %s booted", rep.Report.ReportedAt.Format(time.RFC3339), rep.Report.BootedDigest)
		}
		n.State, n.Reason = NodeFailed, fmt.Sprintf("no report of %s booted within %s after its switch ended; %s",
			Digest(n.StepImage), spec.HealthDeadline, last)
	}
	return nil
}
