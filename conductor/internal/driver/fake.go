package driver

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/ferric-metal/ferric/conductor/internal/steps"
	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// FakeHardware returns the fake-hardware type: every interface "fake" (network and storage "noop"), plus the
// given extra deploy and boot interfaces. Inspect offers fake, agent and no-inspect (agent because Metal3 sets
// it on every node); rescue offers fake and no-rescue (no agent rescue exists yet); storage offers fake too. As
// in Ironic, a node may also set any interface another hardware type enables (AnyInterface).
func FakeHardware(extraDeploy, extraBoot []string) *HardwareType {
	h := &HardwareType{Name: "fake-hardware", Enabled: map[string][]string{}, Defaults: map[string]string{}, AnyInterface: true}
	for _, k := range Kinds() {
		def := "fake"
		switch k {
		case "network", "storage":
			def = "noop"
		}
		h.Defaults[k] = def
		h.Enabled[k] = []string{def}
	}
	h.Enabled["inspect"] = []string{InspectFake, InspectAgent, InspectNone}
	h.Enabled["rescue"] = []string{RescueFake, RescueNone}
	// Storage: noop stays the default (Ironic's enabled_storage_interfaces has no fake); fake may be chosen.
	h.Enabled["storage"] = []string{StorageNoop, StorageFake}
	h.Enabled["deploy"] = append(h.Enabled["deploy"], extraDeploy...)
	h.Enabled["boot"] = append(h.Enabled["boot"], extraBoot...)
	return h
}

// NewHardwareType is the skeleton of a real hardware type: power and management name (the type's own protocol),
// network and storage noop, every other kind its no-* interface only, and deploy and boot as given (default
// first). The type's constructor then adds what else it offers (inspection, bios, raid...).
func NewHardwareType(name string, deploy, boot []string) *HardwareType {
	h := &HardwareType{Name: name, Enabled: map[string][]string{}, Defaults: map[string]string{}}
	for _, k := range Kinds() {
		def := "no-" + k
		switch k {
		case "network", "storage":
			def = "noop"
		case "power", "management":
			def = name
		}
		h.Defaults[k] = def
		h.Enabled[k] = []string{def}
	}
	h.Defaults["deploy"], h.Enabled["deploy"] = deploy[0], deploy
	h.Defaults["boot"], h.Enabled["boot"] = boot[0], boot
	return h
}

// FakePower keeps each node's power state in memory, as a BMC would.
type FakePower struct {
	mu    sync.Mutex
	state map[string]string
}

// NewFakePower returns a fake power interface; every node starts powered off.
func NewFakePower() *FakePower { return &FakePower{state: map[string]string{}} }

// Validate accepts every node.
func (f *FakePower) Validate(context.Context, *store.Node) error { return nil }

// PowerState returns the node's remembered state.
func (f *FakePower) PowerState(_ context.Context, n *store.Node) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s, ok := f.state[n.UUID]; ok {
		return s, nil
	}
	return PowerOff, nil
}

// SetPowerState records the new state; reboots end powered on, soft power off ends off.
func (f *FakePower) SetPowerState(ctx context.Context, n *store.Node, target string, _ time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	switch target {
	case PowerOn, Rebooting, SoftRebooting:
		f.state[n.UUID] = PowerOn
	case PowerOff, SoftPowerOff:
		f.state[n.UUID] = PowerOff
	default:
		return fmt.Errorf("power target %q is not supported: %w", target, ErrInvalid)
	}
	return nil
}

// FakeManagement remembers each node's boot device.
type FakeManagement struct {
	mu  sync.Mutex
	dev map[string]BootDevice
}

// NewFakeManagement returns a fake management interface.
func NewFakeManagement() *FakeManagement { return &FakeManagement{dev: map[string]BootDevice{}} }

// Validate accepts every node.
func (f *FakeManagement) Validate(context.Context, *store.Node) error { return nil }

// SupportedBootDevices lists the devices the fake accepts.
func (f *FakeManagement) SupportedBootDevices(context.Context, *store.Node) ([]string, error) {
	return []string{BootPXE, BootDisk, BootCDROM, BootBIOS, BootSafe}, nil
}

// BootDevice returns the remembered device (disk by default).
func (f *FakeManagement) BootDevice(_ context.Context, n *store.Node) (BootDevice, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if d, ok := f.dev[n.UUID]; ok {
		return d, nil
	}
	return BootDevice{Device: BootDisk, Persistent: true}, nil
}

// SetBootDevice records the device.
func (f *FakeManagement) SetBootDevice(ctx context.Context, n *store.Node, device string, persistent bool) error {
	supported, _ := f.SupportedBootDevices(ctx, n)
	for _, s := range supported {
		if s == device {
			f.mu.Lock()
			f.dev[n.UUID] = BootDevice{Device: device, Persistent: persistent}
			f.mu.Unlock()
			return nil
		}
	}
	return fmt.Errorf("boot device %q is not supported; use one of %v: %w", device, supported, ErrInvalid)
}

