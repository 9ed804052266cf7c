package engine

// Vendor passthru (Ironic's /v1/nodes/{node}/vendor_passthru): named methods of the node's vendor interface. Calls
// of methods that need an exclusive lock run under the node's reservation; the others (and the listing) are reads.

import (
	"context"
	"fmt"
	"slices"

	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// VendorResult is the outcome of a passthru call: Async calls answer 202 with no body, the others 200 with Return.
type VendorResult struct {
	Return any
	Async  bool
}

// VendorMethods lists the node's vendor methods; a vendor interface without methods (no-vendor) lists none.
func (e *Engine) VendorMethods(ctx context.Context, ident string) (map[string]driver.VendorMethod, error) {
	n, err := e.store.GetNode(ctx, ident)
	if err != nil {
		return nil, err
	}
	v, ok := driver.VendorInterface(n.Interfaces["vendor"])
	if !ok {
		return map[string]driver.VendorMethod{}, nil
	}
	return v.Methods(), nil
}

// VendorPassthru calls method with data through HTTP verb httpMethod. An unknown method and a verb the method does
// not take are ErrInvalidInput with Ironic's messages; the interface validates the arguments before the call.
func (e *Engine) VendorPassthru(ctx context.Context, ident, method, httpMethod string, data map[string]any) (VendorResult, error) {
	n, err := e.store.GetNode(ctx, ident)
	if err != nil {
		return VendorResult{}, err
	}
	v, ok := driver.VendorInterface(n.Interfaces["vendor"])
	var m driver.VendorMethod
	if ok {
		m, ok = v.Methods()[method]
	}
	if !ok {
		return VendorResult{}, fmt.Errorf("No handler for method %s: %w", method, ErrInvalidInput)
	}
	if !slices.Contains(m.HTTPMethods, httpMethod) {
		return VendorResult{}, fmt.Errorf("The method %s does not support HTTP %s: %w", method, httpMethod, ErrInvalidInput)
	}
	call := func(n *store.Node) (any, error) {
		if err := v.Validate(ctx, n, method, data); err != nil {
			return nil, err
		}
		return v.Call(ctx, n, method, httpMethod, data)
	}
	// Ironic runs a method under an exclusive lock unless it says otherwise; a shared one is a plain read here
	// (the node as loaded above), so such methods must not change the node.
	var ret any
	if m.RequireExclusiveLock {
		err = e.withLock(ctx, ident, true, func(n *store.Node) error {
			var err error
			ret, err = call(n)
			return err
		})
	} else {
		ret, err = call(n)
	}
	if err != nil {
		return VendorResult{}, err
	}
	// Ironic's asynchronous methods run in a worker and their return value is dropped; the fake ones finish at
	// once, so only the answer differs.
	if m.Async {
		return VendorResult{Async: true}, nil
	}
	return VendorResult{Return: ret}, nil
}
