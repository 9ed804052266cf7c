package engine

// Injecting a non-maskable interrupt (Ironic API 1.29), through the management interface's driver.NMI
// capability, under the node's reservation, after the interface's validation, as Ironic's conductor does.

import (
	"context"

	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// InjectNMI injects an NMI into the node, or refuses with Ironic's UnsupportedDriverExtension.
func (e *Engine) InjectNMI(ctx context.Context, ident string) error {
	return e.withLock(ctx, ident, true, func(n *store.Node) error {
		t, err := e.task(n)
		if err != nil {
			return err
		}
		nmi, ok := t.Management.(driver.NMI)
		if !ok {
			return &driver.UnsupportedError{Driver: n.Driver, Kind: "inject_nmi"}
		}
		if err := t.Management.Validate(ctx, n); err != nil {
			return err
		}
		return nmi.InjectNMI(ctx, n)
	})
}
