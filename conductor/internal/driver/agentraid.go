package driver

import (
	"context"
	"fmt"

	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// RAIDAgent is the name of Ironic's in-band RAID interface.
const RAIDAgent = "agent"

// AgentRAID is Ironic's `agent` raid interface as far as Ferric can honour it. Ironic's builds software RAID
// through IPA's hardware managers (mdadm in the ramdisk); Ferric's agent has no RAID code, so this interface accepts
// nodes (client code such as gophercloud's acceptance tests enrolls ipmi nodes with raid_interface agent, and a
// node without RAID is valid) and refuses every target RAID configuration at PUT /states/raid, naming what builds
// RAID instead, rather than accepting a configuration no step would ever build.
type AgentRAID struct{}

// Validate accepts every node: only RAID verbs are refused.
func (AgentRAID) Validate(context.Context, *store.Node) error { return nil }

// ValidateRAIDConfig refuses: Ferric's agent builds no RAID.
func (AgentRAID) ValidateRAIDConfig(_ context.Context, n *store.Node, _ map[string]any) error {
	return fmt.Errorf("raid_interface agent: Ferric's agent does not build software RAID (Ironic's builds it with mdadm in "+
		"its ramdisk); build RAID with raid_interface redfish on a BMC with a RAID controller, or set raid_interface to "+
		"no-raid and build RAID before enrolling: %w", &UnsupportedError{Driver: n.Driver, Kind: "raid"})
}

// EnableAgentRAID offers the agent raid interface beside the hardware type's own (Ironic's ipmi and redfish types
// support it), keeping the type's default.
func EnableAgentRAID(h *HardwareType) *HardwareType {
	for _, e := range h.Enabled["raid"] {
		if e == RAIDAgent {
			return h
		}
	}
	h.Enabled["raid"] = append(h.Enabled["raid"], RAIDAgent)
	return h
}
