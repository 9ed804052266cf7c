package driver

import (
	"context"
	"fmt"

	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// Interface names of inspect and rescue shared by every hardware type.
const (
	InspectFake  = "fake"
	InspectAgent = "agent"
	InspectNone  = "no-inspect"
	RescueFake   = "fake"
	RescueNone   = "no-rescue"
)

// AddInspectRescue registers the inspect and rescue interfaces this package implements: fake, agent (inspect;
// refuses until in-band inspection is wired), no-inspect and no-rescue.
func AddInspectRescue(r *Registry) {
	r.AddInspect(InspectFake, FakeInspect{})
	r.AddInspect(InspectAgent, AgentInspect{})
	r.AddInspect(InspectNone, NoInspect{})
	r.AddRescue(RescueFake, FakeRescue{})
	r.AddRescue(RescueNone, NoRescue{})
	r.AddRescue(RescueAgent, AgentRescue{})
}

// NoInspect is Ironic's no-inspect: every inspection is refused with UnsupportedDriverExtension's wording.
type NoInspect struct{}

// Validate refuses: the node cannot be inspected.
func (NoInspect) Validate(_ context.Context, n *store.Node) error {
	return &UnsupportedError{Driver: n.Driver, Kind: "inspect"}
}

// Inspect refuses, like Validate.
func (i NoInspect) Inspect(ctx context.Context, t *Task) (Outcome, error) {
	return Done, i.Validate(ctx, t.Node)
}

// ErrAgentInspectUnavailable is the refusal of the agent inspect interface until in-band inspection is wired.
var ErrAgentInspectUnavailable = fmt.Errorf("in-band inspection is not available yet in this conductor; " +
	"use the redfish inspect interface or set inspect_interface")

// AgentInspect is the agent (in-band) inspect interface as far as this conductor has it: nodes may be created
// and validated with it (Metal3's baremetal-operator sets inspect_interface=agent on every node, even when it
// never inspects), but an inspection is refused until the in-band collector is wired: a verb does its work or
// refuses, it never pretends.
type AgentInspect struct{}

// Validate accepts every node: the interface is valid to configure.
func (AgentInspect) Validate(context.Context, *store.Node) error { return nil }

// Inspect refuses with a message naming the way out.
func (AgentInspect) Inspect(context.Context, *Task) (Outcome, error) {
	return Done, ErrAgentInspectUnavailable
}

// FakeInspect is Ironic's fake inspect interface: inspection succeeds at once and changes nothing, which is what
// a fake-hardware node (no hardware behind it) can honestly do.
type FakeInspect struct{}

// Validate accepts every node.
func (FakeInspect) Validate(context.Context, *store.Node) error { return nil }

// Inspect finishes at once.
func (FakeInspect) Inspect(ctx context.Context, _ *Task) (Outcome, error) { return Done, ctx.Err() }

// NoRescue is Ironic's no-rescue: rescue and unrescue are refused.
type NoRescue struct{}

// Validate refuses: the node cannot be rescued.
func (NoRescue) Validate(_ context.Context, n *store.Node) error {
	return &UnsupportedError{Driver: n.Driver, Kind: "rescue"}
}

// Rescue refuses, like Validate.
func (x NoRescue) Rescue(ctx context.Context, t *Task) (Outcome, error) {
	return Done, x.Validate(ctx, t.Node)
}

// Unrescue refuses, like Validate.
func (x NoRescue) Unrescue(ctx context.Context, t *Task) (Outcome, error) {
	return Done, x.Validate(ctx, t.Node)
}

// FakeRescue is Ironic's fake rescue interface: rescue and unrescue finish at once on a fake-hardware node.
type FakeRescue struct{}

// Validate accepts every node.
func (FakeRescue) Validate(context.Context, *store.Node) error { return nil }

// Rescue finishes at once.
func (FakeRescue) Rescue(ctx context.Context, _ *Task) (Outcome, error) { return Done, ctx.Err() }

// Unrescue finishes at once.
func (FakeRescue) Unrescue(ctx context.Context, _ *Task) (Outcome, error) { return Done, ctx.Err() }
