// The collectors, one per inventory key. Each reads procfs/sysfs through a reader (bounded, root-relative).

package inventory

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/ferric-metal/ferric/ramdisk-agent/internal/hardware"
)

// pciAddr matches a PCI device name (domain:bus:device.function), what a NIC's sysfs "device" links to.
var pciAddr = regexp.MustCompile(`^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$`)

// interfaces lists the NICs with a MAC (as hardware.NICs and the lookup see them) with IPA's details.
func (c Collector) interfaces(r reader) ([]Interface, error) {
	nics, err := hardware.Source{Root: c.Root}.NICs()
	if err != nil {
		return nil, err
	}
	addrs := c.Addrs
	if addrs == nil {
		addrs = hostAddrs
	}
	out := make([]Interface, 0, len(nics))
	// The same NICs (and MAC spelling) as the lookup: the conductor matches this inventory's MACs to the node's
	// ports, so the two must never disagree.
	for _, n := range nics {
		base := "/sys/class/net/" + n.Name
		v4, v6 := addrs(n.Name)
		ifc := Interface{Name: n.Name, MACAddress: n.MAC, IPv4Address: opt(v4), IPv6Address: opt(v6),
			HasCarrier: r.str(base+"/carrier") == "1",
			Vendor:     opt(r.str(base + "/device/vendor")), Product: opt(r.str(base + "/device/device"))}
		// speed is -1 (or unreadable: EINVAL) while the link is down; IPA then reports None too.
		if s, err := strconv.ParseInt(r.str(base+"/speed"), 10, 64); err == nil && s > 0 {
			ifc.SpeedMbps = &s
		}
		// A NIC's device/driver links to /sys/bus/<bus>/drivers/<name>; virtual NICs have no device at all.
		if l, err := os.Readlink(r.path(base + "/device/driver")); err == nil {
			ifc.Driver = opt(filepath.Base(l))
		}
		if l, err := os.Readlink(r.path(base + "/device")); err == nil && pciAddr.MatchString(filepath.Base(l)) {
			ifc.PCIAddress = opt(filepath.Base(l))
		}
		out = append(out, ifc)
	}
	return out, nil
}

// cpu reads /proc/cpuinfo (x86 "flags", arm64 "Features"), the maximum frequency from cpufreq (what lscpu's
// "CPU max MHz" is) else the current one, and the architecture from /proc/sys/kernel/arch else uname.
func (c Collector) cpu(r reader) (CPU, error) {
	cpu := CPU{Architecture: r.str("/proc/sys/kernel/arch"), Flags: []string{}}
	if cpu.Architecture == "" {
		cpu.Architecture = c.machine()
	}
	text, err := r.raw("/proc/cpuinfo")
	if err != nil {
		return cpu, fmt.Errorf("read /proc/cpuinfo: %w", err)
	}
	// cpuinfo has one blank-line-separated section per logical CPU: count them (lscpu's "CPU(s)") and their
	// distinct physical ids (its "Socket(s)"); the model and flags are the first CPU's, as lscpu shows them.
	sockets := map[string]bool{}
	for _, section := range strings.Split(text, "\n\n") {
		kv := map[string]string{}
		for _, line := range strings.Split(section, "\n") {
			k, v, ok := strings.Cut(line, ":")
			if ok {
				kv[strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(v)
			}
		}
		if _, ok := kv["processor"]; !ok {
			continue // arm64's trailing "Hardware" section, or blank
		}
		cpu.Count++
		if id, ok := kv["physical id"]; ok {
			sockets[id] = true
		}
		if cpu.Count > 1 {
			continue
		}
		cpu.ModelName = kv["model name"]
		cpu.Frequency = kv["cpu mhz"]
		for _, k := range []string{"flags", "features"} {
			if f := strings.Fields(kv[k]); len(f) > 0 {
				cpu.Flags = f
			}
		}
	}
	if cpu.Count == 0 {
		return cpu, errors.New("/proc/cpuinfo lists no processor")
	}
	// lscpu's "CPU max MHz", which IPA prefers to the current frequency (that one moves with the load).
	if khz, err := strconv.ParseInt(r.str("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq"), 10, 64); err == nil && khz > 0 {
		cpu.Frequency = fmt.Sprintf("%.4f", float64(khz)/1000)
	}
	cpu.SocketCount = len(sockets)
	if cpu.SocketCount == 0 {
		cpu.SocketCount = packages(r)
	}
	return cpu, nil
}

// packages counts the distinct physical packages of the CPUs (sockets where cpuinfo has no "physical id").
func packages(r reader) int {
	dirs, _ := filepath.Glob(r.path("/sys/devices/system/cpu/cpu[0-9]*/topology/physical_package_id"))
	seen := map[string]bool{}
	for _, p := range dirs {
		rel, _ := filepath.Rel(r.path("/"), p)
		seen[r.str("/"+rel)] = true
	}
	return len(seen)
}

func (c Collector) machine() string {
	if c.Machine != nil {
		return c.Machine()
	}
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return runtime.GOARCH
	}
	return unix.ByteSliceToString(u.Machine[:])
}

