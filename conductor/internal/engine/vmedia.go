package engine

// Virtual media a client attaches by hand (Ironic API 1.89 POST/DELETE /v1/nodes/{node}/vmedia, 1.93 GET),
// through the node's management interface when it has the driver.VirtualMedia capability. As in Ironic's
// conductor, any provision state is allowed, the management interface is validated first, and a node in
// maintenance for a power failure is refused as a temporary failure. Ironic runs the attach and detach in a
// worker and reports failures in last_error only; Ferric runs them while the request waits (one BMC call,
// bounded by the request's deadline), so the client sees the failure itself, and a success clears last_error
// as Ironic's start of the operation does.

import (
	"context"
	"errors"
	"fmt"

	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// ErrTemporary marks a refusal that a later retry may not meet (Ironic's TemporaryFailure, HTTP 503).
var ErrTemporary = errors.New("temporary failure")

// faultPowerFailure is the fault Ironic's power sync records when it cannot reach the BMC.
const faultPowerFailure = "power failure"

// vmediaOf validates the node's management interface and returns it as driver.VirtualMedia, or Ironic's
// UnsupportedDriverExtension naming the driver method (what is the name Ironic's error carries).
func (e *Engine) vmediaOf(ctx context.Context, n *store.Node, what string) (driver.VirtualMedia, error) {
	t, err := e.task(n)
	if err != nil {
		return nil, err
	}
	vm, ok := t.Management.(driver.VirtualMedia)
	if !ok {
		return nil, &driver.UnsupportedError{Driver: n.Driver, Kind: what}
	}
	if err := t.Management.Validate(ctx, n); err != nil {
		return nil, err
	}
	return vm, nil
}

// powerFailed refuses a write while the node is in maintenance for a power failure, as Ironic does.
func powerFailed(n *store.Node, doing string) error {
	if n.Maintenance && n.Fault == faultPowerFailure {
		return fmt.Errorf("Unable to %s virtual media for node %s due to power failure state: %w", doing, n.UUID, ErrTemporary)
	}
	return nil
}

// VirtualMedia lists the node's virtual media devices. A read: no lock.
func (e *Engine) VirtualMedia(ctx context.Context, ident string) ([]driver.VMedia, error) {
	n, err := e.store.GetNode(ctx, ident)
	if err != nil {
		return nil, err
	}
	vm, err := e.vmediaOf(ctx, n, "get_virtual_media")
	if err != nil {
		return nil, err
	}
	return vm.VirtualMedia(ctx, n)
}

// AttachVirtualMedia inserts an image into the node's device of a.DeviceType under the node's reservation.
func (e *Engine) AttachVirtualMedia(ctx context.Context, ident string, a driver.VMediaAttach) error {
	return e.withLock(ctx, ident, true, func(n *store.Node) error {
		vm, err := e.vmediaOf(ctx, n, "attach_virtual_media")
		if err != nil {
			return err
		}
		if err := powerFailed(n, "attach"); err != nil {
			return err
		}
		if err := vm.AttachVirtualMedia(ctx, n, a); err != nil {
			return err
		}
		n.LastError = ""
		e.log.WithField("node", n.UUID).WithField("device_type", a.DeviceType).Info("virtual media attached")
		return nil
	})
}

// DetachVirtualMedia ejects the node's media of the given device types (every device when none is given) under
// the node's reservation.
func (e *Engine) DetachVirtualMedia(ctx context.Context, ident string, types []string) error {
	return e.withLock(ctx, ident, true, func(n *store.Node) error {
		vm, err := e.vmediaOf(ctx, n, "detach_virtual_media")
		if err != nil {
			return err
		}
		if err := powerFailed(n, "detach"); err != nil {
			return err
		}
		if err := vm.DetachVirtualMedia(ctx, n, types); err != nil {
			return err
		}
		n.LastError = ""
		e.log.WithField("node", n.UUID).WithField("device_types", types).Info("virtual media detached")
		return nil
	})
}
