package redfish

import (
	"context"

	"github.com/stmcginnis/gofish/schemas"

	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// InjectNMI asks the BMC to reset the system with ResetType Nmi, as Ironic's redfish management does.
func (d *Driver) InjectNMI(ctx context.Context, n *store.Node) error {
	s, err := d.connect(ctx, n)
	if err != nil {
		return err
	}
	defer s.close()
	if _, err := s.system.Reset(schemas.NmiResetType); err != nil {
		return bmcError(s.info, "inject an NMI", err)
	}
	return nil
}
