package driver

// The bios, firmware and raid interfaces every hardware type shares: the refusing no-* ones and fake-hardware's
// fake ones. The fake BIOS and firmware hold a small fixed set of values per node in memory, like a BMC would, so
// the API's caches and their updates are exercised without hardware.

import (
	"context"
	"fmt"
	"sync"

	"github.com/ferric-metal/ferric/conductor/internal/steps"
	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// Interface names of the bios, firmware and raid kinds.
const (
	BIOSFake     = "fake"
	BIOSNone     = "no-bios"
	FirmwareFake = "fake"
	FirmwareNone = "no-firmware"
	RAIDFake     = "fake"
	RAIDNone     = "no-raid"
)

// AddHardwareInterfaces registers the no-* and fake bios, firmware and raid interfaces and the agent raid
// interface (agentraid.go); cache (nil for none)
// receives the fake BIOS settings its steps change.
func AddHardwareInterfaces(r *Registry, cache BIOSCache) {
	r.AddBIOS(BIOSNone, NoBIOS{})
	fb := NewFakeBIOS()
	fb.Cache = cache
	r.AddBIOS(BIOSFake, fb)
	r.AddFirmware(FirmwareNone, NoFirmware{})
	r.AddFirmware(FirmwareFake, FakeFirmware{})
	r.AddRAID(RAIDNone, NoRAID{})
	r.AddRAID(RAIDFake, FakeRAID{})
	r.AddRAID(RAIDAgent, AgentRAID{})
}

// EnableFakeHardwareInterfaces offers fake-hardware's bios, firmware and raid interfaces as Ironic's
// fake-hardware does: fake (the default) and the no-* one of each kind.
func EnableFakeHardwareInterfaces(h *HardwareType) *HardwareType {
	h.Defaults["bios"], h.Enabled["bios"] = BIOSFake, []string{BIOSFake, BIOSNone}
	h.Defaults["firmware"], h.Enabled["firmware"] = FirmwareFake, []string{FirmwareFake, FirmwareNone}
	h.Defaults["raid"], h.Enabled["raid"] = RAIDFake, []string{RAIDFake, RAIDNone}
	return h
}

// NoBIOS is Ironic's no-bios: every BIOS operation is refused.
type NoBIOS struct{}

// Validate refuses: the node's BIOS cannot be read.
func (NoBIOS) Validate(_ context.Context, n *store.Node) error {
	return &UnsupportedError{Driver: n.Driver, Kind: "bios"}
}

// Settings refuses, like Validate.
func (x NoBIOS) Settings(ctx context.Context, n *store.Node) ([]store.BIOSSetting, error) {
	return nil, x.Validate(ctx, n)
}

// NoFirmware is Ironic's no-firmware: every firmware operation is refused.
type NoFirmware struct{}

// Validate refuses: the node's firmware cannot be read.
func (NoFirmware) Validate(_ context.Context, n *store.Node) error {
	return &UnsupportedError{Driver: n.Driver, Kind: "firmware"}
}

// Components refuses, like Validate.
func (x NoFirmware) Components(ctx context.Context, n *store.Node) ([]store.FirmwareComponent, error) {
	return nil, x.Validate(ctx, n)
}

// NoRAID is Ironic's no-raid: a target RAID configuration is refused.
type NoRAID struct{}

// Validate accepts every node: a node without RAID is valid (Ironic's no-raid validates too); only RAID verbs
// are refused.
func (NoRAID) Validate(context.Context, *store.Node) error { return nil }

// ValidateRAIDConfig refuses: no-raid cannot build a configuration.
func (NoRAID) ValidateRAIDConfig(_ context.Context, n *store.Node, _ map[string]any) error {
	return &UnsupportedError{Driver: n.Driver, Kind: "raid"}
}

// fakeBIOSDefaults is the fixed set of settings a fake node's BIOS starts with, with registry data as a Redfish
// attribute registry would give it.
func fakeBIOSDefaults() []store.BIOSSetting {
	s := func(v string) *string { return &v }
	i := func(v int) *int { return &v }
	b := func(v bool) *bool { return &v }
	return []store.BIOSSetting{
		{Name: "BootMode", Value: s("Uefi"), AttributeType: "Enumeration", AllowableValues: []string{"Bios", "Uefi"},
			ReadOnly: b(false), ResetRequired: b(true), Unique: b(false)},
		{Name: "NumCores", Value: s("8"), AttributeType: "Integer", LowerBound: i(1), UpperBound: i(64),
			ReadOnly: b(true), ResetRequired: b(true), Unique: b(false)},
		{Name: "ProcVirtualization", Value: s("Enabled"), AttributeType: "Enumeration",
			AllowableValues: []string{"Enabled", "Disabled"}, ReadOnly: b(false), ResetRequired: b(true), Unique: b(false)},
		{Name: "SerialNumber", Value: s("FAKE-0001"), AttributeType: "String", MinLength: i(1), MaxLength: i(16),
			ReadOnly: b(true), ResetRequired: b(false), Unique: b(true)},
	}
}

// FakeBIOS keeps each node's BIOS settings in memory, starting from a fixed set.
type FakeBIOS struct {
	// Cache, when set, receives the settings after each step (apply_configuration, factory_reset).
	Cache BIOSCache

	mu    sync.Mutex
	nodes map[string][]store.BIOSSetting
}

// NewFakeBIOS returns a fake bios interface.
func NewFakeBIOS() *FakeBIOS { return &FakeBIOS{nodes: map[string][]store.BIOSSetting{}} }

// Validate accepts every node.
func (f *FakeBIOS) Validate(context.Context, *store.Node) error { return nil }

// Settings returns the node's settings (the fixed set until changed with Set).
func (f *FakeBIOS) Settings(ctx context.Context, n *store.Node) ([]store.BIOSSetting, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	cur, ok := f.nodes[n.UUID]
	if !ok {
		cur = fakeBIOSDefaults()
		f.nodes[n.UUID] = cur
	}
	return append([]store.BIOSSetting(nil), cur...), nil
}

// Set changes the value of one of the node's settings (tests use it as an operator changing the BIOS by hand).
func (f *FakeBIOS) Set(n *store.Node, name, value string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	cur, ok := f.nodes[n.UUID]
	if !ok {
		cur = fakeBIOSDefaults()
	}
	for i := range cur {
		if cur[i].Name == name {
			cur[i].Value = &value
			f.nodes[n.UUID] = cur
			return nil
		}
	}
	return fmt.Errorf("fake BIOS has no setting %q: %w", name, ErrInvalid)
}

// FakeFirmware reports fixed versions of the BIOS and BMC firmware.
type FakeFirmware struct{}

// Validate accepts every node.
func (FakeFirmware) Validate(context.Context, *store.Node) error { return nil }

// Components returns the fake bios and bmc components.
func (FakeFirmware) Components(ctx context.Context, _ *store.Node) ([]store.FirmwareComponent, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return []store.FirmwareComponent{{Component: "bios", CurrentVersion: "1.0.0"},
		{Component: "bmc", CurrentVersion: "1.0.0"}}, nil
}

// FakeRAID accepts every target RAID configuration that passed the schema.
type FakeRAID struct{}

// Validate accepts every node.
func (FakeRAID) Validate(context.Context, *store.Node) error { return nil }

// ValidateRAIDConfig accepts every configuration (the API checked Ironic's schema already).
func (FakeRAID) ValidateRAIDConfig(context.Context, *store.Node, map[string]any) error { return nil }

// hwStep runs a bios or raid step of a fake-hardware node (offered by FakeDeploy under those interface names)
// through the node's bios or raid interface when it runs steps. A no-bios or no-raid node refuses the step; a
// node whose interface has no step implementation in this registry keeps the old do-nothing behaviour
// (handled = false).
func hwStep(ctx context.Context, t *Task, kind steps.Kind, s steps.Step) (out Outcome, handled bool, err error) {
	var iface any
	switch s.Interface {
	case "bios":
		iface = t.BIOS
	case "raid":
		iface = t.RAID
	default:
		return Done, false, nil
	}
	if p, ok := iface.(StepProvider); ok {
		out, err := p.ExecuteStep(ctx, t, kind, s)
		return out, true, err
	}
	if name := t.Node.Interfaces[s.Interface]; name == BIOSNone || name == RAIDNone {
		return Done, true, &UnsupportedError{Driver: t.Node.Driver, Kind: s.Interface}
	}
	return Done, false, nil
}

// BIOSCache stores what a BIOS step changed, so the API shows it at once (the engine's store).
type BIOSCache interface {
	SetBIOSSettings(ctx context.Context, nodeUUID string, settings []store.BIOSSetting) error
}

// Steps: FakeDeploy offers the bios steps already; FakeBIOS only runs them.
func (f *FakeBIOS) Steps(steps.Kind) []steps.Step { return nil }

// ExecuteStep runs apply_configuration (args.settings: a list of {name, value}; unknown names are refused) and
// factory_reset (back to the fixed set), then refreshes the cache when one is set, as Ironic's fake bios does.
func (f *FakeBIOS) ExecuteStep(ctx context.Context, t *Task, kind steps.Kind, s steps.Step) (Outcome, error) {
	switch s.Step {
	case "apply_configuration":
		list, _ := s.Args["settings"].([]any)
		if len(list) == 0 {
			return Done, fmt.Errorf("bios.apply_configuration needs args.settings, a list of {\"name\": ..., \"value\": ...}: %w", ErrInvalid)
		}
		for _, item := range list {
			m, _ := item.(map[string]any)
			name, _ := m["name"].(string)
			if err := f.Set(t.Node, name, fmt.Sprint(m["value"])); err != nil {
				return Done, err
			}
		}
	case "factory_reset":
		f.mu.Lock()
		delete(f.nodes, t.Node.UUID)
		f.mu.Unlock()
	default:
		return Done, fmt.Errorf("fake bios has no step %s: %w", s.Step, ErrInvalid)
	}
	if f.Cache != nil {
		settings, err := f.Settings(ctx, t.Node)
		if err != nil {
			return Done, err
		}
		if err := f.Cache.SetBIOSSettings(ctx, t.Node.UUID, settings); err != nil {
			return Done, fmt.Errorf("store the BIOS settings of node %s: %w", t.Node.UUID, err)
		}
	}
	t.Logf(ctx, "fake %s step %s done", kind, s.ID()) // the wording of FakeDeploy's other steps
	return Done, nil
}

// Steps: FakeDeploy offers the raid steps already; FakeRAID only runs them.
func (FakeRAID) Steps(steps.Kind) []steps.Step { return nil }

// ExecuteStep runs create_configuration (raid_config becomes the target's logical disks, filtered by
// create_root_volume / create_nonroot_volumes; a node without target_raid_config is refused, as Ironic) and
// delete_configuration (raid_config emptied).
func (FakeRAID) ExecuteStep(ctx context.Context, t *Task, kind steps.Kind, s steps.Step) (Outcome, error) {
	n := t.Node
	switch s.Step {
	case "create_configuration":
		disks, _ := n.TargetRAIDConfig["logical_disks"].([]any)
		if len(disks) == 0 {
			return Done, fmt.Errorf("Node %s has no target RAID configuration: set one with PUT /v1/nodes/%s/states/raid: %w",
				n.UUID, n.UUID, ErrInvalid)
		}
		root, nonroot := boolArg(s.Args, "create_root_volume"), boolArg(s.Args, "create_nonroot_volumes")
		var built []any
		for _, d := range disks {
			isRoot, _ := d.(map[string]any)["is_root_volume"].(bool)
			if (isRoot && root) || (!isRoot && nonroot) {
				built = append(built, d)
			}
		}
		n.RAIDConfig = map[string]any{"logical_disks": built}
	case "delete_configuration":
		n.RAIDConfig = map[string]any{}
	default:
		return Done, fmt.Errorf("fake raid has no step %s: %w", s.Step, ErrInvalid)
	}
	t.Logf(ctx, "fake %s step %s done", kind, s.ID())
	return Done, nil
}

// boolArg reads a step's boolean argument, true when absent (Ironic's defaults for the RAID steps).
func boolArg(args map[string]any, key string) bool {
	v, ok := args[key].(bool)
	return !ok || v
}
