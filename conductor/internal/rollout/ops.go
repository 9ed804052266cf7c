package rollout

// The operator's requests on rollouts: create (select, plan and store), pause, resume and abort. The API calls
// these; the controller then does the rest at its ticks.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/google/uuid"
	"github.com/sirupsen/logrus"

	"github.com/ferric-metal/ferric/bootchost"
	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// OpsStore is what the operator's requests need beyond the controller's Store.
type OpsStore interface {
	Store
	ListNodes(ctx context.Context, f store.NodeFilter, o store.ListOptions) ([]*store.Node, error)
	CreateBootcRollout(ctx context.Context, r *store.BootcRollout, nodes []store.BootcRolloutNode) error
	PutBootcDeadEnd(ctx context.Context, digest, image string) error
	BootcDeadEnd(ctx context.Context, digest string) (string, error)
}

// Created is a new rollout with its plan: its nodes by wave and those left out because they boot the target.
type Created struct {
	Rollout *store.BootcRollout
	Nodes   []store.BootcRolloutNode
	Already []Candidate
}

// Create validates spec, records its dead ends, selects and plans the nodes and stores the running rollout.
// image is the target, already pinned by digest.
func Create(ctx context.Context, st OpsStore, image string, spec Spec) (*Created, error) {
	if Digest(image) == "" {
		return nil, fmt.Errorf("\"image\" %q is not pinned by digest: %w", image, ErrInvalid)
	}
	if err := spec.Check(image); err != nil {
		return nil, err
	}
	if dead, err := st.BootcDeadEnd(ctx, Digest(image)); err != nil {
		return nil, err
	} else if dead != "" {
		return nil, fmt.Errorf("\"image\" %s is a dead end (recorded as %s by an earlier rollout); choose a newer image: %w", image, dead, ErrInvalid)
	}
	cands, err := Select(ctx, st, spec.Selector)
	if err != nil {
		return nil, err
	}
	waves, already, err := Plan(cands, Digest(image), spec.Waves)
	if err != nil {
		return nil, err
	}
	// Dead ends outlive the rollout that declared them: they mark images known bad, which later rollouts and an
	// operator's switch must not target either (recording one twice is a no-op).
	for _, ref := range spec.DeadEnds {
		if err := st.PutBootcDeadEnd(ctx, Digest(ref), ref); err != nil {
			return nil, err
		}
	}
	raw, err := jsonSpec(spec)
	if err != nil {
		return nil, err
	}
	r := &store.BootcRollout{ID: uuid.NewString(), Image: image, Spec: raw, State: StateRunning, Waves: len(waves)}
	if len(waves) == 0 {
		r.State = StateDone
	}
	var nodes []store.BootcRolloutNode
	for w, wave := range waves {
		for i, c := range wave {
			nodes = append(nodes, store.BootcRolloutNode{NodeUUID: c.UUID, Wave: w, Position: i, State: NodePending})
		}
	}
	if err := st.CreateBootcRollout(ctx, r, nodes); err != nil {
		return nil, err
	}
	return &Created{Rollout: r, Nodes: nodes, Already: already}, nil
}

