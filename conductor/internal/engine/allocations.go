package engine

// Allocations (Ironic's conductor/allocations.py): an allocation asks for any available node matching a resource
// class, traits, candidate nodes and owner; the engine picks one at random among the matches and binds it under
// the node's reservation (allocation_uuid and instance_uuid on the node, state active on the allocation, in one
// store transaction). Backfilling binds a named, already deployed node instead. Unlike Ironic, which answers
// "allocating" and matches in a worker, the matching runs within the request: it is a few store reads and one
// write, and the answer then already says active or error.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/ferric-metal/ferric/conductor/internal/fsm"
	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// NodeTraits reads a node's traits. Config.NodeTraits sets it; nil reads store.Node.Traits (the traits stored with
// the node itself).
type NodeTraits func(ctx context.Context, nodeUUID string) ([]string, error)

// nodeTraits returns the configured trait reader or the default one.
func (e *Engine) nodeTraits() NodeTraits {
	if e.cfg.NodeTraits != nil {
		return e.cfg.NodeTraits
	}
	return func(ctx context.Context, nodeUUID string) ([]string, error) {
		n, err := e.store.GetNode(ctx, nodeUUID)
		if err != nil {
			return nil, err
		}
		return n.Traits, nil
	}
}

// hasTraits reports whether the node has every trait of want.
func (e *Engine) hasTraits(ctx context.Context, nodeUUID string, want []string) (bool, error) {
	if len(want) == 0 {
		return true, nil
	}
	have, err := e.nodeTraits()(ctx, nodeUUID)
	if err != nil {
		return false, fmt.Errorf("read the traits of node %s: %w", nodeUUID, err)
	}
	set := map[string]bool{}
	for _, t := range have {
		set[t] = true
	}
	for _, t := range want {
		if !set[t] {
			return false, nil
		}
	}
	return true, nil
}

// CreateAllocation stores a new allocation (a.UUID "" = a new one, or the node's instance_uuid when backfilling)
// and processes it: with backfill "" it binds a matching available node or ends in state error with Ironic's
// last_error (both answered as success: the allocation exists); with backfill naming a node (API 1.58) it binds
// that active node or refuses with the reason, leaving the allocation in state error as Ironic does.
func (e *Engine) CreateAllocation(ctx context.Context, a *store.Allocation, backfill string) (*store.Allocation, error) {
	var node *store.Node
	if backfill != "" {
		n, err := e.store.GetNode(ctx, backfill)
		if errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("Node %s could not be found.: %w", backfill, ErrInvalidInput)
		}
		if err != nil {
			return nil, err
		}
		node = n
		if a.ResourceClass == "" {
			a.ResourceClass = n.ResourceClass
		}
		if a.UUID == "" {
			a.UUID = n.InstanceUUID
		}
	}
	if a.ResourceClass == "" && node == nil {
		return nil, fmt.Errorf("The resource_class field is mandatory when not backfilling: %w", ErrInvalidInput)
	}
	// A backfill without uuid takes the node's instance_uuid, so an instance and its allocation share one UUID.
	if a.UUID == "" {
		a.UUID = uuid.NewString()
	}
	if err := e.resolveCandidates(ctx, a); err != nil {
		return nil, err
	}
	a.State, a.LastError, a.NodeUUID = store.AllocationAllocating, "", ""
	a.CreatedAt = e.now().UTC()
	if err := e.store.CreateAllocation(ctx, a); err != nil {
		return nil, allocationConflict(err, a)
	}
	if node != nil {
		return a, e.backfill(ctx, a, node.UUID)
	}
	e.allocate(ctx, a)
	return a, nil
}

// allocationConflict turns the store's duplicate errors into Ironic's messages (409).
func allocationConflict(err error, a *store.Allocation) error {
	if !errors.Is(err, store.ErrDuplicate) {
		return err
	}
	if a.Name != "" && strings.Contains(err.Error(), "with name") {
		return fmt.Errorf("An allocation with name %s already exists.: %w", a.Name, ErrConflict)
	}
	return fmt.Errorf("An allocation with UUID %s already exists.: %w", a.UUID, ErrConflict)
}

