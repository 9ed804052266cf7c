package redfish

// The redfish management's inject_nmi (driver.NMI): a ComputerSystem.Reset with ResetType Nmi, which a BMC
// delivers to the running host (a kernel typically panics or dumps, as the operator asked); a BMC that does not
// offer Nmi answers with an error, surfaced with bmcError's hint.

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
