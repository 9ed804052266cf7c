package engine

// Portgroup writes, under the reservation of the portgroup's node, with Ironic's rules (manager.py
// update_portgroup, destroy_portgroup): a portgroup moves to another node only while that node is enroll,
// manageable or inspecting (or in maintenance) and only without ports, and is deleted only without ports.

import (
	"context"
	"encoding/json"
	"errors"
	"strings"

	"github.com/ferric-metal/ferric/conductor/internal/fsm"
	"github.com/ferric-metal/ferric/conductor/internal/store"
)

func clonePortgroup(g *store.Portgroup) *store.Portgroup {
	b, _ := json.Marshal(g) // maps of JSON values only
	var c store.Portgroup
	_ = json.Unmarshal(b, &c)
	c.ID = g.ID
	c.Normalize()
	return &c
}

// portgroupPorts lists the ports of a portgroup.
func (e *Engine) portgroupPorts(ctx context.Context, uuid string) ([]*store.Port, error) {
	return e.store.ListPorts(ctx, store.PortFilter{PortgroupUUID: uuid}, store.ListOptions{})
}

// CreatePortgroup stores a new portgroup of node g.NodeUUID (a UUID or name, replaced by the UUID) under the
// node's reservation.
func (e *Engine) CreatePortgroup(ctx context.Context, g *store.Portgroup) error {
	return e.withNodeReserved(ctx, g.NodeUUID, func(n *store.Node) error {
		g.NodeUUID = n.UUID
		g.CreatedAt = e.now().UTC()
		return e.store.CreatePortgroup(ctx, g)
	})
}

// UpdatePortgroup applies change to portgroup ident (UUID or name) under its node's reservation (and the
// reservation of the node it moves to) and returns it as stored.
func (e *Engine) UpdatePortgroup(ctx context.Context, ident string, change func(g *store.Portgroup) error) (*store.Portgroup, error) {
	cur, err := e.store.GetPortgroup(ctx, ident)
	if err != nil {
		return nil, err
	}
	var out *store.Portgroup
	err = e.withNodeReserved(ctx, cur.NodeUUID, func(n *store.Node) error {
		old, err := e.store.GetPortgroup(ctx, cur.UUID)
		if err != nil {
			return err
		}
		g := clonePortgroup(old)
		if err := change(g); err != nil {
			return err
		}
		out = g
		target, err := e.targetNode(ctx, g.NodeUUID, n)
		if err != nil {
			return err
		}
		if target == n.UUID {
			return e.savePortgroup(ctx, n, old, g)
		}
		return e.withNodeReserved(ctx, target, func(to *store.Node) error {
			return e.savePortgroup(ctx, to, old, g)
		})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// savePortgroup checks Ironic's update_portgroup rules for g (changed from old) on node n and writes it.
func (e *Engine) savePortgroup(ctx context.Context, n *store.Node, old, g *store.Portgroup) error {
	g.NodeUUID = n.UUID
	if n.ProvisionState == string(fsm.Inspecting) {
		return conflictErr("Cannot update portgroup \"%s\" on node \"%s\" while it is in state \"%s\".", g.UUID,
			n.UUID, n.ProvisionState)
	}
	if g.NodeUUID != old.NodeUUID {
		if !n.Maintenance && !contains(connectivityStates, n.ProvisionState) {
			return conflictErr("Portgroup %s can not be associated to node %s unless the node is in a %s state or "+
				"in maintenance mode. Current state is '%s'.", g.UUID, n.UUID, strings.Join(connectivityStates, ", "),
				n.ProvisionState)
		}
		ports, err := e.portgroupPorts(ctx, g.UUID)
		if err != nil {
			return err
		}
		if len(ports) > 0 {
			return inputErr("Portgroup %s can not be associated with node %s because there are ports associated "+
				"with this portgroup.", g.UUID, n.UUID)
		}
	}
	return e.store.UpdatePortgroup(ctx, g)
}

// DeletePortgroup removes portgroup ident (UUID or name) under its node's reservation; a portgroup with ports
// is kept (Ironic's PortgroupNotEmpty).
func (e *Engine) DeletePortgroup(ctx context.Context, ident string) error {
	cur, err := e.store.GetPortgroup(ctx, ident)
	if err != nil {
		return err
	}
	return e.withNodeReserved(ctx, cur.NodeUUID, func(n *store.Node) error {
		ports, err := e.portgroupPorts(ctx, cur.UUID)
		// The store checks again in its delete (a port could join between the two): the same refusal.
		if err == nil && len(ports) == 0 {
			err = e.store.DeletePortgroup(ctx, cur.UUID)
		}
		if len(ports) > 0 || errors.Is(err, store.ErrPortgroupNotEmpty) {
			return inputErr("Cannot complete the requested action because portgroup %s contains ports.", cur.UUID)
		}
		return err
	})
}