// resolveCandidates turns candidate node names into UUIDs, keeping the order asked; unknown ones are a 400
// naming them all (Ironic's check_node_list).
func (e *Engine) resolveCandidates(ctx context.Context, a *store.Allocation) error {
	var missing []string
	out := make([]string, 0, len(a.CandidateNodes))
	for _, ident := range a.CandidateNodes {
		n, err := e.store.GetNode(ctx, ident)
		if errors.Is(err, store.ErrNotFound) {
			missing = append(missing, ident)
			continue
		}
		if err != nil {
			return err
		}
		out = append(out, n.UUID)
	}
	if len(missing) > 0 {
		return fmt.Errorf("Nodes cannot be found: %s: %w", strings.Join(missing, ", "), ErrInvalidInput)
	}
	a.CandidateNodes = out
	return nil
}

// failAllocation records a failed allocation: no node, state error, Ironic's AllocationFailed text.
func (e *Engine) failAllocation(ctx context.Context, a *store.Allocation, reason string) {
	a.NodeUUID, a.State = "", store.AllocationError
	a.LastError = fmt.Sprintf("Failed to process allocation %s: %s.", a.UUID, reason)
	e.log.WithField("allocation", a.UUID).Error(a.LastError)
	if err := e.store.SetAllocationNode(ctx, nil, a); err != nil && !errors.Is(err, store.ErrNotFound) {
		e.log.WithError(err).WithField("allocation", a.UUID).Error("could not save the failed allocation")
	}
}

// candidates lists the nodes that may take a: available, not in maintenance, without an instance, with a power
// state, the resource class asked, among candidate_nodes if given, owned (or leased) by its owner if set, having
// every trait asked; shuffled, a node named as the allocation first. reason is Ironic's text when none is left.
func (e *Engine) candidates(ctx context.Context, a *store.Allocation) (nodes []*store.Node, reason string, err error) {
	// Ironic's database filters first (state, maintenance, association, class); the rest is checked here.
	off, free, rc := false, false, a.ResourceClass
	all, err := e.store.ListNodes(ctx, store.NodeFilter{ProvisionState: string(fsm.Available), Maintenance: &off,
		Associated: &free, ResourceClass: &rc}, store.ListOptions{})
	if err != nil {
		return nil, "", err
	}
	want := map[string]bool{}
	for _, u := range a.CandidateNodes {
		want[u] = true
	}
	for _, n := range all {
		if n.PowerState == "" || n.AllocationUUID != "" || (len(want) > 0 && !want[n.UUID]) ||
			(a.Owner != "" && n.Owner != a.Owner && n.Lessee != a.Owner) {
			continue
		}
		nodes = append(nodes, n)
	}
	if len(nodes) == 0 {
		if len(want) > 0 {
			return nil, "none of the requested nodes are available and match the resource class " + rc, nil
		}
		return nil, "no available nodes match the resource class " + rc, nil
	}
	if len(a.Traits) > 0 {
		matched := nodes[:0]
		for _, n := range nodes {
			ok, err := e.hasTraits(ctx, n.UUID, a.Traits)
			if err != nil {
				return nil, "", err
			}
			if ok {
				matched = append(matched, n)
			}
		}
		if nodes = matched; len(nodes) == 0 {
			return nil, "no suitable nodes have the requested traits " + strings.Join(a.Traits, ", "), nil
		}
	}
	// Parallel allocations must not try the nodes in the same order.
	rand.Shuffle(len(nodes), func(i, j int) { nodes[i], nodes[j] = nodes[j], nodes[i] })
	if a.Name != "" {
		for i, n := range nodes {
			if n.Name == a.Name {
				nodes[0], nodes[i] = nodes[i], nodes[0]
				break
			}
		}
	}
	return nodes, "", nil
}

