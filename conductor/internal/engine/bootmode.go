package engine

// Boot mode and secure boot (Ironic API 1.76: PUT /v1/nodes/{node}/states/boot_mode and /states/secure_boot),
// through the node's management interface when it has the driver.BootModes capability. The new value is written to
// the node's boot_mode / secure_boot fields (1.75), as Ironic's conductor caches what the BMC reports.

import (
	"context"
	"fmt"

	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/fsm"
	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// bootModesOf checks the node is not moving between states (Ironic answers 409) and returns its management
// interface as driver.BootModes, or Ironic's UnsupportedDriverExtension.
func (e *Engine) bootModesOf(n *store.Node, what string) (driver.BootModes, error) {
	s := fsm.State(n.ProvisionState)
	if !fsm.IsStable(s) && !fsm.IsFailure(s) {
		return nil, fmt.Errorf("Node is in %s state. Since node is transitioning, the boot mode will not be set as "+
			"this may interfere with ongoing changes and result in erroneous modification. Try again later.: %w",
			n.ProvisionState, ErrConflict)
	}
	t, err := e.task(n)
	if err != nil {
		return nil, err
	}
	bm, ok := t.Management.(driver.BootModes)
	if !ok {
		return nil, &driver.UnsupportedError{Driver: n.Driver, Kind: what}
	}
	return bm, nil
}

// SetBootMode switches the node to mode (uefi or bios) and records it in boot_mode.
func (e *Engine) SetBootMode(ctx context.Context, ident, mode string) error {
	if mode != driver.BootModeUEFI && mode != driver.BootModeBIOS {
		return fmt.Errorf("Invalid boot mode %s requested for node. Allowed boot modes are: bios, uefi: %w", mode, ErrInvalidInput)
	}
	return e.withLock(ctx, ident, true, func(n *store.Node) error {
		bm, err := e.bootModesOf(n, "set_boot_mode")
		if err != nil {
			return err
		}
		if err := bm.SetBootMode(ctx, n, mode); err != nil {
			return err
		}
		n.BootMode = mode
		return nil
	})
}

// SetSecureBoot turns secure boot on or off and records it in secure_boot.
func (e *Engine) SetSecureBoot(ctx context.Context, ident string, enabled bool) error {
	return e.withLock(ctx, ident, true, func(n *store.Node) error {
		bm, err := e.bootModesOf(n, "set_secure_boot_state")
		if err != nil {
			return err
		}
		if err := bm.SetSecureBoot(ctx, n, enabled); err != nil {
			return err
		}
		n.SecureBoot = &enabled
		return nil
	})
}
