package inventory

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const cpuinfo = `processor	: 0
vendor_id	: GenuineIntel
model name	: Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz
cpu MHz		: 2000.000
physical id	: 0
flags		: fpu vme de pse tsc msr pae mce vmx avx2

processor	: 1
model name	: Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz
cpu MHz		: 1800.000
physical id	: 1
flags		: fpu vme de pse tsc msr pae mce vmx avx2

`

// fakeTree builds a realistic machine: two PCI NICs (one with link), an SSD on NVMe with a WWN and a rotational
// SCSI disk, DMI, UEFI, a BOOTIF, 4 GiB of memory blocks.
func fakeTree(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	file := func(p, content string) {
		full := filepath.Join(root, p)
		require.NoError(t, os.MkdirAll(filepath.Dir(full), 0o755))
		require.NoError(t, os.WriteFile(full, []byte(content+"\n"), 0o644))
	}
	link := func(p, target string) {
		full := filepath.Join(root, p)
		require.NoError(t, os.MkdirAll(filepath.Dir(full), 0o755))
		require.NoError(t, os.Symlink(target, full))
	}
	file("/proc/cpuinfo", cpuinfo)
	file("/proc/meminfo", "MemTotal:       3993520 kB\nMemFree:  100 kB\nMemAvailable:   3500000 kB")
	file("/proc/sys/kernel/arch", "x86_64")
	file("/proc/sys/kernel/hostname", "node-7")
	file("/proc/cmdline", "console=ttyS0 BOOTIF=01-52-54-00-12-34-01 ipa-api-url=http://x")
	file("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq", "3200000")
	file("/sys/devices/system/memory/block_size_bytes", "8000000") // 128 MiB, hex
	for i := 0; i < 32; i++ {
		require.NoError(t, os.MkdirAll(filepath.Join(root, "/sys/devices/system/memory", "memory"+strconv.Itoa(i)), 0o755))
	}
	require.NoError(t, os.MkdirAll(filepath.Join(root, "/sys/firmware/efi"), 0o755))
	for k, v := range map[string]string{"product_name": "PowerEdge R650", "product_serial": "7XYZ123",
		"sys_vendor": "Dell Inc.", "bios_vendor": "Dell Inc.", "bios_version": "1.6.5", "bios_date": "04/15/2022"} {
		file("/sys/class/dmi/id/"+k, v)
	}
	// NICs: eno1 with link at 25 Gb/s, eno2 down (speed -1); lo is skipped.
	for _, n := range []struct{ name, mac, carrier, speed, pci string }{
		{"eno1", "52:54:00:12:34:01", "1", "25000", "0000:31:00.0"},
		{"eno2", "52:54:00:12:34:02", "0", "-1", "0000:31:00.1"},
	} {
		file("/sys/class/net/"+n.name+"/address", n.mac)
		file("/sys/class/net/"+n.name+"/carrier", n.carrier)
		file("/sys/class/net/"+n.name+"/speed", n.speed)
		dev := "/sys/devices/pci0000:30/" + n.pci
		file(dev+"/vendor", "0x8086")
		file(dev+"/device", "0x159b")
		require.NoError(t, os.MkdirAll(filepath.Join(root, "/sys/bus/pci/drivers/ice"), 0o755))
		link(dev+"/driver", filepath.Join(root, "/sys/bus/pci/drivers/ice"))
		link("/sys/class/net/"+n.name+"/device", filepath.Join(root, dev))
	}
	file("/sys/class/net/lo/address", "00:00:00:00:00:00")
	// Disks: nvme0n1 (SSD, 960 GB, WWN with vendor extension) and sda (HDD, 4 TB, SCSI H:C:T:L).
	file("/sys/block/nvme0n1/size", "1875385008")
	file("/sys/block/nvme0n1/queue/rotational", "0")
	file("/sys/block/nvme0n1/queue/logical_block_size", "512")
	file("/sys/block/nvme0n1/queue/physical_block_size", "4096")
	file("/sys/block/nvme0n1/device/model", "SAMSUNG MZQL2960HCJR")
	file("/sys/block/nvme0n1/serial", "S64FNE0R800123")
	file("/sys/block/nvme0n1/device/wwid", "eui.36344630528001230025384500000001")
	file("/sys/block/sda/size", "7814037168")
	file("/sys/block/sda/queue/rotational", "1")
	file("/sys/block/sda/queue/logical_block_size", "512")
	file("/sys/block/sda/queue/physical_block_size", "4096")
	file("/sys/devices/pci0000:00/host0/target0:0:0/0:0:0:0/model", "ST4000NM0035")
	file("/sys/devices/pci0000:00/host0/target0:0:0/0:0:0:0/vendor", "SEAGATE")
	file("/sys/devices/pci0000:00/host0/target0:0:0/0:0:0:0/wwid", "naa.5000c500a1b2c3d4")
	link("/sys/block/sda/device", filepath.Join(root, "/sys/devices/pci0000:00/host0/target0:0:0/0:0:0:0"))
	file("/sys/block/sda/device/serial", "ZC1A2B3C")
	link("/dev/disk/by-path/pci-0000:00:17.0-ata-1", "../../sda")
	file("/sys/block/loop0/size", "1000") // never an inventory disk
	return root
}