// allocate binds a to one of its candidates. A node locked by another operation is tried again on the next round
// (Config.LockRetries rounds, LockRetryInterval apart), as Ironic retries all of them rather than waiting on one.
func (e *Engine) allocate(ctx context.Context, a *store.Allocation) {
	nodes, reason, err := e.candidates(ctx, a)
	if err != nil {
		e.failAllocation(ctx, a, "Unexpected exception during allocation: "+err.Error())
		return
	}
	for round := 0; reason == ""; round++ {
		var retry []*store.Node
		for _, cand := range nodes {
			bound, locked, err := e.tryBind(ctx, a, cand.UUID)
			if err != nil {
				e.failAllocation(ctx, a, "Unexpected exception during allocation: "+err.Error())
				return
			}
			if bound {
				e.log.WithField("allocation", a.UUID).WithField("node", cand.UUID).Info("node reserved for allocation")
				return
			}
			if locked {
				retry = append(retry, cand)
			}
		}
		switch nodes = retry; {
		case len(nodes) == 0:
			reason = "all nodes were filtered out during reservation"
		case round+1 >= e.cfg.LockRetries:
			reason = fmt.Sprintf("could not reserve any of %d suitable nodes", len(nodes))
		default:
			select {
			case <-ctx.Done():
				reason = "the request ended while waiting for locked nodes: " + ctx.Err().Error()
			case <-time.After(e.cfg.LockRetryInterval):
			}
		}
	}
	e.failAllocation(ctx, a, reason)
}

// tryBind reserves one candidate without waiting, checks it still suits a (it may have changed since the
// listing), and binds it. locked: the node was busy (or its reservation was broken while binding): try later.
func (e *Engine) tryBind(ctx context.Context, a *store.Allocation, nodeUUID string) (bound, locked bool, err error) {
	n, err := e.reserve(ctx, nodeUUID, false)
	var le *store.LockedError
	switch {
	case errors.As(err, &le):
		return false, true, nil
	case errors.Is(err, store.ErrNotFound):
		return false, false, nil // deleted since the listing
	case err != nil:
		return false, false, err
	}
	defer e.release(n.UUID)
	// Ironic's _verify_node: what the listing showed may be stale by the time the lock is held.
	ok := !n.Maintenance && n.InstanceUUID == "" && n.AllocationUUID == "" &&
		n.ProvisionState == string(fsm.Available) && n.ResourceClass == a.ResourceClass
	if ok {
		if ok, err = e.hasTraits(ctx, n.UUID, a.Traits); err != nil {
			return false, false, err
		}
	}
	if !ok {
		return false, false, nil
	}
	err = e.bind(ctx, a, n)
	switch {
	case errors.Is(err, store.ErrNotHolder):
		return false, true, nil
	case errors.Is(err, store.ErrDuplicate):
		return false, false, nil // associated meanwhile (Ironic's NodeAssociated): next node
	}
	return err == nil, false, err
}

// bind writes the reserved node n as a's: allocation_uuid and instance_uuid (the allocation's UUID, as Ironic)
// and instance_info.traits (the traits asked, which deploy templates match), with a active.
func (e *Engine) bind(ctx context.Context, a *store.Allocation, n *store.Node) error {
	prevInfo := n.InstanceInfo
	info := make(map[string]any, len(n.InstanceInfo)+1)
	for k, v := range n.InstanceInfo {
		info[k] = v
	}
	traits := make([]any, 0, len(a.Traits))
	for _, t := range a.Traits {
		traits = append(traits, t)
	}
	info["traits"] = traits
	n.AllocationUUID, n.InstanceUUID, n.InstanceInfo = a.UUID, a.UUID, info
	a.State, a.LastError = store.AllocationActive, ""
	if err := e.store.SetAllocationNode(ctx, n, a); err != nil {
		n.AllocationUUID, n.InstanceUUID, n.InstanceInfo = "", "", prevInfo
		a.State, a.NodeUUID = store.AllocationAllocating, ""
		return err
	}
	return nil
}

