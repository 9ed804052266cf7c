package engine

// VIFs (virtual network interfaces, API 1.28) with the noop network interface. Ironic's own noop interface
// accepts and forgets them; Ferric records them as Ironic's non-Neutron interfaces do (VIFPortIDMixin and the
// free-port choice of network/common.py): in internal_info.tenant_vif_port_id of one free port or portgroup of
// the node, so that standalone users can keep their VIF bookkeeping on the node. Nothing outside the store
// changes.

import (
	"context"
	"sort"

	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// noopNetwork is the only network interface whose VIFs Ferric keeps.
const noopNetwork = "noop"

// vifTarget is a port or a portgroup a VIF may be attached to.
type vifTarget struct {
	port  *store.Port
	group *store.Portgroup
}

func (t vifTarget) internal() map[string]any {
	if t.port != nil {
		return t.port.InternalInfo
	}
	return t.group.InternalInfo
}

// networkFor checks that the node's network interface keeps VIFs.
func networkFor(n *store.Node) error {
	if iface := n.Interfaces["network"]; iface != "" && iface != noopNetwork {
		return inputErr("Node %s uses the %s network interface, which cannot attach VIFs; set network_interface "+
			"to noop", n.UUID, iface)
	}
	return nil
}

// nodeNet returns a node's ports and portgroups in creation order.
func (e *Engine) nodeNet(ctx context.Context, uuid string) ([]*store.Port, []*store.Portgroup, error) {
	ports, err := e.store.ListPorts(ctx, store.PortFilter{NodeUUID: uuid}, store.ListOptions{})
	if err != nil {
		return nil, nil, err
	}
	groups, err := e.store.ListPortgroups(ctx, store.PortgroupFilter{NodeUUID: uuid}, store.ListOptions{})
	return ports, groups, err
}

// VIFs lists the IDs of the VIFs attached to node ident: those on ports first, then on portgroups (Ironic's
// vif_list order).
func (e *Engine) VIFs(ctx context.Context, ident string) ([]string, error) {
	n, err := e.store.GetNode(ctx, ident)
	if err != nil {
		return nil, err
	}
	if err := networkFor(n); err != nil {
		return nil, err
	}
	ports, groups, err := e.nodeNet(ctx, n.UUID)
	if err != nil {
		return nil, err
	}
	out := []string{}
	for _, p := range ports {
		if v, _ := p.InternalInfo[tenantVIFKey].(string); v != "" {
			out = append(out, v)
		}
	}
	for _, g := range groups {
		if v, _ := g.InternalInfo[tenantVIFKey].(string); v != "" {
			out = append(out, v)
		}
	}
	return out, nil
}

// VIFRequest is a VIF attachment: the VIF's ID and, optionally, the port or portgroup to use (API 1.67).
type VIFRequest struct {
	ID            string
	PortUUID      string
	PortgroupUUID string
}

// AttachVIF records VIF req.ID on the first free port-like object of node ident, under the node's reservation:
// portgroups before ports, PXE-enabled ports before the others, in creation order otherwise.
func (e *Engine) AttachVIF(ctx context.Context, ident string, req VIFRequest) error {
	return e.withNodeReserved(ctx, ident, func(n *store.Node) error {
		if err := networkFor(n); err != nil {
			return err
		}
		ports, groups, err := e.nodeNet(ctx, n.UUID)
		if err != nil {
			return err
		}
		chosen, err := chooseTarget(ports, groups, req)
		if err != nil {
			return err
		}
		chosen.internal()[tenantVIFKey] = req.ID
		if chosen.port != nil {
			return e.store.UpdatePort(ctx, chosen.port)
		}
		return e.store.UpdatePortgroup(ctx, chosen.group)
	})
}

// chooseTarget picks the port or portgroup VIF req.ID goes to (Ironic's get_free_port_like_object without
// physical networks): portgroups first, then PXE-enabled ports, in creation order otherwise.
func chooseTarget(ports []*store.Port, groups []*store.Portgroup, req VIFRequest) (vifTarget, error) {
	free, err := freeTargets(ports, groups, req)
	if err != nil {
		return vifTarget{}, err
	}
	if len(free) == 0 {
		return vifTarget{}, inputErr("Unable to attach VIF %s, not enough free physical ports.", req.ID)
	}
	rank := func(t vifTarget) int {
		if t.group != nil {
			return 2
		}
		if t.port.PXEEnabled {
			return 1
		}
		return 0
	}
	// Stable, as Python's sorted: equal ranks keep the order in which freeTargets found them.
	sort.SliceStable(free, func(i, j int) bool { return rank(free[i]) > rank(free[j]) })
	return free[0], nil
}

// attachedTo returns the tenant VIF of a port-like object and refuses when it is vif already.
func attachedTo(internal map[string]any, vif, kind, uuid string) (bool, error) {
	cur, _ := internal[tenantVIFKey].(string)
	if cur == vif {
		return false, conflictErr("Unable to attach VIF because VIF %s is already attached to Ironic %s %s", vif,
			kind, uuid)
	}
	return cur != "", nil
}

// freeTargets is Ironic's _get_free_portgroups_and_ports without physical networks (no Neutron): the ports and
// portgroups VIF req.ID may go to, or an error when it is attached to one of them already.
func freeTargets(ports []*store.Port, groups []*store.Portgroup, req VIFRequest) ([]vifTarget, error) {
	var free []vifTarget
	byGroup := map[string][]vifTarget{}
	busyGroup := map[string]bool{} // portgroups with a VIF on one of their ports: their ports are used instead
	for _, p := range ports {
		if (req.PortUUID != "" && req.PortUUID != p.UUID) || !portUsable(p) {
			continue
		}
		busy, err := attachedTo(p.InternalInfo, req.ID, "Port", p.UUID)
		if err != nil {
			return nil, err
		}
		if busy {
			busyGroup[p.PortgroupUUID] = true
			continue
		}
		if p.PortgroupUUID == "" && req.PortgroupUUID == "" {
			free = append(free, vifTarget{port: p})
		} else {
			byGroup[p.PortgroupUUID] = append(byGroup[p.PortgroupUUID], vifTarget{port: p})
		}
	}
	if req.PortUUID != "" {
		return free, nil
	}
	for _, g := range groups {
		if req.PortgroupUUID != "" && req.PortgroupUUID != g.UUID {
			continue
		}
		busy, err := attachedTo(g.InternalInfo, req.ID, "Portgroup", g.UUID)
		if err != nil {
			return nil, err
		}
		switch {
		case busy:
		case busyGroup[g.UUID]:
			if req.PortgroupUUID == "" {
				free = append(free, byGroup[g.UUID]...)
			}
		case len(byGroup[g.UUID]) > 0: // an empty portgroup carries nothing
			free = append(free, vifTarget{group: g})
		}
	}
	return free, nil
}

// portUsable is Ironic's validate_port_info for non-Neutron interfaces: a Smart NIC port needs port_id and
// hostname in its local_link_connection, and only a Smart NIC port may have both; InfiniBand ports (extra
// client-id) always qualify.
func portUsable(p *store.Port) bool {
	if id, _ := p.Extra["client-id"].(string); id != "" {
		return true
	}
	_, hasPort := p.LocalLinkConnection["port_id"].(string)
	_, hasHost := p.LocalLinkConnection["hostname"].(string)
	return p.IsSmartNIC == (hasPort && hasHost)
}

// DetachVIF removes VIF id from the port or portgroup of node ident that carries it (portgroups searched first),
// with the legacy extra.vif_port_id, under the node's reservation.
func (e *Engine) DetachVIF(ctx context.Context, ident, id string) error {
	return e.withNodeReserved(ctx, ident, func(n *store.Node) error {
		if err := networkFor(n); err != nil {
			return err
		}
		ports, groups, err := e.nodeNet(ctx, n.UUID)
		if err != nil {
			return err
		}
		for _, g := range groups {
			if v, _ := g.InternalInfo[tenantVIFKey].(string); v == id {
				delete(g.InternalInfo, tenantVIFKey)
				delete(g.Extra, "vif_port_id")
				return e.store.UpdatePortgroup(ctx, g)
			}
		}
		for _, p := range ports {
			if v, _ := p.InternalInfo[tenantVIFKey].(string); v == id {
				delete(p.InternalInfo, tenantVIFKey)
				delete(p.Extra, "vif_port_id")
				return e.store.UpdatePort(ctx, p)
			}
		}
		return inputErr("Unable to detach VIF %s from node %s because it is not attached to it.", id, n.UUID)
	})
}