func quiet() *logrus.Entry {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return logrus.NewEntry(l)
}

func addrs(iface string) (string, string) {
	if iface == "eno1" {
		return "192.0.2.10", "fe80::5054:ff:fe12:3401"
	}
	return "", ""
}

// TestCollectGolden compares the JSON of a collection of the fake tree with IPA's key names and values, field by field.
func TestCollectGolden(t *testing.T) {
	root := fakeTree(t)
	d, err := Collector{Root: root, Addrs: addrs, Version: "ferric-agent test"}.Collect(context.Background(), quiet())
	require.NoError(t, err)
	b, err := json.Marshal(d)
	require.NoError(t, err)
	var got map[string]any
	require.NoError(t, json.Unmarshal(b, &got))
	var want map[string]any
	require.NoError(t, json.Unmarshal([]byte(golden), &want))
	for _, k := range []string{"inventory", "root_disk", "boot_interface", "configuration", "error"} {
		require.Contains(t, got, k)
	}
	inv, wantInv := got["inventory"].(map[string]any), want["inventory"].(map[string]any)
	assert.ElementsMatch(t, keys(wantInv), keys(inv), "inventory keys are IPA's")
	for _, k := range keys(wantInv) {
		assert.Equal(t, wantInv[k], inv[k], "inventory.%s", k)
	}
	for _, k := range []string{"root_disk", "boot_interface", "error"} {
		assert.Equal(t, want[k], got[k], k)
	}
}

func keys(m map[string]any) []string {
	out := []string{}
	for k := range m {
		out = append(out, k)
	}
	return out
}

// golden is what IPA sends for the fake machine (values of its lscpu/psutil/lsblk on such a box; physical_mb from
// 32 blocks of 128 MiB; no ipmitool: the unknown BMC addresses).
const golden = `{
 "inventory": {
  "interfaces": [
   {"name": "eno1", "mac_address": "52:54:00:12:34:01", "ipv4_address": "192.0.2.10", "ipv6_address": "fe80::5054:ff:fe12:3401",
    "has_carrier": true, "lldp": null, "vendor": "0x8086", "product": "0x159b", "client_id": null, "biosdevname": null,
    "speed_mbps": 25000, "pci_address": "0000:31:00.0", "driver": "ice"},
   {"name": "eno2", "mac_address": "52:54:00:12:34:02", "ipv4_address": null, "ipv6_address": null,
    "has_carrier": false, "lldp": null, "vendor": "0x8086", "product": "0x159b", "client_id": null, "biosdevname": null,
    "speed_mbps": null, "pci_address": "0000:31:00.1", "driver": "ice"}
  ],
  "cpu": {"model_name": "Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz", "frequency": "3200.0000", "count": 2,
   "architecture": "x86_64", "flags": ["fpu", "vme", "de", "pse", "tsc", "msr", "pae", "mce", "vmx", "avx2"], "socket_count": 2},
  "disks": [
   {"name": "/dev/nvme0n1", "model": "SAMSUNG MZQL2960HCJR", "size": 960197124096, "rotational": false,
    "wwn": "0x3634463052800123", "serial": "S64FNE0R800123", "vendor": null,
    "wwn_with_extension": "0x36344630528001230025384500000001", "wwn_vendor_extension": "0x0025384500000001",
    "hctl": null, "by_path": null, "logical_sectors": 512, "physical_sectors": 4096, "tran": null},
   {"name": "/dev/sda", "model": "ST4000NM0035", "size": 4000787030016, "rotational": true,
    "wwn": "0x5000c500a1b2c3d4", "serial": "ZC1A2B3C", "vendor": "SEAGATE",
    "wwn_with_extension": "0x5000c500a1b2c3d4", "wwn_vendor_extension": null,
    "hctl": "0:0:0:0", "by_path": "/dev/disk/by-path/pci-0000:00:17.0-ata-1", "logical_sectors": 512, "physical_sectors": 4096, "tran": null}
  ],
  "memory": {"total": 4089364480, "physical_mb": 4096},
  "bmc_address": "0.0.0.0",
  "bmc_v6address": "::/0",
  "system_vendor": {"product_name": "PowerEdge R650", "serial_number": "7XYZ123", "manufacturer": "Dell Inc.",
   "firmware": {"vendor": "Dell Inc.", "version": "1.6.5", "build_date": "04/15/2022"}},
  "boot": {"current_boot_mode": "uefi", "pxe_interface": "01-52-54-00-12-34-01"},
  "hostname": "node-7"
 },
 "root_disk": {"name": "/dev/nvme0n1", "model": "SAMSUNG MZQL2960HCJR", "size": 960197124096, "rotational": false,
    "wwn": "0x3634463052800123", "serial": "S64FNE0R800123", "vendor": null,
    "wwn_with_extension": "0x36344630528001230025384500000001", "wwn_vendor_extension": "0x0025384500000001",
    "hctl": null, "by_path": null, "logical_sectors": 512, "physical_sectors": 4096, "tran": null},
 "boot_interface": "01-52-54-00-12-34-01",
 "error": null
}`