// backfill binds the deployed node named at creation (API 1.58), checking what Ironic checks; a refusal leaves a
// in state error and is returned (400, 409 for a node or instance already associated).
func (e *Engine) backfill(ctx context.Context, a *store.Allocation, nodeIdent string) error {
	n, err := e.reserve(ctx, nodeIdent, true)
	if err != nil {
		e.failAllocation(ctx, a, err.Error())
		return err
	}
	defer e.release(n.UUID)
	var errs []string
	if n.ProvisionState != string(fsm.Active) {
		errs = append(errs, fmt.Sprintf("Node must be in the \"active\" state, but the current state is \"%s\"", n.ProvisionState))
	}
	if a.ResourceClass != "" && n.ResourceClass != a.ResourceClass {
		errs = append(errs, fmt.Sprintf("Resource class %s does not match the requested resource class %s",
			noneIfEmpty(n.ResourceClass), a.ResourceClass))
	}
	if ok, err := e.hasTraits(ctx, n.UUID, a.Traits); err != nil {
		e.failAllocation(ctx, a, "Unexpected exception during allocation: "+err.Error())
		return err
	} else if !ok {
		have, _ := e.nodeTraits()(ctx, n.UUID)
		errs = append(errs, fmt.Sprintf("List of traits %v does not match the requested traits %v", have, a.Traits))
	}
	// Ironic gathers every mismatch into one message, so the operator fixes them in one go.
	if len(a.CandidateNodes) > 0 && !slices.Contains(a.CandidateNodes, n.UUID) {
		errs = append(errs, fmt.Sprintf("Candidate nodes must be empty or contain the target node, but got %v", a.CandidateNodes))
	}
	if len(errs) > 0 {
		reason := fmt.Sprintf("Cannot backfill an allocation for node %s: %s", n.UUID, strings.Join(errs, "; "))
		e.failAllocation(ctx, a, reason)
		return fmt.Errorf("%s: %w", a.LastError, ErrInvalidInput)
	}
	if (n.InstanceUUID != "" && n.InstanceUUID != a.UUID) || n.AllocationUUID != "" {
		inst := n.InstanceUUID
		if inst == "" {
			inst = n.AllocationUUID
		}
		msg := fmt.Sprintf("Node %s is associated with instance %s.", n.UUID, inst)
		e.failAllocation(ctx, a, msg)
		return fmt.Errorf("%s: %w", msg, ErrConflict)
	}
	if err := e.bind(ctx, a, n); err != nil {
		msg := err.Error()
		if errors.Is(err, store.ErrDuplicate) {
			msg = fmt.Sprintf("Instance %s is already associated with a node, it cannot be associated with this "+
				"other node %s", a.UUID, n.UUID)
			err = fmt.Errorf("%s: %w", msg, ErrConflict)
		}
		e.failAllocation(ctx, a, msg)
		return err
	}
	return nil
}

// UpdateAllocation applies fn (PATCH of name and extra, API 1.57) and saves the allocation; it touches no node.
func (e *Engine) UpdateAllocation(ctx context.Context, ident string, fn func(a *store.Allocation) error) (*store.Allocation, error) {
	a, err := e.store.GetAllocation(ctx, ident)
	if err != nil {
		return nil, err
	}
	if err := fn(a); err != nil {
		return nil, err
	}
	if err := e.store.UpdateAllocation(ctx, a); err != nil {
		return nil, allocationConflict(err, a)
	}
	return a, nil
}