// disks converts hardware.Disks (what root device hints match against) to IPA's BlockDevice.
func (c Collector) disks(r reader) ([]Disk, error) {
	src := hardware.Source{Root: c.Root}
	if c.OnlyDisk != "" {
		src.IncludeVirtual = []string{c.OnlyDisk}
	}
	hds, err := src.Disks()
	if err != nil {
		return nil, err
	}
	if c.OnlyDisk != "" {
		hds = slices.DeleteFunc(hds, func(d hardware.Disk) bool { return d.Name != c.OnlyDisk })
		if len(hds) == 0 {
			return nil, fmt.Errorf("the configured target device %s is not a disk this machine has", c.OnlyDisk)
		}
	}
	out := make([]Disk, 0, len(hds))
	// hardware.Disks is what the deploy chooses among with root device hints: the conductor and the operator see
	// exactly the candidates (and the field values) the hints will be matched against.
	for _, d := range hds {
		ipa := Disk{Name: d.Name, Model: d.Model, Size: d.Size, Rotational: d.Rotational, WWN: opt(d.WWN),
			Serial: opt(d.Serial), Vendor: opt(d.Vendor), WWNWithExtension: opt(d.WWNWithExtension),
			WWNVendorExtension: opt(d.WWNVendorExt), HCTL: opt(d.HCTL), ByPath: opt(d.ByPath)}
		if d.LogicalSectorSize > 0 {
			ipa.LogicalSectors = &d.LogicalSectorSize
		}
		if p, err := strconv.ParseInt(r.str("/sys/block/"+filepath.Base(d.Name)+"/queue/physical_block_size"), 10, 64); err == nil && p > 0 {
			ipa.PhysicalSectors = &p
		}
		out = append(out, ipa)
	}
	return out, nil
}

// memory reads MemTotal, and the installed RAM as the memory blocks the kernel knows (IPA asks lshw for the DIMMs;
// the block count is the same figure rounded to the block size, 128 MiB on x86).
func memory(r reader) (Memory, error) {
	total, _, err := hardware.Source{Root: r.root}.Memory()
	if err != nil {
		return Memory{}, err
	}
	m := Memory{Total: total}
	bs, err := strconv.ParseInt(r.str("/sys/devices/system/memory/block_size_bytes"), 16, 64)
	if err != nil || bs <= 0 {
		return m, nil
	}
	// Every memoryN directory is one block of installed RAM (online or not); none on kernels without memory
	// hotplug support, and then physical_mb stays null rather than guessed from MemTotal.
	blocks, _ := filepath.Glob(r.path("/sys/devices/system/memory/memory[0-9]*"))
	if len(blocks) > 0 {
		mb := int64(len(blocks)) * bs >> 20
		m.PhysicalMB = &mb
	}
	return m, nil
}

// systemVendor reads DMI. product_serial is readable by root only: an agent run as another user reports "".
func systemVendor(r reader) SystemVendor {
	dmi := func(f string) string { return r.str("/sys/class/dmi/id/" + f) }
	return SystemVendor{ProductName: dmi("product_name"), SerialNumber: dmi("product_serial"),
		Manufacturer: dmi("sys_vendor"),
		Firmware:     Firmware{Vendor: dmi("bios_vendor"), Version: dmi("bios_version"), BuildDate: dmi("bios_date")}}
}

// boot says how the machine booted: UEFI when the kernel exposes /sys/firmware/efi, and the PXE NIC from the
// BOOTIF kernel argument (pxelinux/iPXE form "01-aa-bb-...", passed on unchanged as IPA does).
func boot(r reader) Boot {
	b := Boot{CurrentBootMode: "bios"}
	if st, err := os.Stat(r.path("/sys/firmware/efi")); err == nil && st.IsDir() {
		b.CurrentBootMode = "uefi"
	}
	for _, w := range strings.Fields(r.str("/proc/cmdline")) {
		if v, ok := strings.CutPrefix(w, "BOOTIF="); ok && v != "" {
			b.PXEInterface = &v
		}
	}
	return b
}