// Select lists the candidate nodes of a selector with their booted digest (from their last report) and wariness.
// Named nodes must exist; the other fields filter.
func Select(ctx context.Context, st OpsStore, sel Selector) ([]Candidate, error) {
	var nodes []*store.Node
	if len(sel.Nodes) > 0 {
		for _, ident := range sel.Nodes {
			n, err := st.GetNode(ctx, ident)
			if err != nil {
				return nil, fmt.Errorf("\"selector\" \"nodes\": %w", err)
			}
			nodes = append(nodes, n)
		}
	} else {
		f := store.NodeFilter{Owner: sel.Owner, ConductorGroup: sel.ConductorGroup}
		if sel.ResourceClass != "" {
			f.ResourceClass = &sel.ResourceClass
		}
		var err error
		if nodes, err = st.ListNodes(ctx, f, store.ListOptions{}); err != nil {
			return nil, err
		}
	}
	out := make([]Candidate, 0, len(nodes))
	for _, n := range nodes {
		if !matches(n, sel) {
			continue
		}
		// The booted digest lets the planner leave out hosts already on the target; a host that never reported
		// is planned anyway and skipped with its reason when its wave starts.
		c := Candidate{UUID: n.UUID, Name: n.Name, Wariness: Wariness(n.Extra)}
		rep, err := st.BootcReporter(ctx, n.UUID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		if rep != nil && rep.Report != nil {
			c.BootedDigest = rep.Report.BootedDigest
		}
		out = append(out, c)
	}
	return out, nil
}

// matches applies the selector's fields to a node (named nodes included, so a list and a filter combine).
func matches(n *store.Node, sel Selector) bool {
	switch {
	case sel.ResourceClass != "" && n.ResourceClass != sel.ResourceClass,
		sel.ConductorGroup != nil && n.ConductorGroup != *sel.ConductorGroup,
		sel.Owner != "" && n.Owner != sel.Owner:
		return false
	}
	for _, t := range sel.Traits {
		if !slices.Contains(n.Traits, t) {
			return false
		}
	}
	return true
}

// Pause stops a running rollout before its next step; actions already queued go on.
func Pause(ctx context.Context, st Store, id, reason string) (*store.BootcRollout, error) {
	return transition(ctx, st, id, StateRunning, func(r *store.BootcRollout) {
		r.State, r.PauseReason = StatePaused, reason
	})
}

// Resume runs a paused rollout again; the nodes of its current wave that failed are retried.
func Resume(ctx context.Context, st Store, id string) (*store.BootcRollout, error) {
	r, err := transition(ctx, st, id, StatePaused, func(r *store.BootcRollout) { r.State, r.PauseReason = StateRunning, "" })
	if err != nil {
		return nil, err
	}
	nodes, err := st.ListBootcRolloutNodes(ctx, id, r.CurrentWave)
	if err != nil {
		return nil, err
	}
	// A resume is the operator saying the cause is fixed: failed nodes get a fresh start (pending), and one that
	// meanwhile booted the target is found healthy at its next step without a new action.
	for i := range nodes {
		if n := &nodes[i]; n.State == NodeFailed {
			n.State, n.Reason = NodePending, "retried at resume after: "+n.Reason
			if err := st.UpdateBootcRolloutNode(ctx, n); err != nil {
				return nil, err
			}
		}
	}
	return r, nil
}

// Abort ends a running or paused rollout: queued actions of its nodes are cancelled, and the nodes of the current
// wave whose switch is done get a rollback (the host boots its previous deployment again).
func Abort(ctx context.Context, st Store, id string, log *logrus.Entry) (*store.BootcRollout, error) {
	r, err := st.GetBootcRollout(ctx, id)
	if err != nil {
		return nil, err
	}
	from := r.State
	if from != StateRunning && from != StatePaused {
		return nil, fmt.Errorf("rollout %s is %s; only a running or paused rollout can be aborted: %w", id, from, ErrState)
	}
	// The state is written first, conditionally: the controller stops queueing at once, and a concurrent abort or
	// a controller write in between makes this one fail instead of both acting.
	r.State = StateAborted
	if ok, err := st.UpdateBootcRollout(ctx, r, from); err != nil {
		return nil, err
	} else if !ok {
		return nil, fmt.Errorf("rollout %s changed meanwhile; look at it again and retry: %w", id, ErrState)
	}
	nodes, err := st.ListBootcRolloutNodes(ctx, id, r.CurrentWave)
	if err != nil {
		return nil, err
	}
	for i := range nodes {
		if err := abortNode(ctx, st, r, &nodes[i]); err != nil {
			return nil, err
		}
	}
	log.WithField("rollout", id).WithField("wave", r.CurrentWave).Info("rollout aborted")
	return r, nil
}

// abortNode cancels a node's queued action or queues a rollback after a done one; an action under way is the
// host's to finish (its reason says so).
func abortNode(ctx context.Context, st Store, r *store.BootcRollout, n *store.BootcRolloutNode) error {
	if n.ActionID == "" || n.State == NodeSkipped || n.State == NodeFailed {
		return nil
	}
	a, err := st.GetBootcAction(ctx, n.NodeUUID, n.ActionID)
	if err != nil {
		return err
	}
	switch {
	case a.State == bootchost.StateQueued:
		moved, err := st.MoveBootcAction(ctx, n.NodeUUID, a.ID, bootchost.StateQueued, bootchost.StateCancelled, "")
		if err != nil {
			return err
		}
		if moved {
			n.State, n.Reason = NodeCancelled, "its queued switch was cancelled by the abort"
		} else {
			n.Reason = "its switch had started when the rollout was aborted; roll it back by hand once it ends"
		}
	case a.State == bootchost.StateDone:
		// bootc rollback boots the previous deployment, which is what the host booted before this switch; it
		// reboots through the rollout's group, so the rollback is as gentle as the rollout.
		rb := &store.BootcAction{ID: uuid.NewString(), NodeUUID: n.NodeUUID, Kind: bootchost.ActionRollback, Reboot: true,
			RebootGroup: RebootGroup(r.ID)}
		if err := st.CreateBootcAction(ctx, rb); err != nil {
			n.Reason = fmt.Sprintf("could not queue its rollback: %v", err)
		} else {
			n.ActionID, n.State, n.Reason = rb.ID, NodeRolledBack, "rollback "+rb.ID+" queued by the abort"
		}
	default:
		n.Reason = "its switch was " + a.State + " when the rollout was aborted; roll it back by hand once it ends"
	}
	return st.UpdateBootcRolloutNode(ctx, n)
}

// transition moves a rollout from one state with change, conditional on the state it was read in.
func transition(ctx context.Context, st Store, id, from string, change func(*store.BootcRollout)) (*store.BootcRollout, error) {
	r, err := st.GetBootcRollout(ctx, id)
	if err != nil {
		return nil, err
	}
	if r.State != from {
		return nil, fmt.Errorf("rollout %s is %s, not %s: %w", id, r.State, from, ErrState)
	}
	change(r)
	if ok, err := st.UpdateBootcRollout(ctx, r, from); err != nil {
		return nil, err
	} else if !ok {
		return nil, fmt.Errorf("rollout %s changed meanwhile; look at it again and retry: %w", id, ErrState)
	}
	return r, nil
}

// jsonSpec encodes a spec for the store.
func jsonSpec(s Spec) ([]byte, error) {
	b, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("encode the rollout's spec: %w", err)
	}
	return b, nil
}
