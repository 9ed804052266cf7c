// Package driver owns the hardware abstraction of the conductor: the capability interfaces (Power, Management,
// Boot, Deploy) a node's interfaces implement, hardware types with their enabled and default interfaces, and an
// explicit Registry built by the conductor at start (no init() registration). The fake-hardware implementations
// live here too; real drivers live in sub-packages.
package driver

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/ferric-metal/ferric/conductor/internal/steps"
	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// Power states as Ironic spells them.
const (
	PowerOn       = "power on"
	PowerOff      = "power off"
	Rebooting     = "rebooting"
	SoftRebooting = "soft rebooting"
	SoftPowerOff  = "soft power off"
)

// Boot devices.
const (
	BootDisk  = "disk"
	BootPXE   = "pxe"
	BootCDROM = "cdrom"
	BootBIOS  = "bios"
	BootSafe  = "safe"
)

// Keys in driver_internal_info about the agent's token that the engine sets and an agent boot forgets:
// KeyTokenIssuedAt is when lookup handed the token out (RFC 3339), KeyTokenReboots how many agent boots the
// engine started because that token went unused.
const (
	KeyTokenIssuedAt = "agent_token_issued_at"
	KeyTokenReboots  = "agent_token_lost_reboots"
)

// IntValue reads a count stored in driver_internal_info: an int before the node is saved, a float64 after its
// JSON round trip; false for anything else, or a fraction.
func IntValue(v any) (int, bool) {
	switch x := v.(type) {
	case int:
		return x, true
	case int64:
		return int(x), true
	case float64:
		return int(x), x == float64(int(x))
	}
	return 0, false
}

// ErrInvalid marks a driver-side validation failure caused by the node's configuration (HTTP 400).
var ErrInvalid = errors.New("invalid node configuration")

// Kinds lists the interface kinds of a node, in Ironic's order of validate output.
func Kinds() []string {
	return []string{"bios", "boot", "console", "deploy", "firmware", "inspect", "management", "network", "power",
		"raid", "rescue", "storage", "vendor"}
}

// Task is what an interface gets to act on a node: the node (already reserved by the caller), the node's other
// interfaces, a logger, and Save to persist changes to the node mid-operation.
type Task struct {
	Node       *store.Node
	Power      Power
	Management Management
	Boot       Boot
	Deploy     Deploy
	Inspect    Inspect
	Rescue     Rescue
	BIOS       BIOS
	Firmware   Firmware
	RAID       RAID
	Storage    Storage
	Log        *logrus.Entry
	Save       func(ctx context.Context) error
	// DeployLog appends lines to the node's kept deploy log (the run in driver_internal_info.deploy_run);
	// nil when the engine keeps no log.
	DeployLog func(ctx context.Context, source string, lines ...string)
	// ConfigDrive returns the config drive of the node's deploy as the provision request gave it (Ironic's
	// string form or the dict form), nil when the deploy has none. It is kept apart from the node (never in
	// instance_info, never in an API response) and only until the deploy ends. Nil when the engine keeps none.
	ConfigDrive func(ctx context.Context) (any, error)
}

// Logf writes a conductor line to the deploy log and the conductor log.
func (t *Task) Logf(ctx context.Context, format string, a ...any) {
	msg := fmt.Sprintf(format, a...)
	t.Log.Info(msg)
	if t.DeployLog != nil {
		t.DeployLog(ctx, "conductor", msg)
	}
}

// Outcome is what a deploy or clean operation reports when it returns without error.
type Outcome int

const (
	// Done means the operation finished.
	Done Outcome = iota
	// Wait means the operation continues asynchronously (the agent calls back); the node waits in "wait call-back".
	Wait
)

// Power switches a node on and off.
type Power interface {
	Validate(ctx context.Context, n *store.Node) error
	PowerState(ctx context.Context, n *store.Node) (string, error)
	// SetPowerState moves the node to target (PowerOn, PowerOff, Rebooting, SoftRebooting, SoftPowerOff);
	// timeout bounds soft operations (0 = the driver's default).
	SetPowerState(ctx context.Context, n *store.Node, target string, timeout time.Duration) error
}

