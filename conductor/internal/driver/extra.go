package driver

// Optional capabilities of a node's interfaces beyond power, boot device and deploy: indicators (LEDs), boot mode
// and secure boot (management), and vendor passthru methods (vendor). An interface that lacks one is refused with
// Ironic's UnsupportedDriverExtension (UnsupportedError), never answered with a made-up value.

import (
	"context"

	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// Indicator states and components as Ironic spells them (ironic.common.indicator_states and components).
const (
	IndicatorOn       = "ON"
	IndicatorOff      = "OFF"
	IndicatorBlinking = "BLINKING"
	IndicatorUnknown  = "UNKNOWN"

	ComponentSystem  = "system"
	ComponentChassis = "chassis"
	ComponentDisk    = "disk"
)

// Boot modes a node may be switched to (Ironic's boot_modes).
const (
	BootModeUEFI = "uefi"
	BootModeBIOS = "bios"
)

// Indicator describes one indicator of a component: whether it can be set, and the states it takes.
type Indicator struct {
	ReadOnly bool     `json:"readonly"`
	States   []string `json:"states"`
}

// Indicators is the optional capability of a management interface to read and set a node's indicators (Ironic's
// get_supported_indicators, get_indicator_state, set_indicator_state). The node given is reserved by the caller
// for SetIndicatorState; changes the interface makes to it are saved by the caller.
type Indicators interface {
	// SupportedIndicators maps component -> indicator name -> description.
	SupportedIndicators(ctx context.Context, n *store.Node) (map[string]map[string]Indicator, error)
	IndicatorState(ctx context.Context, n *store.Node, component, name string) (string, error)
	SetIndicatorState(ctx context.Context, n *store.Node, component, name, state string) error
}

// BootModes is the optional capability of a management interface to switch a node's boot mode and secure boot
// (Ironic's set_boot_mode and set_secure_boot_state). On success the caller records the new value in the node's
// boot_mode / secure_boot fields, as Ironic's conductor caches them.
type BootModes interface {
	SetBootMode(ctx context.Context, n *store.Node, mode string) error
	SetSecureBoot(ctx context.Context, n *store.Node, enabled bool) error
}

// VendorMethod is one vendor passthru method as GET .../vendor_passthru/methods describes it.
type VendorMethod struct {
	HTTPMethods []string `json:"http_methods"`
	Async       bool     `json:"async"`
	Description string   `json:"description"`
	Attach      bool     `json:"attach"`
	// RequireExclusiveLock says the call runs under the node's reservation (false: a shared read).
	RequireExclusiveLock bool `json:"require_exclusive_lock"`
}

// Vendor is a node's vendor interface: named methods a client calls through /vendor_passthru?method=NAME.
type Vendor interface {
	// Methods maps method name -> description.
	Methods() map[string]VendorMethod
	// Validate checks the call's arguments before it runs (Ironic's validate(task, method, **kwargs)).
	Validate(ctx context.Context, n *store.Node, method string, data map[string]any) error
	// Call runs the method; the result is what the API returns (Async methods return nothing).
	Call(ctx context.Context, n *store.Node, method, httpMethod string, data map[string]any) (any, error)
}

// VendorInterface returns the vendor interface implementation of a vendor_interface name; false for an interface
// that offers no methods (no-vendor), whose calls are refused with UnsupportedError.
func VendorInterface(name string) (Vendor, bool) {
	if name == "fake" {
		return FakeVendor{}, true
	}
	return nil, false
}
