package driver

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ferric-metal/ferric/conductor/internal/fsm"
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

// AddInspectRescue registers the inspect and rescue interfaces this package implements: fake, agent (inspect; it
// refuses inspections until the conductor registers an AgentInspect with its store over it), no-inspect and
// no-rescue.
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

// AgentInspect is the agent (in-band) inspect interface, Ironic's "agent" inspect: Inspect boots the agent ramdisk
// through the node's boot interface with inspection on (the boot interface reads InspectionBoot) and leaves the
// node in "inspect wait"; the agent posts its inventory to POST /v1/continue_inspection, and the engine hands it
// to Continue, which records properties, ports and the inventory. Store nil refuses every inspection (a registry
// built without storage, as in unit tests of other interfaces).
type AgentInspect struct {
	Store    InventoryStore
	AddPorts string           // Ironic's [inspector]add_ports: all, pxe (default), none
	Now      func() time.Time // nil = time.Now
}

// Validate accepts every node: the interface is valid to configure (Metal3's baremetal-operator sets
// inspect_interface=agent on every node, even when it never inspects). The boot interface is checked when the
// inspection starts.
func (AgentInspect) Validate(context.Context, *store.Node) error { return nil }

// Inspect powers the node off, prepares the agent boot for inspection, powers the node on and waits for the
// agent's data. With disable_power_off the node is rebooted instead of switched off and on, as Ironic does.
func (a AgentInspect) Inspect(ctx context.Context, t *Task) (Outcome, error) {
	n := t.Node
	if a.Store == nil {
		return Done, fmt.Errorf("in-band inspection is not configured in this conductor; use the redfish " +
			"inspect interface or set inspect_interface")
	}
	if err := t.Boot.Validate(ctx, n); err != nil {
		return Done, fmt.Errorf("the boot interface %s cannot boot the agent for inspection: %w",
			n.Interfaces["boot"], err)
	}
	if !n.DisablePowerOff {
		if err := t.Power.SetPowerState(ctx, n, PowerOff, 0); err != nil {
			return Done, fmt.Errorf("power off before booting the agent: %w", err)
		}
	}
	if err := t.Boot.PrepareRamdisk(ctx, t); err != nil {
		return Done, fmt.Errorf("prepare the agent boot: %w", err)
	}
	target := PowerOn
	if n.DisablePowerOff {
		target = Rebooting
	}
	if err := t.Power.SetPowerState(ctx, n, target, 0); err != nil {
		return Done, fmt.Errorf("power on the agent: %w", err)
	}
	n.PowerState = PowerOn
	t.Logf(ctx, "agent booted for in-band inspection; waiting for its inventory at /v1/continue_inspection")
	return Wait, nil
}

// Continue records what the agent posted on the reserved node of t: it derives the properties (refusing an
// inventory without cpu count, memory or architecture, naming them), stores inventory and plugin data, and
// creates ports. The caller (the engine) cleans up the agent boot and moves the node on.
func (a AgentInspect) Continue(ctx context.Context, t *Task, inv, plugin map[string]any) error {
	if a.Store == nil {
		return fmt.Errorf("in-band inspection is not configured in this conductor")
	}
	props, missing, err := InventoryProperties(inv, plugin)
	if err != nil {
		return err
	}
	if len(missing) > 0 {
		return fmt.Errorf("Inventory for node %s is invalid: the agent reported no %s", t.Node.UUID,
			strings.Join(missing, ", "))
	}
	if err := ApplyInventory(ctx, a.Store, t, inv, plugin, props, a.AddPorts, a.Now); err != nil {
		return err
	}
	t.Logf(ctx, "inspected in-band: %v CPUs (%v), %v MiB memory, local_gb %v", props["cpus"], props["cpu_arch"],
		props["memory_mb"], props["local_gb"])
	return nil
}

// InspectionBoot tells a boot interface that the agent it prepares is booted for in-band inspection (the node is
// "inspecting" while PrepareRamdisk runs): it must tell the agent to post its inventory (Ironic's
// ipa-inspection-callback-url kernel parameter, the agent's --inspect flag or agent.json "inspect").
func InspectionBoot(n *store.Node) bool { return fsm.State(n.ProvisionState) == fsm.Inspecting }

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