// BootDevice is the device a node boots from next.
type BootDevice struct {
	Device     string `json:"boot_device"`
	Persistent bool   `json:"persistent"`
}

// Management sets the boot device.
type Management interface {
	Validate(ctx context.Context, n *store.Node) error
	SupportedBootDevices(ctx context.Context, n *store.Node) ([]string, error)
	BootDevice(ctx context.Context, n *store.Node) (BootDevice, error)
	SetBootDevice(ctx context.Context, n *store.Node, device string, persistent bool) error
}

// Boot prepares what a node boots: the agent ramdisk, or the deployed instance.
type Boot interface {
	Validate(ctx context.Context, n *store.Node) error
	PrepareRamdisk(ctx context.Context, t *Task) error
	CleanUpRamdisk(ctx context.Context, t *Task) error
	PrepareInstance(ctx context.Context, t *Task) error
	CleanUpInstance(ctx context.Context, t *Task) error
}

// ConductorLocalBoot is implemented by boot interfaces whose agent boot is served from files of the conductor that
// prepared it (virtual-media ISOs, iPXE scripts and images, a local agent process): when that conductor dies
// before the agent called back, the node's new owner prepares the boot again rather than let it time out.
type ConductorLocalBoot interface {
	ServedByConductor() bool
}

// Deploy writes an instance onto a node and removes it again.
type Deploy interface {
	Validate(ctx context.Context, n *store.Node) error
	// Deploy runs (or starts) a deploy; Wait means the node waits for an agent call-back.
	Deploy(ctx context.Context, t *Task) (Outcome, error)
	// TearDown undoes a deploy (power off, clean up instance boot).
	TearDown(ctx context.Context, t *Task) error
	// Clean runs automated cleaning; Wait means the node waits for an agent call-back.
	Clean(ctx context.Context, t *Task) (Outcome, error)
}

// Detection is a deploy interface's answer to "can you deploy this node's image?" (Ironic's supports_deploy).
type Detection struct {
	// Supported says the interface can deploy the node's image.
	Supported bool
	// Reason is one line for the deploy log saying why (e.g. "oci:// manifest is a container image").
	Reason string
	// Record is kept in driver_internal_info.autodetect when the interface is chosen (e.g. the pinned digest and
	// the labels that confirmed the image kind); nil for nothing. Never secrets: the API shows that field.
	Record map[string]any
}

// Detector is the optional capability of a deploy interface that the autodetect deploy interface asks, in the
// order of --autodetect-deploy-interfaces, whether it can deploy t.Node's image. An error means "could not tell"
// (registry down, credentials refused): autodetect then refuses the deploy with it instead of guessing. A deploy
// interface that is not a Detector is chosen only as autodetect's fallback (the last of the list). The task's
// DeployLog is nil while detecting (the deploy's log run has not started): say what matters in Reason.
type Detector interface {
	SupportsDeploy(ctx context.Context, t *Task) (Detection, error)
}

// Inspect learns a node's hardware: it updates the node's properties (cpus, memory_mb, local_gb, cpu_arch),
// creates its ports and keeps its inventory. Validate is what create, validate and the inspect verb check; an
// interface that cannot inspect refuses there (UnsupportedError), so the verb is refused with a 400.
type Inspect interface {
	Validate(ctx context.Context, n *store.Node) error
	// Inspect runs (or starts) an inspection of t.Node; Done means the node's properties are up to date.
	Inspect(ctx context.Context, t *Task) (Outcome, error)
}

// Rescue boots a deployed node into a rescue environment and back.
type Rescue interface {
	Validate(ctx context.Context, n *store.Node) error
	Rescue(ctx context.Context, t *Task) (Outcome, error)
	Unrescue(ctx context.Context, t *Task) (Outcome, error)
}