// DeleteAllocation removes an allocation and frees the node it holds (allocation_uuid and instance_uuid cleared)
// under the node's reservation, refused as Ironic does while the node is active or in a transition that does not
// allow updates, unless it is in maintenance.
func (e *Engine) DeleteAllocation(ctx context.Context, ident string) error {
	a, err := e.store.GetAllocation(ctx, ident)
	if err != nil {
		return err
	}
	if a.NodeUUID == "" {
		return e.store.DeleteAllocation(ctx, a.UUID, nil)
	}
	n, err := e.reserve(ctx, a.NodeUUID, true)
	if errors.Is(err, store.ErrNotFound) {
		return e.store.DeleteAllocation(ctx, a.UUID, nil) // the node went (and with it, the row) meanwhile
	}
	if err != nil {
		return err
	}
	defer e.release(n.UUID)
	if !n.Maintenance {
		if n.TargetProvisionState != "" && !fsm.UpdateAllowed(fsm.State(n.ProvisionState)) {
			return fmt.Errorf("Cannot remove allocation %s for node %s, because the node is in state %s where updates "+
				"are not allowed (and maintenance mode is off): %w", a.UUID, n.UUID, n.ProvisionState, ErrConflict)
		}
		if n.ProvisionState == string(fsm.Active) {
			return fmt.Errorf("Cannot remove allocation %s for node %s, because the node is active (and maintenance "+
				"mode is off): %w", a.UUID, n.UUID, ErrConflict)
		}
	}
	// Ironic clears instance_uuid only on the node the allocation holds: a node whose binding was already
	// undone (allocation_uuid gone) keeps what an operator set since.
	if n.AllocationUUID == a.UUID {
		n.AllocationUUID, n.InstanceUUID = "", ""
	}
	return e.store.DeleteAllocation(ctx, a.UUID, n)
}

// NodeAllocation returns the allocation holding a node (GET /v1/nodes/{node}/allocation); ErrNotFound names the
// node as Ironic does.
func (e *Engine) NodeAllocation(ctx context.Context, nodeIdent string) (*store.Allocation, error) {
	n, err := e.store.GetNode(ctx, nodeIdent)
	if err != nil {
		return nil, err
	}
	list, err := e.store.ListAllocations(ctx, store.AllocationFilter{NodeUUID: n.UUID}, store.ListOptions{Limit: 1})
	if err != nil {
		return nil, err
	}
	if len(list) == 0 {
		return nil, fmt.Errorf("Allocation for node %s was not found: %w", nodeIdent, ErrNotFoundAllocation)
	}
	return list[0], nil
}

// ErrNotFoundAllocation marks a node without an allocation (404 with the message as given).
var ErrNotFoundAllocation = errors.New("allocation not found")

// allocationOnPatch applies Ironic's rules to a node PATCH that changes the instance_uuid of a node holding an
// allocation: another instance is refused (NodeAssociated); removing it is refused outside enroll, inspecting,
// inspect wait, manageable and available unless in maintenance, and otherwise drops the allocation (the node
// write deletes it, see store.UpdateNode).
func (e *Engine) allocationOnPatch(n *store.Node, prevInstance string) error {
	if n.AllocationUUID == "" || n.InstanceUUID == prevInstance {
		return nil
	}
	if n.InstanceUUID != "" {
		return fmt.Errorf("Node %s is associated with instance %s.: %w", n.UUID, prevInstance, ErrConflict)
	}
	allowed := []fsm.State{fsm.Enroll, fsm.Inspecting, fsm.InspectWait, fsm.Manageable, fsm.Available}
	if !n.Maintenance && !slices.Contains(allowed, fsm.State(n.ProvisionState)) {
		return fmt.Errorf("Node %s with an allocation can not have instance_uuid removed unless it is in one of "+
			"allowed (enroll, inspecting, inspect wait, manageable, available) states or in maintenance mode. "+
			"Current state is '%s'.: %w", n.UUID, n.ProvisionState, ErrConflict)
	}
	n.AllocationUUID = ""
	return nil
}

// ResumeAllocations processes allocations a previous run left in state allocating (it stopped between storing
// and binding), as Ironic's conductor resumes them on start.
func (e *Engine) ResumeAllocations(ctx context.Context) error {
	list, err := e.store.ListAllocations(ctx, store.AllocationFilter{State: store.AllocationAllocating}, store.ListOptions{})
	if err != nil {
		return err
	}
	for _, a := range list {
		e.log.WithField("allocation", a.UUID).Info("resuming an unfinished allocation")
		e.allocate(ctx, a)
	}
	return nil
}

// noneIfEmpty renders an unset field as Python's None, as Ironic's messages show it.
func noneIfEmpty(s string) string {
	if s == "" {
		return "None"
	}
	return s
}
