package engine

// In-band inspection, the conductor's side of POST /v1/continue_inspection: find the node the agent's inventory
// belongs to (as Ironic's inspect_utils.lookup_node does), hand out its agent token as a lookup would, and record
// the inventory, properties and ports under the node's reservation before the node goes back to manageable.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"

	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/fsm"
	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// InspectionData is a continue_inspection request, already checked by the API (schema, size, MAC syntax).
type InspectionData struct {
	// NodeUUID is the ?node_uuid= the agent knows from its boot medium, "" when absent.
	NodeUUID string
	// MACs are the inventory's interface MACs, normalised; BMCAddresses its bmc_address and bmc_v6address.
	MACs         []string
	BMCAddresses []string
	Inventory    map[string]any
	// PluginData is the rest of the body (Ironic keeps everything but the inventory as plugin data).
	PluginData map[string]any
}

// InventoryContinuer is implemented by inspect interfaces that wait for an agent's inventory (AgentInspect).
type InventoryContinuer interface {
	Continue(ctx context.Context, t *driver.Task, inv, plugin map[string]any) error
}

// lookupBMCKey is the driver_internal_info key holding the BMC's addresses while the node inspects (Ironic's
// lookup_bmc_addresses): an agent reporting one of them finds the node even before it has ports.
const lookupBMCKey = "lookup_bmc_addresses"

// ContinueInspection accepts an agent's inventory. The node must be in "inspect wait" and be the one the data
// names: any other case (unknown MACs, a node in another state, MACs of one node with the UUID of another, a node
// with ports none of which the agent has) gets the same ErrLookupNotFound (404), so that nothing is learnt of
// nodes that are not inspecting. The token is handed out as a lookup does (once; "******" after); the data is then
// processed in the background under the node's reservation, as Ironic's conductor does.
func (e *Engine) ContinueInspection(ctx context.Context, d InspectionData) (*LookupResult, error) {
	found, err := e.inspectionNode(ctx, d)
	if err != nil {
		return nil, err
	}
	// Ironic: NodeLocked (409) while another operation holds the node; the agent retries.
	n, err := e.reserve(ctx, found.UUID, false)
	if err != nil {
		return nil, err
	}
	handedOff := false
	defer func() {
		if !handedOff {
			e.release(n.UUID)
		}
	}()
	if fsm.State(n.ProvisionState) != fsm.InspectWait {
		e.log.WithField("node", n.UUID).WithField("state", n.ProvisionState).Warn("inspection data refused: node left inspect wait")
		return nil, notFoundForInspection()
	}
	t, err := e.task(n)
	if err != nil {
		return nil, err
	}
	ic, ok := t.Inspect.(InventoryContinuer)
	if !ok {
		e.log.WithField("node", n.UUID).WithField("inspect_interface", n.Interfaces["inspect"]).
			Warn("inspection data refused: the node's inspect interface takes no agent data")
		return nil, notFoundForInspection()
	}
	res := &LookupResult{Token: "******"}
	if tok, _ := n.DriverInternalInfo["agent_secret_token"].(string); tok == "" {
		tok = NewToken()
		n.DriverInternalInfo["agent_secret_token"] = tok
		res.Token = tok
	}
	e.must(e.transition(n, fsm.EvResume, ""))
	if err := e.store.UpdateNode(ctx, n); err != nil {
		return nil, err
	}
	// The answer is built from a copy: the background work changes n while the API encodes the answer.
	res.Node = snapshot(n)
	handedOff = true
	e.log.WithField("node", n.UUID).Info("inspection data received from the agent")
	e.async(n, "continue inspection", func(ctx context.Context, n *store.Node) { e.finishInspection(ctx, t, ic, d) })
	return res, nil
}

// notFoundForInspection is the one refusal of continue_inspection (Ironic's bare NotFound).
func notFoundForInspection() error {
	return fmt.Errorf("Resource could not be found.: %w", ErrLookupNotFound)
}

