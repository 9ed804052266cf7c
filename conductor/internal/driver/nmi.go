package driver

import (
	"context"

	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// NMI is the optional capability of a management interface to inject a non-maskable interrupt into a node
// (Ironic's ManagementInterface.inject_nmi, API 1.29 PUT /v1/nodes/{node}/management/inject_nmi). Ironic's fake
// management lacks it, and so does Ferric's: its nodes are refused with UnsupportedError, as Ironic's are.
type NMI interface {
	InjectNMI(ctx context.Context, n *store.Node) error
}
