package hardware

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func disks() []Disk {
	return []Disk{
		{Name: "/dev/nvme0n1", Size: 960 << 30, Model: "SAMSUNG MZ7L3960", Serial: "S1", WWN: "0x5002538e0000abcd", Rotational: false, HCTL: "", ByPath: "/dev/disk/by-path/pci-0000:01:00.0-nvme-1"},
		{Name: "/dev/sda", Size: 4000 << 30, Model: "ST4000NM", Vendor: "SEAGATE", Serial: "Z1", Rotational: true, HCTL: "0:0:0:0"},
		{Name: "/dev/sdb", Size: 240 << 30, Model: "INTEL SSDSC2KB24", Vendor: "ATA", Serial: "BTYF", Rotational: false, HCTL: "1:0:0:0"},
		{Name: "/dev/sdc", Size: 2 << 30, Model: "USB", Serial: "tiny"},
	}
}

func TestChoose(t *testing.T) {
	tests := []struct {
		name    string
		hints   map[string]any
		want    string
		wantErr string
	}{
		{"default smallest >= 4GiB", nil, "/dev/sdb", ""},
		{"name", map[string]any{"name": "/dev/sda"}, "/dev/sda", ""},
		{"name without /dev", map[string]any{"name": "sda"}, "/dev/sda", ""},
		{"name glob", map[string]any{"name": "/dev/nvme*"}, "/dev/nvme0n1", ""},
		{"size exact", map[string]any{"size": 240.0}, "/dev/sdb", ""},
		{"size op", map[string]any{"size": ">= 900"}, "/dev/nvme0n1", ""},
		{"size lt", map[string]any{"size": "< 100"}, "/dev/sdc", ""},
		{"model in", map[string]any{"model": "<in> intel"}, "/dev/sdb", ""},
		{"model or", map[string]any{"model": "<or> NONE <or> ST4000NM"}, "/dev/sda", ""},
		{"vendor s==", map[string]any{"vendor": "s== seagate"}, "/dev/sda", ""},
		{"serial and rotational", map[string]any{"serial": "Z1", "rotational": true}, "/dev/sda", ""},
		{"not rotational", map[string]any{"rotational": "false", "size": ">= 500"}, "/dev/nvme0n1", ""},
		{"wwn", map[string]any{"wwn": "0x5002538e0000abcd"}, "/dev/nvme0n1", ""},
		{"hctl", map[string]any{"hctl": "1:0:0:0"}, "/dev/sdb", ""},
		{"by_path", map[string]any{"by_path": "/dev/disk/by-path/pci-0000:01:00.0-nvme-1"}, "/dev/nvme0n1", ""},
		{"no match", map[string]any{"serial": "nope"}, "", "no disk matches root device hints {serial=nope}; disks seen: /dev/nvme0n1"},
		{"all must match", map[string]any{"serial": "Z1", "rotational": false}, "", "no disk matches"},
		{"unknown hint", map[string]any{"colour": "red"}, "", `root device hint "colour" is not supported`},
		{"bad size", map[string]any{"size": "big"}, "", "must be a number of GiB"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Choose(disks(), tc.hints)
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.wantErr)
				assert.ErrorIs(t, err, ErrNoDisk)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, c.Disk.Name)
			assert.NotEmpty(t, c.Reason)
		})
	}
	_, err := Choose([]Disk{{Name: "/dev/sdc", Size: 2 << 30}}, nil)
	assert.ErrorContains(t, err, "no disk of at least 4 GiB; disks seen: /dev/sdc (2 GiB")
}

// TestSysfs reads a fake sysfs/procfs tree with the real layout.
func TestSysfs(t *testing.T) {
	root := t.TempDir()
	write := func(p, v string) {
		require.NoError(t, os.MkdirAll(filepath.Join(root, filepath.Dir(p)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(root, p), []byte(v+"\n"), 0o644))
	}
	write("/sys/block/vda/size", "41943040")
	write("/sys/block/vda/queue/logical_block_size", "512")
	write("/sys/block/vda/queue/rotational", "1")
	write("/sys/block/vda/serial", "ferric-disk-0")
	write("/sys/block/loop0/size", "2097152")
	write("/sys/block/zram0/size", "100")
	write("/proc/meminfo", "MemTotal:        2048000 kB\nMemFree:          1000 kB\nMemAvailable:    1500000 kB")
	write("/sys/class/net/lo/address", "00:00:00:00:00:00")
	write("/sys/class/net/eth0/address", "52:54:00:AB:CD:EF")
	inv, err := Source{Root: root}.Inventory()
	require.NoError(t, err)
	require.Len(t, inv.Disks, 1, "loop and zram devices are skipped")
	assert.Equal(t, Disk{Name: "/dev/vda", Size: 20 << 30, Serial: "ferric-disk-0", Rotational: true, LogicalSectorSize: 512}, inv.Disks[0])
	assert.Equal(t, int64(2048000)<<10, inv.MemoryBytes)
	assert.Equal(t, int64(1500000)<<10, inv.AvailableBytes)
	assert.Equal(t, []NIC{{Name: "eth0", MAC: "52:54:00:ab:cd:ef"}}, inv.NICs)
	inv, err = Source{Root: root, IncludeVirtual: []string{"/dev/loop0"}}.Inventory()
	require.NoError(t, err)
	assert.Len(t, inv.Disks, 2, "a loop device is considered when asked for")
}