// TestCollectDegrades breaks one part of the tree at a time: the field is left empty, the rest is collected,
// and Data.Error names what is missing when the conductor needs it.
func TestCollectDegrades(t *testing.T) {
	tests := []struct {
		name      string
		remove    string
		wantError string // substring of Data.Error; "" = none
		check     func(t *testing.T, inv *Inventory)
	}{
		{"no cpuinfo", "/proc/cpuinfo", "cpu:", func(t *testing.T, inv *Inventory) {
			assert.Zero(t, inv.CPU.Count)
			assert.Equal(t, "x86_64", inv.CPU.Architecture)
			assert.Len(t, inv.Disks, 2)
		}},
		{"no DMI", "/sys/class/dmi", "", func(t *testing.T, inv *Inventory) {
			assert.Equal(t, SystemVendor{}, inv.SystemVendor)
			assert.Len(t, inv.Interfaces, 2)
		}},
		{"no block devices", "/sys/block", "disks:", func(t *testing.T, inv *Inventory) {
			assert.Empty(t, inv.Disks)
			assert.Equal(t, 2, inv.CPU.Count)
		}},
		{"no meminfo", "/proc/meminfo", "memory:", func(t *testing.T, inv *Inventory) {
			assert.Zero(t, inv.Memory.Total)
		}},
		{"no EFI", "/sys/firmware/efi", "", func(t *testing.T, inv *Inventory) {
			assert.Equal(t, "bios", inv.Boot.CurrentBootMode)
		}},
		{"no memory blocks", "/sys/devices/system/memory", "", func(t *testing.T, inv *Inventory) {
			assert.Nil(t, inv.Memory.PhysicalMB)
			assert.Equal(t, int64(4089364480), inv.Memory.Total)
		}},
		{"no net class", "/sys/class/net", "interfaces:", func(t *testing.T, inv *Inventory) {
			assert.Empty(t, inv.Interfaces)
			assert.Equal(t, "node-7", inv.Hostname)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := fakeTree(t)
			require.NoError(t, os.RemoveAll(filepath.Join(root, tc.remove)))
			d, err := Collector{Root: root, Addrs: addrs, Machine: func() string { return "x86_64" }}.Collect(context.Background(), quiet())
			require.NoError(t, err)
			if tc.wantError == "" {
				assert.Nil(t, d.Error)
			} else {
				require.NotNil(t, d.Error)
				assert.Contains(t, *d.Error, tc.wantError)
			}
			tc.check(t, d.Inventory)
		})
	}
}

func TestCollectStopsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Collector{Root: fakeTree(t)}.Collect(ctx, quiet())
	require.ErrorIs(t, err, context.Canceled)
}

func TestCPUArchFallsBackToUname(t *testing.T) {
	root := fakeTree(t)
	require.NoError(t, os.Remove(filepath.Join(root, "/proc/sys/kernel/arch")))
	require.NoError(t, os.Remove(filepath.Join(root, "/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq")))
	d, err := Collector{Root: root, Addrs: addrs, Machine: func() string { return "aarch64" }}.Collect(context.Background(), quiet())
	require.NoError(t, err)
	assert.Equal(t, "aarch64", d.Inventory.CPU.Architecture)
	assert.Equal(t, "2000.000", d.Inventory.CPU.Frequency, "current MHz when cpufreq has no maximum")
}

// TestCollectOnlyDisk: a local agent standing in for a machine reports its configured device as the machine's only
// disk (and root disk), never the host's; a device the machine lacks is named in Data.Error.
func TestCollectOnlyDisk(t *testing.T) {
	root := fakeTree(t)
	d, err := Collector{Root: root, Addrs: addrs, OnlyDisk: "/dev/sda"}.Collect(context.Background(), quiet())
	require.NoError(t, err)
	require.Len(t, d.Inventory.Disks, 1)
	assert.Equal(t, "/dev/sda", d.Inventory.Disks[0].Name)
	require.NotNil(t, d.RootDisk)
	assert.Equal(t, "/dev/sda", d.RootDisk.Name)

	d, err = Collector{Root: root, Addrs: addrs, OnlyDisk: "/dev/loop9"}.Collect(context.Background(), quiet())
	require.NoError(t, err)
	assert.Empty(t, d.Inventory.Disks)
	require.NotNil(t, d.Error)
	assert.Contains(t, *d.Error, "the configured target device /dev/loop9 is not a disk this machine has")
}