// inspectionNode finds the node of an inspection as Ironic's lookup_node does, with one rule stricter: the
// node_uuid alone names a node only while that node has no ports (its first inspection); a node with ports must
// own one of the agent's MACs, so that knowing a UUID is not enough to overwrite a node's hardware facts.
func (e *Engine) inspectionNode(ctx context.Context, d InspectionData) (*store.Node, error) {
	log := e.log.WithField("macs", d.MACs).WithField("node_uuid", d.NodeUUID)
	var known *store.Node
	if d.NodeUUID != "" {
		n, err := e.store.GetNode(ctx, d.NodeUUID)
		if errors.Is(err, store.ErrNotFound) {
			log.Info("inspection data refused: no such node")
			return nil, notFoundForInspection()
		}
		if err != nil {
			return nil, err
		}
		known = n
	}
	node, err := e.nodeByMACs(ctx, d.MACs)
	if err != nil {
		return nil, err
	}
	if node != nil && known != nil && node.UUID != known.UUID {
		log.WithField("owner", node.UUID).Warn("inspection data refused: the MACs belong to another node")
		return nil, notFoundForInspection()
	}
	byBMC, err := e.nodesByBMC(ctx, d.BMCAddresses)
	if err != nil {
		return nil, err
	}
	switch {
	case node != nil || known != nil:
		want := known
		if node != nil {
			want = node
		}
		if len(byBMC) > 0 && !slices.Contains(byBMC, want.UUID) {
			log.WithField("bmc_nodes", byBMC).Warn("inspection data refused: the BMC address belongs to other nodes")
			return nil, notFoundForInspection()
		}
	case len(byBMC) == 1:
		if node, err = e.store.GetNode(ctx, byBMC[0]); err != nil {
			return nil, err
		}
	case len(byBMC) > 1:
		log.WithField("bmc_nodes", byBMC).Warn("inspection data refused: several inspecting nodes have this BMC address; create ports for them")
		return nil, notFoundForInspection()
	}
	if node == nil && known != nil {
		ports, err := e.store.ListPorts(ctx, store.PortFilter{NodeUUID: known.UUID}, store.ListOptions{Limit: 1})
		if err != nil {
			return nil, err
		}
		if len(ports) > 0 && !slices.Contains(byBMC, known.UUID) {
			log.Warn("inspection data refused: the node has ports and none of them is among the agent's MACs")
			return nil, notFoundForInspection()
		}
		node = known
	}
	if node == nil {
		// The usual answer to a stranger: info, not a warning (conflicts above are an operator's business).
		log.Info("inspection data refused: no node matches")
		return nil, notFoundForInspection()
	}
	if fsm.State(node.ProvisionState) != fsm.InspectWait {
		log.WithField("node", node.UUID).WithField("state", node.ProvisionState).Warn("inspection data refused: node is not in inspect wait")
		return nil, notFoundForInspection()
	}
	return node, nil
}

// nodeByMACs returns the node owning a port with one of macs, nil when none does. MACs of several nodes are a
// refusal (Ironic's DuplicateNodeOnLookup becomes NotFound).
func (e *Engine) nodeByMACs(ctx context.Context, macs []string) (*store.Node, error) {
	if len(macs) == 0 {
		return nil, nil
	}
	n, err := e.store.NodeByMACs(ctx, macs)
	switch {
	case err == nil:
		return n, nil
	case errors.Is(err, store.ErrNotFound):
		return nil, nil
	case errors.Is(err, store.ErrDuplicate):
		e.log.WithError(err).Warn("inspection data refused: the MACs belong to several nodes")
		return nil, notFoundForInspection()
	}
	return nil, err
}

// nodesByBMC lists the inspecting nodes whose BMC has one of addrs (recorded when their inspection started).
func (e *Engine) nodesByBMC(ctx context.Context, addrs []string) ([]string, error) {
	if len(addrs) == 0 {
		return nil, nil
	}
	nodes, err := e.store.ListNodes(ctx, store.NodeFilter{ProvisionState: string(fsm.InspectWait)}, store.ListOptions{})
	if err != nil {
		return nil, err
	}
	var out []string
	for _, n := range nodes {
		list, _ := n.DriverInternalInfo[lookupBMCKey].([]any)
		for _, a := range list {
			if s, _ := a.(string); s != "" && slices.Contains(addrs, s) {
				out = append(out, n.UUID)
				break
			}
		}
	}
	return out, nil
}

