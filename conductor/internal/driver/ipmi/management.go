package ipmi

import (
	"context"
	"strings"

	"github.com/bougou/go-ipmi/pkg/client"
	"github.com/bougou/go-ipmi/pkg/types"

	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// selectors maps Ironic's boot devices to the IPMI boot device selector (Set System Boot Options, parameter 5),
// the values behind Ironic's BOOT_DEVICE_HEXA_MAP.
var selectors = map[string]types.BootDeviceSelector{
	driver.BootPXE:   types.BootDeviceSelectorForcePXE,
	driver.BootDisk:  types.BootDeviceSelectorForceHardDrive,
	driver.BootSafe:  types.BootDeviceSelectorForceHardDriveSafe,
	driver.BootCDROM: types.BootDeviceSelectorForceCDROM,
	driver.BootBIOS:  types.BootDeviceSelectorForceBIOSSetup,
}

// SupportedBootDevices lists Ironic's ipmitool boot devices.
func (d *Driver) SupportedBootDevices(context.Context, *store.Node) ([]string, error) {
	return []string{driver.BootPXE, driver.BootDisk, driver.BootCDROM, driver.BootBIOS, driver.BootSafe}, nil
}

// uefi reports the node's boot mode from properties.capabilities: UEFI unless boot_mode:bios, as Ironic's
// default boot mode.
func uefi(n *store.Node) bool {
	caps, _ := n.Properties["capabilities"].(string)
	return !strings.Contains(caps, "boot_mode:bios")
}

// SetBootDevice sets the boot flags in one session, as Ironic's IPMIManagement: first (unless
// ipmi_disable_boot_timeout is false) the "do not clear the flags after 60 s" bit, since the next boot may come
// later than that; then the flags themselves, valid, once or persistent, with the EFI bit in UEFI mode (Ironic's
// raw 0xa0/0xe0 byte).
func (d *Driver) SetBootDevice(ctx context.Context, n *store.Node, device string, persistent bool) error {
	sel, ok := selectors[device]
	if !ok {
		return unsupported("boot device %q is not supported by ipmi; use pxe, disk, cdrom, bios or safe", device)
	}
	info, err := ParseInfo(n)
	if err != nil {
		return err
	}
	bootType := types.BIOSBootTypeLegacy
	if uefi(n) {
		bootType = types.BIOSBootTypeEFI
	}
	return d.call(ctx, n, "set boot device "+device, func(ctx context.Context, c *client.Client) error {
		if info.DisableBootTimeout {
			keep := &types.BootOptionParam_BMCBootFlagValidBitClear{DontClearOnCommandReceivedTimeout: true}
			if err := c.SetSystemBootOptionsParamFor(ctx, keep); err != nil {
				return err
			}
		}
		return c.SetBootDevice(ctx, sel, bootType, persistent)
	})
}

// BootDevice reads the boot flags (Ironic's "chassis bootparam get 5"): the device, "" when the BMC reports one
// Ironic has no name for (no override), and whether it applies to all future boots.
func (d *Driver) BootDevice(ctx context.Context, n *store.Node) (driver.BootDevice, error) {
	flags := &types.BootOptionParam_BootFlags{}
	err := d.call(ctx, n, "read boot device", func(ctx context.Context, c *client.Client) error {
		return c.GetSystemBootOptionsParamFor(ctx, flags)
	})
	if err != nil {
		return driver.BootDevice{}, err
	}
	out := driver.BootDevice{Persistent: flags.Persist}
	for dev, sel := range selectors {
		if sel == flags.BootDeviceSelector {
			out.Device = dev
		}
	}
	return out, nil
}
