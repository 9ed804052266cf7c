package driver

// The fake-hardware side of the optional capabilities (extra.go). Ironic's fake management reports every indicator
// ON and cannot set boot mode; Ferric's fake holds what was set, in the node itself (driver_internal_info
// "fake_indicators"; the boot_mode and secure_boot fields the engine writes), so a client test can read back what
// it wrote and the state survives a conductor restart.

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// fakeIndicatorsKey is where the fake keeps indicator states in driver_internal_info: "name@component" -> state.
const fakeIndicatorsKey = "fake_indicators"

// SupportedIndicators answers Ironic's fake set: a read-only chassis LED and a settable system LED.
func (f *FakeManagement) SupportedIndicators(context.Context, *store.Node) (map[string]map[string]Indicator, error) {
	return map[string]map[string]Indicator{
		ComponentChassis: {"led-0": {ReadOnly: true, States: []string{IndicatorOff, IndicatorOn}}},
		ComponentSystem:  {"led": {ReadOnly: false, States: []string{IndicatorBlinking, IndicatorOff, IndicatorOn}}},
	}, nil
}

// fakeIndicator finds one indicator, with Ironic's messages for an unknown component or name.
func (f *FakeManagement) fakeIndicator(ctx context.Context, n *store.Node, component, name string) (Indicator, error) {
	all, _ := f.SupportedIndicators(ctx, n)
	c, ok := all[component]
	if !ok {
		return Indicator{}, fmt.Errorf("Invalid component %s specified.: %w", component, ErrInvalid)
	}
	ind, ok := c[name]
	if !ok {
		return Indicator{}, fmt.Errorf("Invalid indicator %s specified.: %w", name, ErrInvalid)
	}
	return ind, nil
}

// IndicatorState returns the state last set, ON (Ironic's fake answer) before any.
func (f *FakeManagement) IndicatorState(ctx context.Context, n *store.Node, component, name string) (string, error) {
	if _, err := f.fakeIndicator(ctx, n, component, name); err != nil {
		return "", err
	}
	held, _ := n.DriverInternalInfo[fakeIndicatorsKey].(map[string]any)
	if s, ok := held[name+"@"+component].(string); ok {
		return s, nil
	}
	return IndicatorOn, nil
}

// SetIndicatorState records the state in the (reserved) node; read-only indicators and states the indicator does
// not take are refused.
func (f *FakeManagement) SetIndicatorState(ctx context.Context, n *store.Node, component, name, state string) error {
	ind, err := f.fakeIndicator(ctx, n, component, name)
	if err != nil {
		return err
	}
	if ind.ReadOnly {
		return fmt.Errorf("Indicator %s@%s is read-only; its state cannot be set.: %w", name, component, ErrInvalid)
	}
	if !slices.Contains(ind.States, state) {
		return fmt.Errorf("Invalid indicator state %s for %s@%s; use one of %s: %w", state, name, component,
			strings.Join(ind.States, ", "), ErrInvalid)
	}
	if n.DriverInternalInfo == nil {
		n.DriverInternalInfo = map[string]any{}
	}
	held, _ := n.DriverInternalInfo[fakeIndicatorsKey].(map[string]any)
	if held == nil {
		held = map[string]any{}
	}
	held[name+"@"+component] = state
	n.DriverInternalInfo[fakeIndicatorsKey] = held
	return nil
}

// SetBootMode accepts uefi and bios; the engine records the mode in the node.
func (f *FakeManagement) SetBootMode(_ context.Context, _ *store.Node, mode string) error {
	if mode != BootModeUEFI && mode != BootModeBIOS {
		return fmt.Errorf("boot mode %q is not supported; use uefi or bios: %w", mode, ErrInvalid)
	}
	return nil
}

// SetSecureBoot accepts either state; the engine records it in the node.
func (f *FakeManagement) SetSecureBoot(context.Context, *store.Node, bool) error { return nil }

// FakeVendor is fake-hardware's vendor interface, with the methods of Ironic's FakeVendorB: each answers whether
// "bar" has its expected value. They finish at once; Async only changes the status code (202, no body).
type FakeVendor struct{}

// fakeVendorBar maps each method that takes "bar" to the value it answers true for.
var fakeVendorBar = map[string]string{"second_method": "kazoo", "third_method_sync": "meow",
	"fourth_method_shared_lock": "woof"}

// Methods describes the fake methods as Ironic's fake-hardware does.
func (FakeVendor) Methods() map[string]VendorMethod {
	post := []string{"POST"}
	return map[string]VendorMethod{
		"second_method": {HTTPMethods: post, Async: true, Description: "Test if the value of bar is kazoo",
			RequireExclusiveLock: true},
		"third_method_sync": {HTTPMethods: post, Async: false, Description: "Test if the value of bar is meow",
			RequireExclusiveLock: true},
		"fourth_method_shared_lock": {HTTPMethods: post, Async: true, Description: "Test if the value of bar is woof"},
		"log_passthrough": {HTTPMethods: post, Async: true, Description: "Test pass-through to wait.",
			RequireExclusiveLock: true},
	}
}

// Validate requires "bar" for the methods that compare it, with Ironic's MissingParameterValue message.
func (FakeVendor) Validate(_ context.Context, _ *store.Node, method string, data map[string]any) error {
	if _, ok := fakeVendorBar[method]; !ok {
		return nil
	}
	if bar, _ := data["bar"].(string); bar == "" {
		return fmt.Errorf("Parameter 'bar' not passed to method '%s'.: %w", method, ErrInvalid)
	}
	return nil
}

// Call answers whether bar has the method's value; log_passthrough answers nothing.
func (FakeVendor) Call(_ context.Context, _ *store.Node, method, _ string, data map[string]any) (any, error) {
	want, ok := fakeVendorBar[method]
	if !ok {
		return nil, nil
	}
	bar, _ := data["bar"].(string)
	return bar == want, nil
}