// StepProvider is the optional capability of an interface that offers clean, deploy or service steps (Ironic's
// get_clean_steps/execute_clean_step and friends). The engine gathers the steps of every interface of a node that
// implements it, orders them and runs them one at a time through the interface that offered each.
type StepProvider interface {
	// Steps lists the steps of kind the interface offers, with their default priorities; in-band steps (run by
	// the agent ramdisk) have InBand set.
	Steps(kind steps.Kind) []steps.Step
	// ExecuteStep runs (or starts) one step on t.Node, whose current step field (clean_step, deploy_step or
	// service_step) already holds it. Done: the step finished. Wait: the node waits (clean wait, wait call-back,
	// service wait) and the interface's Continue (AgentDeploy) reports Done once the step finished. An error fails
	// the step; its text goes into last_error.
	ExecuteStep(ctx context.Context, t *Task, kind steps.Kind, s steps.Step) (Outcome, error)
}

// Resume says how a conductor that did not start a deploy step carries it on, once the conductor that was running
// it died or restarted (issue 17). Ironic fails every node left in a transient state; a step whose work can be
// done again, or whose work the agent does and reports once, need not fail the deploy.
type Resume int

const (
	// ResumeNever fails the node, as Ironic does: the step's work can neither be repeated nor followed safely.
	ResumeNever Resume = iota
	// ResumeRerun runs the step again from its start: its work is idempotent (power, boot device, boot media).
	ResumeRerun
	// ResumeWait moves the node to its wait state without running anything: the step's work runs on the agent,
	// started at most once (agentdeploy.StartOnce), and the agent's heartbeat or poll follows it (Continue).
	ResumeWait
)

// Resumer is implemented by step providers that know which of their steps another conductor may carry on.
type Resumer interface {
	ResumeStep(kind steps.Kind, s steps.Step) Resume
}

// StepFinisher is implemented by step providers that set something up for the steps of a clean or service (the
// agent ramdisk) and tear it down once the last step finished. Failures tear it down through the engine's
// failure path instead.
type StepFinisher interface {
	FinishSteps(ctx context.Context, t *Task, kind steps.Kind) error
}

// UnsupportedError is Ironic's UnsupportedDriverExtension: the node's interface of this kind cannot do the
// verb (no-inspect, no-rescue). It wraps ErrInvalid: the API answers 400.
type UnsupportedError struct {
	Driver, Kind string
}

func (e *UnsupportedError) Error() string {
	return fmt.Sprintf("Driver %s does not support %s (disabled or not implemented).", e.Driver, e.Kind)
}

// Unwrap makes the error match ErrInvalid.
func (e *UnsupportedError) Unwrap() error { return ErrInvalid }

// BIOS, firmware and RAID interfaces (issue 15 E). An interface that cannot act on a node (no-bios, no-firmware,
// no-raid, or one missing from the registry) refuses every verb with an UnsupportedError, never a silent success.

// BIOS reads a node's BIOS settings (Ironic's bios interface; the engine caches what Settings returns at manage
// and clean, as Ironic's cache_bios_settings).
type BIOS interface {
	Validate(ctx context.Context, n *store.Node) error
	// Settings reads the node's current BIOS settings, with their registry data when the BMC has it.
	Settings(ctx context.Context, n *store.Node) ([]store.BIOSSetting, error)
}

// Firmware reads a node's firmware versions (Ironic's firmware interface, API 1.86).
type Firmware interface {
	Validate(ctx context.Context, n *store.Node) error
	// Components reads the node's firmware components (bios, bmc) with their current versions.
	Components(ctx context.Context, n *store.Node) ([]store.FirmwareComponent, error)
}

// RAID checks a node's target RAID configuration (Ironic's raid interface).
type RAID interface {
	Validate(ctx context.Context, n *store.Node) error
	// ValidateRAIDConfig checks a target_raid_config (already checked against Ironic's RAID schema) against
	// what the interface can build; an interface that cannot build RAID refuses with an UnsupportedError.
	ValidateRAIDConfig(ctx context.Context, n *store.Node, cfg map[string]any) error
}

// hwInterfaces holds the registered bios, firmware and raid implementations by name.
type hwInterfaces struct {
	bios     map[string]BIOS
	firmware map[string]Firmware
	raid     map[string]RAID
	storage  map[string]Storage
}

