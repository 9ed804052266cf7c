// Package hardware owns what the agent learns about its machine from sysfs and procfs: disks, memory and NICs,
// and the choice of the install disk by Ironic's root device hints.
package hardware

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Disk is a block device.
type Disk struct {
	Name              string `json:"name"` // /dev/vda
	Size              int64  `json:"size"` // bytes
	Model             string `json:"model"`
	Vendor            string `json:"vendor"`
	Serial            string `json:"serial"`
	WWN               string `json:"wwn"`
	WWNWithExtension  string `json:"wwn_with_extension"`
	WWNVendorExt      string `json:"wwn_vendor_extension"`
	Rotational        bool   `json:"rotational"`
	HCTL              string `json:"hctl"`
	ByPath            string `json:"by_path"`
	LogicalSectorSize int64  `json:"logical_sector_size"`
}

// NIC is a network interface.
type NIC struct {
	Name string `json:"name"`
	MAC  string `json:"mac_address"`
}

// Inventory is the machine as the agent sees it.
type Inventory struct {
	Disks       []Disk `json:"disks"`
	MemoryBytes int64  `json:"memory_bytes"`
	// AvailableBytes is MemAvailable: what a tmpfs pull may use.
	AvailableBytes int64 `json:"available_bytes"`
	NICs           []NIC `json:"interfaces"`
}

// Source reads the machine; Root prefixes /sys, /proc and /dev (tests point it at a fake tree).
type Source struct {
	Root string
	// IncludeVirtual lists extra block devices to consider (loop devices for development and tests).
	IncludeVirtual []string
}

func (s Source) path(p string) string { return filepath.Join(s.Root, p) }

func (s Source) read(p string) string {
	b, err := os.ReadFile(s.path(p))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// skipDisk reports devices that are never install targets.
func skipDisk(name string) bool {
	for _, p := range []string{"loop", "ram", "zram", "sr", "fd", "dm-", "md", "nbd"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// Disks lists the block devices.
func (s Source) Disks() ([]Disk, error) {
	entries, err := os.ReadDir(s.path("/sys/block"))
	if err != nil {
		return nil, fmt.Errorf("read /sys/block: %w", err)
	}
	extra := map[string]bool{}
	for _, d := range s.IncludeVirtual {
		extra[strings.TrimPrefix(d, "/dev/")] = true
	}
	byPath := s.links("/dev/disk/by-path")
	var out []Disk
	for _, e := range entries {
		name := e.Name()
		if skipDisk(name) && !extra[name] {
			continue
		}
		base := "/sys/block/" + name
		sectors, _ := strconv.ParseInt(s.read(base+"/size"), 10, 64)
		if sectors == 0 {
			continue
		}
		lss, _ := strconv.ParseInt(s.read(base+"/queue/logical_block_size"), 10, 64)
		d := Disk{Name: "/dev/" + name, Size: sectors * 512, Model: s.read(base + "/device/model"),
			Vendor: s.read(base + "/device/vendor"), Serial: s.read(base + "/serial"),
			Rotational: s.read(base+"/queue/rotational") == "1", LogicalSectorSize: lss, ByPath: byPath[name]}
		if d.Serial == "" {
			d.Serial = s.read(base + "/device/serial")
		}
		if wwid := s.read(base + "/device/wwid"); wwid != "" {
			d.WWNWithExtension = strings.TrimPrefix(strings.TrimPrefix(wwid, "naa."), "eui.")
			d.WWN = d.WWNWithExtension
			if len(d.WWN) > 16 {
				d.WWN, d.WWNVendorExt = "0x"+d.WWN[:16], "0x"+d.WWN[16:]
			} else {
				d.WWN = "0x" + d.WWN
			}
			d.WWNWithExtension = "0x" + d.WWNWithExtension
		}
		if link, err := os.Readlink(s.path(base + "/device")); err == nil && strings.Contains(link, ":") {
			d.HCTL = filepath.Base(link) // SCSI devices link to their H:C:T:L
		}
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// links maps device names to the by-path link names pointing at them.
func (s Source) links(dir string) map[string]string {
	out := map[string]string{}
	entries, err := os.ReadDir(s.path(dir))
	if err != nil {
		return out
	}
	for _, e := range entries {
		target, err := os.Readlink(s.path(filepath.Join(dir, e.Name())))
		if err == nil {
			out[filepath.Base(target)] = filepath.Join(dir, e.Name())
		}
	}
	return out
}

// Memory returns MemTotal and MemAvailable in bytes.
func (s Source) Memory() (total, available int64, err error) {
	b, err := os.ReadFile(s.path("/proc/meminfo"))
	if err != nil {
		return 0, 0, fmt.Errorf("read meminfo: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "MemTotal:":
			total = kb << 10
		case "MemAvailable:":
			available = kb << 10
		}
	}
	if total == 0 {
		return 0, 0, errors.New("meminfo has no MemTotal")
	}
	return total, available, nil
}

// NICs lists the physical interfaces with their MACs (loopback and MAC-less interfaces skipped).
func (s Source) NICs() ([]NIC, error) {
	entries, err := os.ReadDir(s.path("/sys/class/net"))
	if err != nil {
		return nil, fmt.Errorf("read /sys/class/net: %w", err)
	}
	var out []NIC
	for _, e := range entries {
		mac := s.read("/sys/class/net/" + e.Name() + "/address")
		if hw, err := net.ParseMAC(mac); err != nil || e.Name() == "lo" || hw.String() == "00:00:00:00:00:00" {
			continue
		}
		out = append(out, NIC{Name: e.Name(), MAC: strings.ToLower(mac)})
	}
	return out, nil
}

// Inventory reads everything.
func (s Source) Inventory() (*Inventory, error) {
	disks, err := s.Disks()
	if err != nil {
		return nil, err
	}
	total, avail, err := s.Memory()
	if err != nil {
		return nil, err
	}
	nics, err := s.NICs()
	if err != nil {
		return nil, err
	}
	return &Inventory{Disks: disks, MemoryBytes: total, AvailableBytes: avail, NICs: nics}, nil
}
