// Package inventory owns the hardware inventory the agent reports for in-band inspection, in the shape
// ironic-python-agent's list_hardware_info gives it (cpu, memory, disks, interfaces, system_vendor, boot, bmc
// addresses, hostname), and the plugin data IPA's "default" collector adds beside it (root_disk, boot_interface,
// configuration, error). It reads only procfs and sysfs under an injectable root, never runs a tool, and never
// fails because one field is unreadable: that field stays empty (null) and the reason is logged.
package inventory

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/sirupsen/logrus"

	"github.com/ferric-metal/ferric/ramdisk-agent/internal/hardware"
)

// Unknown BMC addresses, as IPA reports them when ipmitool cannot read the BMC (the ramdisk has no ipmitool).
const (
	UnknownBMCv4 = "0.0.0.0"
	UnknownBMCv6 = "::/0"
)

// maxFile bounds every read: /proc/cpuinfo of a 512-thread machine is under 1 MiB.
const maxFile = 4 << 20

// Inventory is IPA's inventory dict; the JSON key names are IPA's.
type Inventory struct {
	Interfaces   []Interface  `json:"interfaces"`
	CPU          CPU          `json:"cpu"`
	Disks        []Disk       `json:"disks"`
	Memory       Memory       `json:"memory"`
	BMCAddress   string       `json:"bmc_address"`
	BMCv6Address string       `json:"bmc_v6address"`
	SystemVendor SystemVendor `json:"system_vendor"`
	Boot         Boot         `json:"boot"`
	Hostname     string       `json:"hostname"`
	// BMCMAC is omitted when unknown, as IPA omits it.
	BMCMAC string `json:"bmc_mac,omitempty"`
}

// Interface is one NIC (IPA's NetworkInterface). Pointers are null when unknown, as IPA's None.
type Interface struct {
	Name        string  `json:"name"`
	MACAddress  string  `json:"mac_address"`
	IPv4Address *string `json:"ipv4_address"`
	IPv6Address *string `json:"ipv6_address"`
	HasCarrier  bool    `json:"has_carrier"`
	LLDP        any     `json:"lldp"` // IPA collects LLDP only when asked (collect_lldp): null
	Vendor      *string `json:"vendor"`
	Product     *string `json:"product"`
	ClientID    *string `json:"client_id"`   // InfiniBand only
	BIOSDevName *string `json:"biosdevname"` // needs the biosdevname tool: null
	SpeedMbps   *int64  `json:"speed_mbps"`
	PCIAddress  *string `json:"pci_address"`
	Driver      *string `json:"driver"`
}

// CPU is IPA's CPU: frequency is a string of MHz as lscpu prints it ("3400.0000").
type CPU struct {
	ModelName    string   `json:"model_name"`
	Frequency    string   `json:"frequency"`
	Count        int      `json:"count"`
	Architecture string   `json:"architecture"`
	Flags        []string `json:"flags"`
	SocketCount  int      `json:"socket_count"`
}

// Memory is IPA's Memory: total in bytes (MemTotal), physical_mb the installed RAM in MiB (null when unknown).
type Memory struct {
	Total      int64  `json:"total"`
	PhysicalMB *int64 `json:"physical_mb"`
}

// Disk is IPA's BlockDevice with the fields root device hints match on.
type Disk struct {
	Name               string  `json:"name"`
	Model              string  `json:"model"`
	Size               int64   `json:"size"`
	Rotational         bool    `json:"rotational"`
	WWN                *string `json:"wwn"`
	Serial             *string `json:"serial"`
	Vendor             *string `json:"vendor"`
	WWNWithExtension   *string `json:"wwn_with_extension"`
	WWNVendorExtension *string `json:"wwn_vendor_extension"`
	HCTL               *string `json:"hctl"`
	ByPath             *string `json:"by_path"`
	LogicalSectors     *int64  `json:"logical_sectors"`
	PhysicalSectors    *int64  `json:"physical_sectors"`
	Tran               *string `json:"tran"` // lsblk's transport; not derived from sysfs: null
}

// SystemVendor is IPA's SystemVendorInfo, read from DMI (/sys/class/dmi/id).
type SystemVendor struct {
	ProductName  string   `json:"product_name"`
	SerialNumber string   `json:"serial_number"`
	Manufacturer string   `json:"manufacturer"`
	Firmware     Firmware `json:"firmware"`
}

// Firmware is IPA's SystemFirmware (the BIOS/UEFI vendor, version and date).
type Firmware struct {
	Vendor    string `json:"vendor"`
	Version   string `json:"version"`
	BuildDate string `json:"build_date"`
}

// Boot is IPA's BootInfo: "uefi" or "bios", and the BOOTIF the machine PXE-booted from (null otherwise).
type Boot struct {
	CurrentBootMode string  `json:"current_boot_mode"`
	PXEInterface    *string `json:"pxe_interface"`
}

// Data is the body of POST /v1/continue_inspection: the inventory plus the plugin data IPA's default collector
// sends. Ironic stores every key but "inventory" as plugin_data, so nothing secret may ever be added here.
type Data struct {
	Inventory     *Inventory     `json:"inventory"`
	RootDisk      *Disk          `json:"root_disk,omitempty"` // the disk a deploy without hints would use
	BootInterface *string        `json:"boot_interface"`
	Configuration map[string]any `json:"configuration"`
	Error         *string        `json:"error"` // what could not be read, or null
}

