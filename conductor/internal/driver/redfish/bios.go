package redfish

// Redfish bios, firmware and raid interfaces (issue 15 E), the ones Metal3's baremetal-operator sets on redfish
// nodes. BIOS settings come from the System's Bios resource, firmware versions from the System's BiosVersion and
// its Manager's FirmwareVersion (what Ironic's redfish firmware interface reads). The raid interface is raid.go.

import (
	"context"
	"fmt"
	"sort"
	"strconv"

	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// EnableHardwareInterfaces offers the bios, firmware and raid interfaces on the redfish hardware type with
// Ironic's defaults: bios redfish (enabled_bios_interfaces defaults to no-bios,redfish), firmware no-firmware
// (Ironic enables only no-firmware unless configured; Metal3 sets redfish on each node), raid redfish (enabled
// by default, first of the type's supported list). Ironic's agent RAID is added beside it (driver.EnableAgentRAID):
// it refuses every configuration, since Ferric's agent builds no RAID.
func EnableHardwareInterfaces(h *driver.HardwareType) *driver.HardwareType {
	h.Defaults["bios"], h.Enabled["bios"] = "redfish", []string{"redfish", driver.BIOSNone}
	h.Defaults["firmware"], h.Enabled["firmware"] = driver.FirmwareNone, []string{"redfish", driver.FirmwareNone}
	h.Defaults["raid"], h.Enabled["raid"] = "redfish", []string{"redfish", driver.RAIDNone}
	return h
}

// BIOS is the redfish bios interface.
type BIOS struct{ Driver *Driver }

// Validate checks driver_info (the BMC is asked when settings are read: validate stays cheap, as Ironic's).
func (b *BIOS) Validate(_ context.Context, n *store.Node) error {
	_, err := ParseInfo(n)
	return err
}

// Settings reads the System's Bios attributes; values other than strings are given as text, as Ironic stores
// them. A system without a Bios resource is refused as unsupported (Ironic's MissingAttributeError case). Each
// setting takes the fields of its BIOS attribute registry entry (biosregistry.go); a BMC whose registry cannot be
// read gives the settings without them, as Ironic goes on without the registry.
func (b *BIOS) Settings(ctx context.Context, n *store.Node) ([]store.BIOSSetting, error) {
	s, err := b.Driver.connect(ctx, n)
	if err != nil {
		return nil, err
	}
	defer s.close()
	bios, err := s.system.Bios()
	if err != nil {
		return nil, bmcError(s.info, "read the system's Bios", err)
	}
	if bios == nil {
		return nil, fmt.Errorf("Redfish BMC %s: system %s has no Bios resource, BIOS settings are not supported: %w",
			s.info.Address, s.system.ODataID, &driver.UnsupportedError{Driver: n.Driver, Kind: "bios"})
	}
	reg, _ := biosRegistry(s, bios) // a failure leaves the registry fields null (Ironic logs it and goes on)
	out := make([]store.BIOSSetting, 0, len(bios.Attributes))
	for name, v := range bios.Attributes {
		st := store.BIOSSetting{Name: name}
		if v != nil {
			text := attrText(v)
			st.Value = &text
		}
		if a, ok := reg[name]; ok {
			applyRegistry(&st, a)
		}
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// attrText renders a Redfish attribute value (string, number, boolean) as text.
func attrText(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	}
	return fmt.Sprint(v)
}

// Firmware is the redfish firmware interface.
type Firmware struct{ Driver *Driver }

// Validate checks driver_info and that the BMC answers.
func (f *Firmware) Validate(ctx context.Context, n *store.Node) error {
	return f.Driver.Validate(ctx, n)
}

// Components reads the bios version of the System and the firmware version of the Manager that manages it;
// either is left out when the BMC does not report it.
func (f *Firmware) Components(ctx context.Context, n *store.Node) ([]store.FirmwareComponent, error) {
	s, err := f.Driver.connect(ctx, n)
	if err != nil {
		return nil, err
	}
	defer s.close()
	var out []store.FirmwareComponent
	if v := s.system.BiosVersion; v != "" {
		out = append(out, store.FirmwareComponent{Component: "bios", CurrentVersion: v})
	}
	managers, err := s.system.ManagedBy()
	if err != nil {
		return nil, bmcError(s.info, "read the system's managers", err)
	}
	if len(managers) > 0 && managers[0].FirmwareVersion != "" {
		out = append(out, store.FirmwareComponent{Component: "bmc", CurrentVersion: managers[0].FirmwareVersion})
	}
	return out, nil
}
