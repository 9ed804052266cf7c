package driver

// What the conductor makes of a hardware inventory, whichever way it was collected (Redfish out-of-band, or the
// agent in-band through POST /v1/continue_inspection): the node properties Ironic sets from it (cpus, memory_mb,
// local_gb, cpu_arch), the ports inspection creates (Ironic's [inspector]add_ports) and the stored inventory. Both
// inspect interfaces go through ApplyInventory, so a node looks the same whichever interface inspected it.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// Port policies of --inspect-add-ports, after Ironic's [inspector]add_ports.
const (
	AddPortsAll  = "all"
	AddPortsPXE  = "pxe"
	AddPortsNone = "none"
)

// ParseAddPorts checks an --inspect-add-ports value ("" is the default, pxe).
func ParseAddPorts(v string) (string, error) {
	switch v {
	case AddPortsAll, AddPortsPXE, AddPortsNone:
		return v, nil
	case "":
		return AddPortsPXE, nil
	}
	return "", fmt.Errorf("--inspect-add-ports %q is not one of all, pxe, none", v)
}

// InventoryStore is what inspection writes besides the node: ports and the inventory. The engine holds the node's
// reservation while an inspection is processed, so these writes happen under it.
type InventoryStore interface {
	CreatePort(ctx context.Context, p *store.Port) error
	ListPorts(ctx context.Context, f store.PortFilter, o store.ListOptions) ([]*store.Port, error)
	PutInventory(ctx context.Context, nodeUUID string, inv store.Inventory) error
}

// MaxInventoryItems caps the disks and NICs one inspection takes, so that a broken BMC or a hostile agent cannot
// make the conductor create thousands of ports.
const MaxInventoryItems = 256

// inventoryFacts is the part of an IPA-shaped inventory the conductor reads. The inventory arrives as decoded JSON
// (in-band: float64 numbers, []any) or as Go values (Redfish: int, []map[string]any); a JSON round trip reads both.
type inventoryFacts struct {
	CPU struct {
		Count        int    `json:"count"`
		Architecture string `json:"architecture"`
	} `json:"cpu"`
	Memory struct {
		Total      int64  `json:"total"`
		PhysicalMB *int64 `json:"physical_mb"`
	} `json:"memory"`
	Disks      []diskFact `json:"disks"`
	Interfaces []struct {
		Name        string  `json:"name"`
		MACAddress  string  `json:"mac_address"`
		IPv4Address *string `json:"ipv4_address"`
		Enabled     *bool   `json:"enabled"` // Redfish's NIC state; absent in-band
	} `json:"interfaces"`
	Boot struct {
		PXEInterface *string `json:"pxe_interface"`
	} `json:"boot"`
}

type diskFact struct {
	Name string `json:"name"`
	Size int64  `json:"size"`
}

func readFacts(inv map[string]any) (*inventoryFacts, error) {
	b, err := json.Marshal(inv)
	if err != nil {
		return nil, fmt.Errorf("encode the inventory: %w", err)
	}
	var f inventoryFacts
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("the inventory does not have IPA's shape: %v: %w", err, ErrInvalid)
	}
	return &f, nil
}

// InventoryProperties returns the node properties an inventory gives (cpus, memory_mb, cpu_arch, local_gb) and the
// names of those it lacks among cpus, memory_mb and cpu_arch (local_gb is 0 for a diskless node). plugin may hold
// the agent's root_disk (the disk a deploy without root device hints uses); local_gb is that disk's size in GiB
// minus 1 (Ironic's convention, room for partitioning), else the biggest disk's: Ferric installs on the disk root
// device hints pick, which by default is the biggest.
func InventoryProperties(inv, plugin map[string]any) (map[string]any, []string, error) {
	f, err := readFacts(inv)
	if err != nil {
		return nil, nil, err
	}
	props := map[string]any{}
	var missing []string
	if f.CPU.Count > 0 {
		props["cpus"] = f.CPU.Count
	} else {
		missing = append(missing, "cpus")
	}
	mb := int64(0)
	if f.Memory.PhysicalMB != nil && *f.Memory.PhysicalMB > 0 {
		mb = *f.Memory.PhysicalMB
	} else if f.Memory.Total > 0 {
		mb = f.Memory.Total >> 20 // IPA without DIMM data: what the kernel sees
	}
	if mb > 0 {
		props["memory_mb"] = int(mb)
	} else {
		missing = append(missing, "memory_mb")
	}
	if f.CPU.Architecture != "" {
		props["cpu_arch"] = f.CPU.Architecture
	} else {
		missing = append(missing, "cpu_arch")
	}
	var size int64
	if root := rootDisk(plugin); root != nil && root.Size > 0 {
		size = root.Size
	} else {
		for _, d := range f.Disks {
			size = max(size, d.Size)
		}
	}
	props["local_gb"] = 0
	if gb := size>>30 - 1; gb > 0 {
		props["local_gb"] = int(gb)
	}
	return props, missing, nil
}

