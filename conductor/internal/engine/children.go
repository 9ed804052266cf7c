package engine

// Parent and child nodes (Ironic API 1.83): a node's parent_node names another node, kept as its UUID.

import (
	"context"
	"errors"
	"fmt"

	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// ResolveParentNode checks a parent_node value for the node self and returns the parent's UUID: the parent must
// exist (Ironic's message, which does not say whether it does) and must not be self (a node that is its own parent
// would drop out of every node list; Ironic does not check this).
func (e *Engine) ResolveParentNode(ctx context.Context, self *store.Node, ident string) (string, error) {
	p, err := e.store.GetNode(ctx, ident)
	if errors.Is(err, store.ErrNotFound) {
		return "", fmt.Errorf("Unable to apply the requested parent_node '%s'. Requested value was invalid.: %w", ident, ErrInvalidInput)
	}
	if err != nil {
		return "", err
	}
	if p.UUID == self.UUID {
		return "", fmt.Errorf("Unable to apply the requested parent_node '%s': a node cannot be its own parent; "+
			"name another node, or remove parent_node: %w", ident, ErrInvalidInput)
	}
	return p.UUID, nil
}
