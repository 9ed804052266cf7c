package driver

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestInventoryProperties: the properties Ironic sets, from an in-band (decoded JSON) or Redfish (Go values)
// inventory; what is missing is named.
func TestInventoryProperties(t *testing.T) {
	tests := []struct {
		name        string
		inv, plugin map[string]any
		want        map[string]any
		missing     []string
	}{
		{"in-band: physical_mb, root_disk wins over the biggest disk",
			map[string]any{"cpu": map[string]any{"count": float64(4), "architecture": "x86_64"},
				"memory": map[string]any{"total": float64(3 << 30), "physical_mb": float64(4096)},
				"disks":  []any{map[string]any{"size": float64(100 << 30)}, map[string]any{"size": float64(20 << 30)}}},
			map[string]any{"root_disk": map[string]any{"size": float64(20 << 30)}},
			map[string]any{"cpus": 4, "cpu_arch": "x86_64", "memory_mb": 4096, "local_gb": 19}, nil},
		{"in-band without DIMM data: MemTotal; no root disk: the biggest",
			map[string]any{"cpu": map[string]any{"count": float64(1), "architecture": "aarch64"},
				"memory": map[string]any{"total": float64(2000 << 20), "physical_mb": nil},
				"disks":  []any{map[string]any{"size": float64(8 << 30)}, map[string]any{"size": float64(50 << 30)}}},
			nil, map[string]any{"cpus": 1, "cpu_arch": "aarch64", "memory_mb": 2000, "local_gb": 49}, nil},
		{"redfish shapes, diskless",
			map[string]any{"cpu": map[string]any{"count": 2, "architecture": "x86_64"},
				"memory": map[string]any{"physical_mb": 1024, "total": int64(1024) << 20}, "disks": []map[string]any{}},
			nil, map[string]any{"cpus": 2, "cpu_arch": "x86_64", "memory_mb": 1024, "local_gb": 0}, nil},
		{"nothing known", map[string]any{}, nil, map[string]any{"local_gb": 0}, []string{"cpus", "memory_mb", "cpu_arch"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			props, missing, err := InventoryProperties(tc.inv, tc.plugin)
			require.NoError(t, err)
			assert.Equal(t, tc.want, props)
			assert.Equal(t, tc.missing, missing)
		})
	}
	_, _, err := InventoryProperties(map[string]any{"cpu": "four"}, nil)
	assert.ErrorIs(t, err, ErrInvalid, "an inventory not in IPA's shape is refused")
}

// TestInventoryPorts: Ironic's add_ports and validate-interfaces rules.
func TestInventoryPorts(t *testing.T) {
	inv := map[string]any{
		"interfaces": []any{
			map[string]any{"name": "eth0", "mac_address": "52:54:00:00:00:01"},
			map[string]any{"name": "eth1", "mac_address": "52:54:00:00:00:02", "ipv4_address": "192.0.2.2"},
			map[string]any{"name": "lo", "mac_address": "00:00:00:00:00:00"},
			map[string]any{"name": "eth2", "mac_address": "not-a-mac"},
			map[string]any{"name": "eth3", "mac_address": "52:54:00:00:00:03", "enabled": false},
			map[string]any{"name": "eth4", "mac_address": "52:54:00:00:00:01"}, // duplicate
		},
	}
	withPXE := func(p string) map[string]any {
		c := map[string]any{"interfaces": inv["interfaces"], "boot": map[string]any{"pxe_interface": p}}
		return c
	}
	tests := []struct {
		name     string
		inv      map[string]any
		addPorts string
		want     []string
		wantPXE  map[string]bool
	}{
		{"all", inv, AddPortsAll, []string{"52:54:00:00:00:01", "52:54:00:00:00:02"},
			map[string]bool{"52:54:00:00:00:01": true, "52:54:00:00:00:02": true}},
		{"pxe unknown: every NIC", inv, AddPortsPXE, []string{"52:54:00:00:00:01", "52:54:00:00:00:02"},
			map[string]bool{"52:54:00:00:00:01": true, "52:54:00:00:00:02": true}},
		{"pxe known (pxelinux form): that NIC", withPXE("01-52-54-00-00-00-02"), AddPortsPXE, []string{"52:54:00:00:00:02"},
			map[string]bool{"52:54:00:00:00:02": true}},
		{"all with pxe known: every NIC, one PXE", withPXE("52:54:00:00:00:02"), AddPortsAll,
			[]string{"52:54:00:00:00:01", "52:54:00:00:00:02"}, map[string]bool{"52:54:00:00:00:01": false, "52:54:00:00:00:02": true}},
		{"none", inv, AddPortsNone, nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			macs, pxe, err := InventoryPorts(tc.inv, tc.addPorts)
			require.NoError(t, err)
			assert.Equal(t, tc.want, macs)
			assert.Equal(t, tc.wantPXE, pxe)
		})
	}
}
