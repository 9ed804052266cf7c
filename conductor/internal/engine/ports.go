package engine

// Port writes. Each one runs under the reservation of the port's node (and of the node a port moves to), so that a
// port never changes under a running operation, and applies Ironic's conductor rules (manager.py create_port,
// update_port, destroy_port): a port's hardware address is frozen while its node is active or has an instance,
// its connectivity fields while the node is neither enroll, manageable nor inspecting, and a port that carries a
// VIF is not deleted; maintenance lifts all three.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"

	"github.com/ferric-metal/ferric/conductor/internal/fsm"
	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// connectivityStates are the provision states in which a port's or portgroup's wiring may change (Ironic's
// allowed_update_states of update_port and update_portgroup).
var connectivityStates = []string{string(fsm.Enroll), string(fsm.Inspecting), string(fsm.InspectWait),
	string(fsm.Manageable)}

// vifKeys are the internal_info keys under which Ironic's network interfaces record a VIF, tenant last (the order
// of get_current_vif: a node boots into one network at a time).
var vifKeys = []string{"cleaning_vif_port_id", "provisioning_vif_port_id", "rescuing_vif_port_id",
	"inspection_vif_port_id", "servicing_vif_port_id", tenantVIFKey}

// tenantVIFKey is where an attached tenant VIF lives in a port's or portgroup's internal_info.
const tenantVIFKey = "tenant_vif_port_id"

// currentVIF returns the VIF a port or portgroup is bound to, "" when none.
func currentVIF(internal map[string]any) string {
	for _, k := range vifKeys {
		if v, ok := internal[k].(string); ok && v != "" {
			return v
		}
	}
	return ""
}

// withNodeReserved runs fn on the node reserved for this conductor (retrying a busy lock briefly, as API requests
// do) and releases it. Nothing of the node is saved: fn writes the node's ports or portgroups itself.
func (e *Engine) withNodeReserved(ctx context.Context, ident string, fn func(n *store.Node) error) error {
	n, err := e.reserve(ctx, ident, true)
	if err != nil {
		return err
	}
	defer e.release(n.UUID)
	return fn(n)
}

// clonePort deep-copies a port, so that a caller's change can be compared with what is stored.
func clonePort(p *store.Port) *store.Port {
	b, _ := json.Marshal(p) // a Port always encodes: maps of JSON values only
	var c store.Port
	_ = json.Unmarshal(b, &c)
	c.ID = p.ID
	c.Normalize()
	return &c
}

// inputErr is a 400 with Ironic's message.
func inputErr(format string, a ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, a...), ErrInvalidInput)
}

// conflictErr is a 409 with Ironic's message.
func conflictErr(format string, a ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, a...), ErrConflict)
}

// portgroupFor checks that a port may join portgroup ident on node n and returns the portgroup (nil for none).
func (e *Engine) portgroupFor(ctx context.Context, ident string, n *store.Node) (*store.Portgroup, error) {
	if ident == "" {
		return nil, nil
	}
	g, err := e.store.GetPortgroup(ctx, ident)
	if errors.Is(err, store.ErrNotFound) {
		return nil, inputErr("Portgroup %s could not be found.", ident)
	}
	if err != nil {
		return nil, err
	}
	if g.NodeUUID != n.UUID {
		return nil, inputErr("Port can not be added to a portgroup belonging to a different node.")
	}
	return g, nil
}

// checkPhysnet is Ironic's validate_port_physnet: every port of a portgroup is on one physical network (none
// counts as one), so a port joins only with the network of the portgroup's other ports.
func (e *Engine) checkPhysnet(ctx context.Context, p *store.Port, g *store.Portgroup) error {
	members, err := e.portgroupPorts(ctx, g.UUID)
	if err != nil {
		return err
	}
	nets := map[string]bool{}
	for _, m := range members {
		if m.UUID != p.UUID {
			nets[m.PhysicalNetwork] = true
		}
	}
	if len(nets) == 0 {
		return nil
	}
	show := func(n string) string {
		if n == "" {
			return "None"
		}
		return n
	}
	if len(nets) > 1 {
		var names []string
		for n := range nets {
			names = append(names, show(n))
		}
		sort.Strings(names)
		return conflictErr("Port group %s has member ports with inconsistent physical networks (%s). All ports in a "+
			"port group must have the same physical network.", g.UUID, strings.Join(names, ", "))
	}
	for n := range nets {
		if n != p.PhysicalNetwork {
			return conflictErr("Port with physical network %s cannot become a member of port group %s which has "+
				"ports in physical network %s.", show(p.PhysicalNetwork), g.UUID, show(n))
		}
	}
	return nil
}