// AddBIOS registers a bios interface implementation under name.
func (r *Registry) AddBIOS(name string, b BIOS) {
	if r.hw.bios == nil {
		r.hw.bios = map[string]BIOS{}
	}
	r.hw.bios[name] = b
}

// AddFirmware registers a firmware interface implementation under name.
func (r *Registry) AddFirmware(name string, f Firmware) {
	if r.hw.firmware == nil {
		r.hw.firmware = map[string]Firmware{}
	}
	r.hw.firmware[name] = f
}

// AddRAID registers a raid interface implementation under name.
func (r *Registry) AddRAID(name string, x RAID) {
	if r.hw.raid == nil {
		r.hw.raid = map[string]RAID{}
	}
	r.hw.raid[name] = x
}

// hwTask fills the task's bios, firmware and raid interfaces, falling back to the refusing no-* implementations
// (a registry built without them, a node stored before they existed).
func (r *Registry) hwTask(t *Task) {
	var ok bool
	if t.BIOS, ok = r.hw.bios[t.Node.Interfaces["bios"]]; !ok {
		t.BIOS = NoBIOS{}
	}
	if t.Firmware, ok = r.hw.firmware[t.Node.Interfaces["firmware"]]; !ok {
		t.Firmware = NoFirmware{}
	}
	if t.RAID, ok = r.hw.raid[t.Node.Interfaces["raid"]]; !ok {
		t.RAID = NoRAID{}
	}
	r.storageTask(t)
}

// HardwareType is a driver as the API shows it: its enabled interfaces per kind and the default of each.
type HardwareType struct {
	Name     string
	Enabled  map[string][]string // kind -> interface names, default first
	Defaults map[string]string   // kind -> default interface name
	// Properties are the driver_info keys the type reads, with their descriptions (GET /v1/drivers/{d}/properties);
	// nil for none beyond the common ones.
	Properties map[string]string
	// AnyInterface accepts, for a node's explicitly set interfaces, any interface some hardware type of this
	// conductor enables, as Ironic's driver factory special-cases fake-hardware: a fake-hardware node may use
	// redfish power against a simulated BMC while everything else stays fake. Defaults still come from Defaults.
	AnyInterface bool
}

// Registry holds the hardware types and interface implementations a conductor offers.
type Registry struct {
	hardware   map[string]*HardwareType
	power      map[string]Power
	management map[string]Management
	boot       map[string]Boot
	deploy     map[string]Deploy
	inspect    map[string]Inspect
	rescue     map[string]Rescue
	hw         hwInterfaces // bios, firmware, raid, storage
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{hardware: map[string]*HardwareType{}, power: map[string]Power{}, management: map[string]Management{},
		boot: map[string]Boot{}, deploy: map[string]Deploy{}, inspect: map[string]Inspect{}, rescue: map[string]Rescue{}}
}

// AddHardware registers a hardware type.
func (r *Registry) AddHardware(h *HardwareType) { r.hardware[h.Name] = h }

// AddPower registers a power interface implementation under name.
func (r *Registry) AddPower(name string, p Power) { r.power[name] = p }

// AddManagement registers a management interface implementation under name.
func (r *Registry) AddManagement(name string, m Management) { r.management[name] = m }

// AddBoot registers a boot interface implementation under name.
func (r *Registry) AddBoot(name string, b Boot) { r.boot[name] = b }

// AddDeploy registers a deploy interface implementation under name.
func (r *Registry) AddDeploy(name string, d Deploy) { r.deploy[name] = d }

// DeployInterface returns the deploy interface implementation registered under name.
func (r *Registry) DeployInterface(name string) (Deploy, bool) {
	d, ok := r.deploy[name]
	return d, ok
}

// AddInspect registers an inspect interface implementation under name.
func (r *Registry) AddInspect(name string, i Inspect) { r.inspect[name] = i }

// AddRescue registers a rescue interface implementation under name.
func (r *Registry) AddRescue(name string, x Rescue) { r.rescue[name] = x }

