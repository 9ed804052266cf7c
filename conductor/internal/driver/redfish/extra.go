package redfish

// The optional management capabilities of driver/extra.go over Redfish: the system's indicator LED (IndicatorLED,
// named by the system's UUID, as Ironic's redfish management does), its boot mode (Boot.BootSourceOverrideMode)
// and UEFI secure boot (the system's SecureBoot resource). Chassis and drive LEDs are not offered.

import (
	"context"
	"fmt"

	"github.com/stmcginnis/gofish/schemas"

	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// Redfish IndicatorLED values and Ironic's indicator states, both ways.
var (
	ledToState = map[schemas.IndicatorLED]string{schemas.LitIndicatorLED: driver.IndicatorOn,
		schemas.BlinkingIndicatorLED: driver.IndicatorBlinking, schemas.OffIndicatorLED: driver.IndicatorOff}
	stateToLED = map[string]schemas.IndicatorLED{driver.IndicatorOn: schemas.LitIndicatorLED,
		driver.IndicatorBlinking: schemas.BlinkingIndicatorLED, driver.IndicatorOff: schemas.OffIndicatorLED}
)

// systemLED describes the system LED; every state can be set, as Ironic's redfish management says.
var systemLED = driver.Indicator{States: []string{driver.IndicatorBlinking, driver.IndicatorOff, driver.IndicatorOn}}

// SupportedIndicators lists the system's LED under its UUID; a system without IndicatorLED has none.
func (d *Driver) SupportedIndicators(ctx context.Context, n *store.Node) (map[string]map[string]driver.Indicator, error) {
	s, err := d.connect(ctx, n)
	if err != nil {
		return nil, err
	}
	defer s.close()
	out := map[string]map[string]driver.Indicator{}
	if s.system.IndicatorLED != "" {
		out[driver.ComponentSystem] = map[string]driver.Indicator{s.system.UUID: systemLED}
	}
	return out, nil
}

// systemIndicator connects and checks component/name name the system's LED, with Ironic's message otherwise.
func (d *Driver) systemIndicator(ctx context.Context, n *store.Node, component, name string) (*session, error) {
	s, err := d.connect(ctx, n)
	if err != nil {
		return nil, err
	}
	if component != driver.ComponentSystem || name != s.system.UUID || s.system.IndicatorLED == "" {
		s.close()
		return nil, fmt.Errorf("Unknown indicator %s for component %s of node %s: %w", name, component, n.UUID, driver.ErrInvalid)
	}
	return s, nil
}

// IndicatorState reads the system LED (UNKNOWN for a value Redfish does not define).
func (d *Driver) IndicatorState(ctx context.Context, n *store.Node, component, name string) (string, error) {
	s, err := d.systemIndicator(ctx, n, component, name)
	if err != nil {
		return "", err
	}
	defer s.close()
	if st, ok := ledToState[s.system.IndicatorLED]; ok {
		return st, nil
	}
	return driver.IndicatorUnknown, nil
}

// SetIndicatorState patches the system's IndicatorLED.
func (d *Driver) SetIndicatorState(ctx context.Context, n *store.Node, component, name, state string) error {
	led, ok := stateToLED[state]
	if !ok {
		return fmt.Errorf("Invalid indicator state %s; use one of BLINKING, OFF, ON: %w", state, driver.ErrInvalid)
	}
	s, err := d.systemIndicator(ctx, n, component, name)
	if err != nil {
		return err
	}
	defer s.close()
	// Update PATCHes only the fields changed since the read, i.e. IndicatorLED alone.
	s.system.IndicatorLED = led
	if err := s.system.Update(); err != nil {
		return bmcError(s.info, "set the indicator LED to "+string(led), err)
	}
	return nil
}

// SetBootMode patches BootSourceOverrideMode (UEFI or Legacy), keeping the override target as the BMC has it, and
// records the mode in properties.capabilities as the set_boot_mode step does.
func (d *Driver) SetBootMode(ctx context.Context, n *store.Node, mode string) error {
	want := map[string]schemas.BootSourceOverrideMode{driver.BootModeUEFI: schemas.UEFIBootSourceOverrideMode,
		driver.BootModeBIOS: schemas.LegacyBootSourceOverrideMode}[mode]
	if want == "" {
		return fmt.Errorf("boot mode %q is not supported; use uefi or bios: %w", mode, driver.ErrInvalid)
	}
	s, err := d.connect(ctx, n)
	if err != nil {
		return err
	}
	defer s.close()
	// Only the mode changes: a PATCH of the mode alone is refused by some BMCs, and sending the target and its
	// enablement as read leaves a pending one-time boot override in place.
	cur := s.system.Boot
	if err := s.system.SetBoot(&schemas.Boot{BootSourceOverrideTarget: cur.BootSourceOverrideTarget,
		BootSourceOverrideEnabled: cur.BootSourceOverrideEnabled, BootSourceOverrideMode: want}); err != nil {
		return bmcError(s.info, "set the boot mode to "+mode, err)
	}
	setCapability(n, "boot_mode", mode)
	return nil
}

// SetSecureBoot patches SecureBootEnable of the system's SecureBoot resource; a BMC without one is refused.
func (d *Driver) SetSecureBoot(ctx context.Context, n *store.Node, enabled bool) error {
	s, err := d.connect(ctx, n)
	if err != nil {
		return err
	}
	defer s.close()
	sb, err := s.system.SecureBoot()
	if err != nil {
		return bmcError(s.info, "read the SecureBoot resource", err)
	}
	if sb == nil {
		return fmt.Errorf("the Redfish system of BMC %s has no SecureBoot resource, so secure boot cannot be set "+
			"through it: %w", s.info.Address, driver.ErrInvalid)
	}
	sb.SecureBootEnable = enabled
	if err := sb.Update(); err != nil {
		return bmcError(s.info, fmt.Sprintf("set SecureBootEnable to %t", enabled), err)
	}
	return nil
}