// Collector reads the machine. The zero value reads the real host.
type Collector struct {
	// Root prefixes /proc, /sys and /dev (tests point it at a fake tree).
	Root string
	// Addrs returns an interface's first IPv4 and IPv6 address ("" when none); default: the kernel's (net package).
	Addrs func(iface string) (v4, v6 string)
	// Machine is uname's machine when /proc/sys/kernel/arch is unreadable; default: uname(2).
	Machine func() string
	// Version names the agent in configuration.managers.
	Version string
	// OnlyDisk, when set, is the one disk reported (a local agent's configured target device, often a loop
	// device the disk scan skips): an agent that stands in for a machine on a shared host must not report the
	// host's own disks as the machine's, or local_gb and the root disk would describe the host.
	OnlyDisk string
}

// Collect reads the inventory. It fails only when ctx ends; every unreadable field is logged and left empty, and
// the fields that matter to the conductor (interfaces, disks, memory, cpu) are named in Data.Error.
func (c Collector) Collect(ctx context.Context, log *logrus.Entry) (*Data, error) {
	r := reader{root: c.Root, log: log}
	inv := &Inventory{BMCAddress: UnknownBMCv4, BMCv6Address: UnknownBMCv6}
	var failures []string
	steps := []struct {
		name string
		run  func() error
	}{
		{"interfaces", func() (err error) { inv.Interfaces, err = c.interfaces(r); return }},
		{"cpu", func() (err error) { inv.CPU, err = c.cpu(r); return }},
		{"disks", func() (err error) { inv.Disks, err = c.disks(r); return }},
		{"memory", func() (err error) { inv.Memory, err = memory(r); return }},
		{"system_vendor", func() error { inv.SystemVendor = systemVendor(r); return nil }},
		{"boot", func() error { inv.Boot = boot(r); return nil }},
		{"hostname", func() error { inv.Hostname = r.str("/proc/sys/kernel/hostname"); return nil }},
	}
	for _, s := range steps {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("inventory collection stopped before %s: %w", s.name, err)
		}
		if err := s.run(); err != nil {
			log.WithError(err).WithField("field", s.name).Warn("inventory field not collected")
			failures = append(failures, fmt.Sprintf("%s: %v", s.name, err))
		}
	}
	// Lists are [] rather than null when unreadable: the shape stays IPA's, and the conductor's schema check names
	// the empty list.
	if inv.Interfaces == nil {
		inv.Interfaces = []Interface{}
	}
	if inv.Disks == nil {
		inv.Disks = []Disk{}
	}
	d := &Data{Inventory: inv, BootInterface: inv.Boot.PXEInterface,
		Configuration: map[string]any{"collectors": []string{"default"},
			"managers": []map[string]string{{"name": "generic_hardware_manager", "version": "1.2"}}, "agent": c.Version}}
	if c.OnlyDisk != "" && len(inv.Disks) == 1 {
		d.RootDisk = &inv.Disks[0] // the configured device is the install disk, whatever its size (as targetDisk)
	} else if ch, err := hardware.Choose(toHardware(inv.Disks), nil); err == nil {
		for i := range inv.Disks {
			if inv.Disks[i].Name == ch.Disk.Name {
				d.RootDisk = &inv.Disks[i]
			}
		}
	} else {
		log.WithError(err).Warn("no default root disk for the inspection data")
	}
	if len(failures) > 0 {
		msg := "The following errors were encountered:\n* " + strings.Join(failures, "\n* ")
		d.Error = &msg
	}
	return d, nil
}

// toHardware converts back for hardware.Choose, so the root disk reported is the one a deploy would pick.
func toHardware(ds []Disk) []hardware.Disk {
	out := make([]hardware.Disk, 0, len(ds))
	for _, d := range ds {
		out = append(out, hardware.Disk{Name: d.Name, Size: d.Size, Model: d.Model, Rotational: d.Rotational})
	}
	return out
}

// reader reads small files under root, bounded; a missing file is normal (debug), others are worth a warning.
type reader struct {
	root string
	log  *logrus.Entry
}

func (r reader) path(p string) string { return filepath.Join(r.root, p) }

// raw reads a file, at most maxFile bytes.
func (r reader) raw(p string) (string, error) {
	f, err := os.Open(r.path(p))
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxFile))
	return string(b), err
}

// str reads a one-value file, trimmed; "" when unreadable (logged).
func (r reader) str(p string) string {
	s, err := r.raw(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.EINVAL) {
			// absent, or EINVAL: sysfs's answer for carrier and speed of a link that is down
			r.log.WithError(err).WithField("path", p).Debug("inventory: file absent or not applicable")
		} else {
			r.log.WithError(err).WithField("path", p).Warn("inventory: file unreadable; field left empty")
		}
		return ""
	}
	return strings.TrimSpace(s)
}

// opt is a pointer to s, or nil for "" (IPA's None).
func opt(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// hostAddrs is the default Addrs: the first global-or-link-local address of each family, as IPA's netutils does.
func hostAddrs(iface string) (v4, v6 string) {
	ifc, err := net.InterfaceByName(iface)
	if err != nil {
		return "", ""
	}
	addrs, err := ifc.Addrs()
	if err != nil {
		return "", ""
	}
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		if ipn.IP.To4() != nil {
			if v4 == "" {
				v4 = ipn.IP.String()
			}
		} else if v6 == "" {
			v6 = ipn.IP.String()
		}
	}
	return v4, v6
}