// rootDisk reads plugin_data.root_disk, nil when absent or malformed.
func rootDisk(plugin map[string]any) *diskFact {
	raw, ok := plugin["root_disk"].(map[string]any)
	if !ok {
		return nil
	}
	b, _ := json.Marshal(raw)
	var d diskFact
	if json.Unmarshal(b, &d) != nil {
		return nil
	}
	return &d
}

// InventoryPorts returns the MACs (lower case, colons) inspection makes ports for, as Ironic's validate-interfaces
// hook picks them: no loopback, no interface without a valid MAC, none Redfish reports disabled; with add_ports
// "pxe" only the interface the node booted from when the inventory names it (boot.pxe_interface, pxelinux's
// 01-aa-bb-... form too), every interface when it does not (Ironic falls back the same way); "none" gives none.
// pxe says which of them is the PXE interface (all when the inventory does not tell).
func InventoryPorts(inv map[string]any, addPorts string) (macs []string, pxe map[string]bool, err error) {
	f, err := readFacts(inv)
	if err != nil {
		return nil, nil, err
	}
	if addPorts == AddPortsNone {
		return nil, nil, nil
	}
	pxeMAC := ""
	if p := f.Boot.PXEInterface; p != nil && *p != "" {
		v := *p
		if _, rest, ok := strings.Cut(v, "-"); ok && strings.Count(v, "-") == 6 {
			v = strings.ReplaceAll(rest, "-", ":")
		}
		pxeMAC = NormalMAC(v)
	}
	pxe = map[string]bool{}
	seen := map[string]bool{}
	for _, ifc := range f.Interfaces {
		mac := NormalMAC(ifc.MACAddress)
		if mac == "" || seen[mac] || ifc.Name == "lo" || (ifc.Enabled != nil && !*ifc.Enabled) {
			continue
		}
		if ip := ifc.IPv4Address; ip != nil && net.ParseIP(*ip) != nil && net.ParseIP(*ip).IsLoopback() {
			continue
		}
		if addPorts == AddPortsPXE && pxeMAC != "" && mac != pxeMAC {
			continue
		}
		seen[mac] = true
		macs = append(macs, mac)
		pxe[mac] = pxeMAC == "" || mac == pxeMAC
		if len(macs) == MaxInventoryItems {
			break
		}
	}
	return macs, pxe, nil
}

// NormalMAC returns a MAC address as ports store it (lower case, colons), "" when v is not an EUI-48 or EUI-64.
func NormalMAC(v string) string {
	hw, err := net.ParseMAC(strings.TrimSpace(v))
	if err != nil || (len(hw) != 6 && len(hw) != 8) {
		return ""
	}
	return hw.String()
}

// ApplyInventory records an inspection's result on the reserved node of t: props are merged into its properties
// (capabilities, root_device and the operator's own keys stay), the inventory and plugin data replace the stored
// ones, ports are created as addPorts says, and the node is saved (under the reservation the engine holds: a
// write after losing it fails with 409). now stamps new ports (nil: time.Now).
func ApplyInventory(ctx context.Context, st InventoryStore, t *Task, inv, plugin, props map[string]any, addPorts string,
	now func() time.Time) error {
	n := t.Node
	if n.Properties == nil {
		n.Properties = map[string]any{}
	}
	for k, v := range props {
		n.Properties[k] = v
	}
	if err := st.PutInventory(ctx, n.UUID, store.Inventory{Inventory: inv, PluginData: plugin}); err != nil {
		return fmt.Errorf("keep the inventory of node %s: %w", n.UUID, err)
	}
	macs, pxe, err := InventoryPorts(inv, addPorts)
	if err != nil {
		return err
	}
	if now == nil {
		now = time.Now
	}
	for _, mac := range macs {
		// A MAC that is already a port (the operator's, another node's, or a previous inspection's) is left
		// alone: re-inspection is idempotent and never moves a port between nodes.
		existing, err := st.ListPorts(ctx, store.PortFilter{Address: mac}, store.ListOptions{Limit: 1})
		if err != nil {
			return fmt.Errorf("look up port %s of node %s: %w", mac, n.UUID, err)
		}
		if len(existing) > 0 {
			continue
		}
		p := &store.Port{UUID: uuid.NewString(), Address: mac, NodeUUID: n.UUID, PXEEnabled: pxe[mac],
			CreatedAt: now().UTC()}
		// ErrDuplicate: someone created the port between the look-up and here, which is what we wanted.
		if err := st.CreatePort(ctx, p); err != nil && !errors.Is(err, store.ErrDuplicate) {
			return fmt.Errorf("create port %s for node %s: %w", mac, n.UUID, err)
		}
		t.Logf(ctx, "inspection created port %s (%s)", p.UUID, mac)
	}
	if t.Save != nil {
		if err := t.Save(ctx); err != nil {
			return err
		}
	}
	return nil
}