// CreatePort stores a new port of node p.NodeUUID (a UUID or name, replaced by the UUID) under the node's
// reservation. A port joining a portgroup must be on the portgroup's node, and may not boot (pxe_enabled) from a
// portgroup without standalone ports.
func (e *Engine) CreatePort(ctx context.Context, p *store.Port) error {
	return e.withNodeReserved(ctx, p.NodeUUID, func(n *store.Node) error {
		p.NodeUUID = n.UUID
		g, err := e.portgroupFor(ctx, p.PortgroupUUID, n)
		if err != nil {
			return err
		}
		if g != nil {
			p.PortgroupUUID = g.UUID
			if err := e.checkPhysnet(ctx, p, g); err != nil {
				return err
			}
			if p.PXEEnabled && !g.StandalonePortsSupported {
				return conflictErr("Port group %s doesn't support standalone ports. This port cannot be created as a "+
					"member of that portgroup as the port's 'pxe_enabled' field was set to True.", g.UUID)
			}
		}
		p.CreatedAt = e.now().UTC()
		return e.store.CreatePort(ctx, p)
	})
}

// UpdatePort applies change to the port ident (UUID or name) under its node's reservation, and under the
// reservation of the node it moves to, if change moves it; it returns the port as stored.
func (e *Engine) UpdatePort(ctx context.Context, ident string, change func(p *store.Port) error) (*store.Port, error) {
	cur, err := e.store.GetPort(ctx, ident)
	if err != nil {
		return nil, err
	}
	var out *store.Port
	err = e.withNodeReserved(ctx, cur.NodeUUID, func(n *store.Node) error {
		old, err := e.store.GetPort(ctx, cur.UUID) // as of the lock
		if err != nil {
			return err
		}
		p := clonePort(old)
		if err := change(p); err != nil {
			return err
		}
		out = p
		target, err := e.targetNode(ctx, p.NodeUUID, n)
		if err != nil {
			return err
		}
		if target == n.UUID {
			return e.savePort(ctx, n, old, p)
		}
		// The port moves: the new node is locked as well, and its state rules apply.
		return e.withNodeReserved(ctx, target, func(to *store.Node) error {
			return e.savePort(ctx, to, old, p)
		})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// targetNode resolves the node (UUID or name) a port or portgroup is to belong to; n is its current node.
func (e *Engine) targetNode(ctx context.Context, ident string, n *store.Node) (string, error) {
	if ident == n.UUID || ident == n.Name {
		return n.UUID, nil
	}
	to, err := e.store.GetNode(ctx, ident)
	if errors.Is(err, store.ErrNotFound) {
		return "", inputErr("Node %s could not be found.", ident)
	}
	if err != nil {
		return "", err
	}
	return to.UUID, nil
}

// savePort checks Ironic's update_port rules for port p (changed from old) on node n, then writes it.
func (e *Engine) savePort(ctx context.Context, n *store.Node, old, p *store.Port) error {
	p.NodeUUID = n.UUID
	if n.ProvisionState == string(fsm.Inspecting) {
		return conflictErr("Cannot update port \"%s\" on \"%s\" while it is in state \"%s\".", p.UUID, n.UUID,
			n.ProvisionState)
	}
	g, err := e.portgroupFor(ctx, p.PortgroupUUID, n)
	if err != nil {
		return err
	}
	if g != nil {
		p.PortgroupUUID = g.UUID
		if p.PortgroupUUID != old.PortgroupUUID || p.PhysicalNetwork != old.PhysicalNetwork {
			if err := e.checkPhysnet(ctx, p, g); err != nil {
				return err
			}
		}
	}
	if p.Address != old.Address && !n.Maintenance &&
		(n.ProvisionState == string(fsm.Active) || n.InstanceUUID != "") {
		return conflictErr("Cannot update hardware address for port %s as node %s is active or has instance UUID "+
			"assigned", p.UUID, n.UUID)
	}
	wiring := p.PortgroupUUID != old.PortgroupUUID || p.PXEEnabled != old.PXEEnabled ||
		p.PhysicalNetwork != old.PhysicalNetwork || !reflect.DeepEqual(p.LocalLinkConnection, old.LocalLinkConnection)
	if wiring && !n.Maintenance && !contains(connectivityStates, n.ProvisionState) {
		return conflictErr("Port %s can not have any connectivity attributes (portgroup_id, pxe_enabled, "+
			"local_link_connection, physical_network) updated unless node %s is in a %s state or in maintenance "+
			"mode. The current state is %s.", p.UUID, n.UUID, strings.Join(connectivityStates, ", "), n.ProvisionState)
	}
	return e.store.UpdatePort(ctx, p)
}

// DeletePort removes the port ident (UUID or name) under its node's reservation; a port bound to a VIF is kept
// unless the node is in maintenance.
func (e *Engine) DeletePort(ctx context.Context, ident string) error {
	cur, err := e.store.GetPort(ctx, ident)
	if err != nil {
		return err
	}
	return e.withNodeReserved(ctx, cur.NodeUUID, func(n *store.Node) error {
		p, err := e.store.GetPort(ctx, cur.UUID)
		if err != nil {
			return err
		}
		if vif := currentVIF(p.InternalInfo); vif != "" && !n.Maintenance {
			return conflictErr("Cannot delete the port %s as it is bound to VIF %s for use.", p.UUID, vif)
		}
		return e.store.DeletePort(ctx, p.UUID)
	})
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}