// FakeBoot records what it prepared for each node.
type FakeBoot struct {
	mu       sync.Mutex
	prepared map[string]string // node -> "ramdisk" | "instance"
}

// NewFakeBoot returns a fake boot interface.
func NewFakeBoot() *FakeBoot { return &FakeBoot{prepared: map[string]string{}} }

// Validate accepts every node.
func (f *FakeBoot) Validate(context.Context, *store.Node) error { return nil }

func (f *FakeBoot) set(n *store.Node, what string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if what == "" {
		delete(f.prepared, n.UUID)
		return
	}
	f.prepared[n.UUID] = what
}

// Prepared returns what was last prepared for the node ("" when nothing).
func (f *FakeBoot) Prepared(uuid string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.prepared[uuid]
}

// PrepareRamdisk records a ramdisk boot.
func (f *FakeBoot) PrepareRamdisk(_ context.Context, t *Task) error {
	f.set(t.Node, "ramdisk")
	return nil
}

// CleanUpRamdisk forgets the ramdisk boot.
func (f *FakeBoot) CleanUpRamdisk(_ context.Context, t *Task) error { f.set(t.Node, ""); return nil }

// PrepareInstance records an instance boot.
func (f *FakeBoot) PrepareInstance(_ context.Context, t *Task) error {
	f.set(t.Node, "instance")
	return nil
}

// CleanUpInstance forgets the instance boot.
func (f *FakeBoot) CleanUpInstance(_ context.Context, t *Task) error { f.set(t.Node, ""); return nil }

// FakeDeploy completes deploys and cleans at once: it prepares the instance boot and powers the node on.
type FakeDeploy struct{}

// Validate accepts every node.
func (FakeDeploy) Validate(context.Context, *store.Node) error { return nil }

// Deploy boots the "instance" at once.
func (FakeDeploy) Deploy(ctx context.Context, t *Task) (Outcome, error) {
	if err := t.Boot.PrepareInstance(ctx, t); err != nil {
		return Done, err
	}
	if err := t.Management.SetBootDevice(ctx, t.Node, BootDisk, true); err != nil {
		return Done, err
	}
	return Done, t.Power.SetPowerState(ctx, t.Node, PowerOn, 0)
}

// TearDown powers the node off and forgets the instance.
func (FakeDeploy) TearDown(ctx context.Context, t *Task) error {
	if err := t.Power.SetPowerState(ctx, t.Node, PowerOff, 0); err != nil {
		return err
	}
	return t.Boot.CleanUpInstance(ctx, t)
}

// Clean finishes at once.
func (FakeDeploy) Clean(context.Context, *Task) (Outcome, error) { return Done, nil }

// Steps offers what Ironic's fake interfaces offer: the core deploy step (deploy.deploy, priority 100), and the
// steps of the fake BIOS and RAID interfaces (priority 0: only when asked for). Ferric has no separate bios and
// raid interfaces, so the fake deploy interface offers them under those interface names; they do nothing.
func (FakeDeploy) Steps(kind steps.Kind) []steps.Step {
	settings := map[string]steps.ArgInfo{"settings": {Required: true, Description: "a list of BIOS settings to apply"}}
	bios := []steps.Step{{Interface: "bios", Step: "apply_configuration", ArgsInfo: settings}, {Interface: "bios", Step: "factory_reset"}}
	switch kind {
	case steps.Deploy:
		return append([]steps.Step{{Interface: "deploy", Step: "deploy", Priority: 100}}, bios...)
	case steps.Clean, steps.Service:
		raid := map[string]steps.ArgInfo{"create_root_volume": {Description: "create the root volume (default true)"},
			"create_nonroot_volumes": {Description: "create the other volumes (default true)"},
			"delete_existing":        {Description: "delete the existing configuration first (default true)"}}
		return append(bios, steps.Step{Interface: "raid", Step: "create_configuration", ArgsInfo: raid},
			steps.Step{Interface: "raid", Step: "delete_configuration"})
	}
	return nil
}

// ExecuteStep runs the core deploy step as Deploy does; the fake BIOS and RAID steps finish at once.
func (f FakeDeploy) ExecuteStep(ctx context.Context, t *Task, kind steps.Kind, s steps.Step) (Outcome, error) {
	if s.ID() == steps.Core {
		return f.Deploy(ctx, t)
	}
	if out, handled, err := hwStep(ctx, t, kind, s); handled { // the node's bios/raid interface (fake_bios.go)
		return out, err
	}
	t.Logf(ctx, "fake %s step %s done (fake-hardware changes nothing)", kind, s.ID())
	return Done, nil
}