// UsefulBMCAddress tells whether an inventory's bmc_address can identify a node: IPA reports 0.0.0.0 and :: when
// it cannot read the BMC, and those match every node's nothing.
func UsefulBMCAddress(a string) bool {
	ip := net.ParseIP(a)
	return ip != nil && !ip.IsUnspecified()
}

// finishInspection processes the agent's data on the reserved node (in "inspecting"): Ironic's ramdisk-error hook
// (an agent that could not read its hardware fails the inspection with its message), the inspect interface's
// processing, then the agent boot is cleaned up and the node powered off (unless --inspect-power-off=false or
// disable_power_off) before it rests in manageable. Any failure lands in "inspect failed" through failTask, which
// tears the agent boot down.
func (e *Engine) finishInspection(ctx context.Context, t *driver.Task, ic InventoryContinuer, d InspectionData) {
	n := t.Node
	if msg, _ := d.PluginData["error"].(string); msg != "" {
		e.failTask(ctx, t, fmt.Errorf("Ramdisk reported error: %s", msg))
		return
	}
	if err := ic.Continue(ctx, t, d.Inventory, d.PluginData); err != nil {
		e.failTask(ctx, t, fmt.Errorf("Failed to finish inspection: %v", err))
		return
	}
	// As Ironic: firmware components are cached again while the node is still powered on (some BMCs report NIC
	// firmware only then).
	e.cacheFirmware(ctx, t)
	if err := t.Boot.CleanUpRamdisk(ctx, t); err != nil {
		e.failTask(ctx, t, fmt.Errorf("Failed to finish inspection: could not clean up the agent boot: %v", err))
		return
	}
	if e.InspectionPowersOff(n) {
		if err := t.Power.SetPowerState(ctx, n, driver.PowerOff, 0); err != nil {
			e.failTask(ctx, t, fmt.Errorf("Failed to finish inspection: could not power the node off: %v", err))
			return
		}
	}
	e.refreshPower(ctx, t)
	forgetAgent(n)
	delete(n.DriverInternalInfo, lookupBMCKey)
	finish := e.now().UTC()
	n.InspectionFinishedAt = &finish
	e.must(e.transition(n, fsm.EvDone, ""))
	t.Log.WithField("to", n.ProvisionState).Info("in-band inspection finished")
}

// InspectionPowersOff tells whether finishing an in-band inspection of n powers it off (Ironic's
// [inspector]power_off, not for nodes with disable_power_off). The continue_inspection answer tells the agent so
// (ferric_inspection_power_off), and Ferric's agent then powers off at once: the power-off that follows finds
// the machine off instead of waiting out a graceful shutdown the ramdisk does not act on.
func (e *Engine) InspectionPowersOff(n *store.Node) bool {
	return !e.cfg.InspectKeepPowerOn && !n.DisablePowerOff
}

// snapshot copies what a lookup-shaped answer shows of n (uuid, properties, instance_info, driver_internal_info).
func snapshot(n *store.Node) *store.Node {
	c := &store.Node{UUID: n.UUID, Name: n.Name, ProvisionState: n.ProvisionState, DisablePowerOff: n.DisablePowerOff}
	c.Properties, c.InstanceInfo, c.DriverInternalInfo = cloneMap(n.Properties), cloneMap(n.InstanceInfo),
		cloneMap(n.DriverInternalInfo)
	return c
}

// cloneMap deep-copies a JSON object (node fields hold only JSON values).
func cloneMap(m map[string]any) map[string]any {
	out := map[string]any{}
	if b, err := json.Marshal(m); err == nil {
		json.Unmarshal(b, &out)
	}
	return out
}