// HardwareTypes lists the hardware types, sorted by name.
func (r *Registry) HardwareTypes() []*HardwareType {
	var out []*HardwareType
	for _, h := range r.hardware {
		out = append(out, h)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// UnknownDriverError says no hardware type has the name.
type UnknownDriverError struct{ Name string }

func (e *UnknownDriverError) Error() string {
	return fmt.Sprintf("No valid host was found. Reason: No conductor service registered which supports driver %s for conductor group \"\".", e.Name)
}

// Hardware returns a hardware type by name.
func (r *Registry) Hardware(name string) (*HardwareType, error) {
	h, ok := r.hardware[name]
	if !ok {
		return nil, &UnknownDriverError{Name: name}
	}
	return h, nil
}

// ResolveInterfaces fills n.Interfaces with the hardware type's defaults for every kind not set, and checks that
// every set interface is enabled for the hardware type.
func (r *Registry) ResolveInterfaces(n *store.Node) error {
	h, err := r.Hardware(n.Driver)
	if err != nil {
		return err
	}
	if n.Interfaces == nil {
		n.Interfaces = map[string]string{}
	}
	for _, kind := range Kinds() {
		name, ok := n.Interfaces[kind]
		if !ok || name == "" {
			n.Interfaces[kind] = h.Defaults[kind]
			continue
		}
		enabled := h.Enabled[kind]
		if h.AnyInterface {
			enabled = r.enabledAnywhere(h, kind)
		}
		found := false
		for _, e := range enabled {
			if e == name {
				found = true
			}
		}
		if !found {
			return fmt.Errorf("%s_interface %q is not enabled for driver %s; valid interfaces are: %s: %w",
				kind, name, h.Name, strings.Join(enabled, ", "), ErrInvalid)
		}
	}
	return nil
}

// enabledAnywhere lists the interfaces of kind h enables (its order, default first), then those only other
// hardware types enable (sorted): what a node of an AnyInterface type may choose.
func (r *Registry) enabledAnywhere(h *HardwareType, kind string) []string {
	seen := map[string]bool{}
	out := append([]string(nil), h.Enabled[kind]...)
	for _, e := range out {
		seen[e] = true
	}
	var more []string
	for _, o := range r.hardware {
		for _, e := range o.Enabled[kind] {
			if !seen[e] {
				seen[e] = true
				more = append(more, e)
			}
		}
	}
	sort.Strings(more)
	return append(out, more...)
}

// Task builds a Task for n with its interface implementations.
func (r *Registry) Task(n *store.Node, log *logrus.Entry, save func(ctx context.Context) error) (*Task, error) {
	t := &Task{Node: n, Log: log, Save: save}
	var ok bool
	if t.Power, ok = r.power[n.Interfaces["power"]]; !ok {
		return nil, fmt.Errorf("power_interface %q has no implementation: %w", n.Interfaces["power"], ErrInvalid)
	}
	if t.Management, ok = r.management[n.Interfaces["management"]]; !ok {
		return nil, fmt.Errorf("management_interface %q has no implementation: %w", n.Interfaces["management"], ErrInvalid)
	}
	if t.Boot, ok = r.boot[n.Interfaces["boot"]]; !ok {
		return nil, fmt.Errorf("boot_interface %q has no implementation: %w", n.Interfaces["boot"], ErrInvalid)
	}
	if t.Deploy, ok = r.deploy[n.Interfaces["deploy"]]; !ok {
		return nil, fmt.Errorf("deploy_interface %q has no implementation: %w", n.Interfaces["deploy"], ErrInvalid)
	}
	// Inspect and rescue fall back to the refusing implementations, so that a registry built without them (and
	// a node stored before these interfaces existed) gets a clear refusal instead of a missing interface.
	if t.Inspect, ok = r.inspect[n.Interfaces["inspect"]]; !ok {
		t.Inspect = NoInspect{}
	}
	if t.Rescue, ok = r.rescue[n.Interfaces["rescue"]]; !ok {
		t.Rescue = NoRescue{}
	}
	r.hwTask(t)
	return t, nil
}
