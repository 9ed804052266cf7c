package engine

// Node console (Ironic's GET/PUT /v1/nodes/{node}/states/console). Ferric offers no serial-console proxy: a node's
// console_interface is no-console (redfish) or fake (fake-hardware). no-console refuses every change as Ironic's
// NoConsole does; fake records console_enabled and serves an empty console_info, as Ironic's FakeConsole.

import (
	"context"

	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// ConsoleInfo is the answer of GET .../states/console: Info is nil while the console is disabled.
type ConsoleInfo struct {
	Enabled bool
	Info    map[string]any
}

// consoleUsable refuses a node whose console interface cannot run a console (Ironic: validate raises
// UnsupportedDriverExtension).
func consoleUsable(n *store.Node) error {
	if n.Interfaces["console"] == "fake" {
		return nil
	}
	return &driver.UnsupportedError{Driver: n.Driver, Kind: "console"}
}

// Console reports whether the node's console is enabled and how to reach it. A read: no lock. A disabled console
// answers enabled=false before the interface is asked, as Ironic (so no-console nodes answer, not refuse).
func (e *Engine) Console(ctx context.Context, ident string) (ConsoleInfo, error) {
	n, err := e.store.GetNode(ctx, ident)
	if err != nil {
		return ConsoleInfo{}, err
	}
	if !n.ConsoleEnabled {
		return ConsoleInfo{}, nil
	}
	if err := consoleUsable(n); err != nil {
		return ConsoleInfo{}, err
	}
	return ConsoleInfo{Enabled: true, Info: map[string]any{}}, nil
}

// SetConsole enables or disables the node's console under its reservation; the interface is checked first, so a
// no-console node is refused whatever the request and its console_enabled stays false.
func (e *Engine) SetConsole(ctx context.Context, ident string, enabled bool) error {
	return e.withLock(ctx, ident, true, func(n *store.Node) error {
		if err := consoleUsable(n); err != nil {
			return err
		}
		n.ConsoleEnabled = enabled
		return nil
	})
}
