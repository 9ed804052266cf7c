package engine

// Node indicators (Ironic API 1.63: /v1/nodes/{node}/management/indicators): the LEDs of a node's components, read
// and set through the node's management interface when it has the driver.Indicators capability.

import (
	"context"

	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// indicatorsOf returns the node's management interface as driver.Indicators, or Ironic's UnsupportedDriverExtension.
func (e *Engine) indicatorsOf(n *store.Node, what string) (driver.Indicators, error) {
	t, err := e.task(n)
	if err != nil {
		return nil, err
	}
	// An optional capability: the management interface implements it or the call is refused, named by the
	// driver method Ironic would have called (what its error says too).
	ind, ok := t.Management.(driver.Indicators)
	if !ok {
		return nil, &driver.UnsupportedError{Driver: n.Driver, Kind: what}
	}
	return ind, nil
}

// Indicators lists the node's indicators: component -> name -> description. A read: no lock.
func (e *Engine) Indicators(ctx context.Context, ident string) (map[string]map[string]driver.Indicator, error) {
	n, err := e.store.GetNode(ctx, ident)
	if err != nil {
		return nil, err
	}
	ind, err := e.indicatorsOf(n, "get_supported_indicators")
	if err != nil {
		return nil, err
	}
	return ind.SupportedIndicators(ctx, n)
}

// IndicatorState returns one indicator's state. A read: no lock.
func (e *Engine) IndicatorState(ctx context.Context, ident, component, name string) (string, error) {
	n, err := e.store.GetNode(ctx, ident)
	if err != nil {
		return "", err
	}
	ind, err := e.indicatorsOf(n, "get_indicator_state")
	if err != nil {
		return "", err
	}
	return ind.IndicatorState(ctx, n, component, name)
}

// SetIndicatorState sets one indicator under the node's reservation; what the interface records in the node is saved.
func (e *Engine) SetIndicatorState(ctx context.Context, ident, component, name, state string) error {
	return e.withLock(ctx, ident, true, func(n *store.Node) error {
		ind, err := e.indicatorsOf(n, "set_indicator_state")
		if err != nil {
			return err
		}
		return ind.SetIndicatorState(ctx, n, component, name, state)
	})
}
