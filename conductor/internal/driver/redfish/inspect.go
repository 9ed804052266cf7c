package redfish

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/stmcginnis/gofish/schemas"

	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// Port policies of --inspect-add-ports: the shared ones of the driver package (both inspect interfaces use them).
const (
	AddPortsAll  = driver.AddPortsAll
	AddPortsPXE  = driver.AddPortsPXE
	AddPortsNone = driver.AddPortsNone
)

// ParseAddPorts checks an --inspect-add-ports value (driver.ParseAddPorts).
func ParseAddPorts(v string) (string, error) { return driver.ParseAddPorts(v) }

// InspectStore is what inspection writes besides the node: ports and the inventory (driver.InventoryStore).
type InspectStore = driver.InventoryStore

// Inspector is the redfish inspect interface: out-of-band inspection through the BMC (Ironic's RedfishInspect).
//
// AddPorts says which NICs get ports. Ironic's redfish inspection creates a port for every enabled NIC with a MAC
// and cannot tell the PXE NIC (its _get_pxe_port_macs answers None), and ironic-inspector's add_ports=pxe falls
// back to all NICs when the boot NIC is unknown; so "pxe" (the default) adds every enabled NIC here too, with
// pxe_enabled set, as Ironic does. "none" adds no ports.
type Inspector struct {
	Driver   *Driver
	Store    InspectStore
	AddPorts string
	// Timeout bounds a whole inspection (every BMC call is bounded by the driver's CallTimeout too); default 5 min.
	Timeout time.Duration
	Now     func() time.Time // nil = time.Now
}

// maxListed caps the disks and NICs one inspection takes from the BMC, so that a broken or hostile BMC cannot
// make the conductor create thousands of ports or store an unbounded inventory.
const maxListed = driver.MaxInventoryItems

// Validate checks driver_info (as Ironic's RedfishInspect.validate does, without calling the BMC).
func (i *Inspector) Validate(_ context.Context, n *store.Node) error {
	_, err := ParseInfo(n)
	return err
}

// Inspect reads the system's processors, memory, storage and NICs, updates the node's properties, creates ports
// and stores the inventory. It fails when the BMC reports no CPU count, memory or architecture, naming what is
// missing (Ironic's "Failed to discover the following properties").
func (i *Inspector) Inspect(ctx context.Context, t *driver.Task) (driver.Outcome, error) {
	timeout := i.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	s, err := i.Driver.connect(ctx, t.Node)
	if err != nil {
		return driver.Done, err
	}
	defer s.close()
	// Everything is read before anything is written: a BMC that fails half-way leaves the node, its ports and
	// its previous inventory as they were.
	inv, err := collect(s)
	if err != nil {
		// gofish reads collections in parallel: when the deadline cuts them off, the error it returns may be a
		// bare EOF from a closed connection rather than the context's. The deadline is the cause either way.
		if ctx.Err() != nil && !errors.Is(err, context.DeadlineExceeded) {
			return driver.Done, bmcError(s.info, "inspection", fmt.Errorf("%w after %s: %v", ctx.Err(), timeout, err))
		}
		return driver.Done, err
	}
	props, missing, err := driver.InventoryProperties(inv, nil)
	if err != nil {
		return driver.Done, err
	}
	if len(missing) > 0 {
		return driver.Done, fmt.Errorf("Failed to discover the following properties: %s on node %s: the BMC at %s "+
			"does not report them (ProcessorSummary/Processors, MemorySummary/Memory); set them in properties and "+
			"use inspect_interface=no-inspect, or inspect in-band", strings.Join(missing, ", "), t.Node.UUID, s.info.Address)
	}
	now := i.Now
	if now == nil {
		now = time.Now
	}
	// Properties, the inventory and the ports go through the code in-band inspection uses too.
	if err := driver.ApplyInventory(ctx, i.Store, t, inv, nil, props, i.AddPorts, now); err != nil {
		return driver.Done, err
	}
	t.Logf(ctx, "inspected through Redfish BMC %s: %v CPUs (%v), %v MiB memory, local_gb %v", s.info.Address,
		props["cpus"], props["cpu_arch"], props["memory_mb"], props["local_gb"])
	return driver.Done, nil
}

// cpuArch spells a Redfish processor architecture / instruction set as Ironic's cpu_arch does.
func cpuArch(p *schemas.Processor) string {
	switch p.InstructionSet {
	case schemas.X8664InstructionSet:
		return "x86_64"
	case schemas.ARMA64InstructionSet:
		return "aarch64"
	case "x86":
		return "i686"
	}
	switch p.ProcessorArchitecture {
	case schemas.X86ProcessorArchitecture:
		return "x86_64" // Ironic's CPU_ARCH_MAP: x86 -> x86_64
	case schemas.ARMProcessorArchitecture:
		return "aarch64"
	}
	return ""
}

// collect reads the hardware into an IPA-shaped inventory (driver.InventoryProperties derives the properties).
func collect(s *session) (map[string]any, error) {
	sys := s.system
	inv := map[string]any{}
	if err := collectCPU(s, inv); err != nil {
		return nil, err
	}
	if err := collectMemory(s, inv); err != nil {
		return nil, err
	}
	if err := collectDisks(s, inv); err != nil {
		return nil, err
	}
	if err := collectNICs(s, inv); err != nil {
		return nil, err
	}
	vendor := map[string]any{}
	for k, v := range map[string]string{"product_name": sys.Model, "serial_number": sys.SerialNumber,
		"manufacturer": sys.Manufacturer} {
		if v != "" {
			vendor[k] = v
		}
	}
	inv["system_vendor"] = vendor
	// The boot mode is the override mode the BMC reports: the mode the next boot (the agent's, the instance's)
	// will use. UEFI unless the BMC says Legacy, as Ferric deploys only UEFI by default.
	mode := "uefi"
	if sys.Boot.BootSourceOverrideMode == schemas.LegacyBootSourceOverrideMode {
		mode = "bios"
	}
	inv["boot"] = map[string]any{"current_boot_mode": mode}
	return inv, nil
}

func collectCPU(s *session, inv map[string]any) error {
	cpu := map[string]any{}
	// ProcessorSummary.Count is the socket count Ironic reports as cpus; the members give the architecture
	// (the summary has none) and the count when a BMC leaves the summary out.
	if ps := s.system.ProcessorSummary; ps.Count != nil && *ps.Count > 0 {
		cpu["count"] = int(*ps.Count)
		cpu["model_name"] = ps.Model
	}
	procs, err := s.system.Processors()
	if err != nil {
		return bmcError(s.info, "read processors", err)
	}
	count := 0
	for _, p := range procs {
		if p.ProcessorType != "" && p.ProcessorType != schemas.CPUProcessorType {
			continue // GPUs, FPGAs
		}
		count++
		if _, ok := cpu["architecture"]; !ok {
			if a := cpuArch(p); a != "" {
				cpu["architecture"] = a
			}
			if p.Model != "" {
				cpu["model_name"] = p.Model
			}
			if p.MaxSpeedMHz != nil {
				cpu["frequency"] = *p.MaxSpeedMHz
			}
		}
	}
	if _, ok := cpu["count"]; !ok && count > 0 {
		cpu["count"] = count
	}
	inv["cpu"] = cpu
	return nil
}

func collectMemory(s *session, inv map[string]any) error {
	// TotalSystemMemoryGiB first (one request less); DIMM capacities summed when a BMC leaves it out.
	mb := 0
	if g := s.system.MemorySummary.TotalSystemMemoryGiB; g != nil && *g > 0 {
		mb = int(*g * 1024)
	} else {
		mods, err := s.system.Memory()
		if err != nil {
			return bmcError(s.info, "read memory", err)
		}
		for _, m := range mods {
			if m.CapacityMiB != nil {
				mb += *m.CapacityMiB
			}
		}
	}
	if mb > 0 {
		inv["memory"] = map[string]any{"physical_mb": mb, "total": int64(mb) << 20}
	}
	return nil
}

// collectDisks lists Storage drives, else SimpleStorage devices (local_gb comes from them: see
// driver.InventoryProperties).
func collectDisks(s *session, inv map[string]any) error {
	var disks []map[string]any
	storages, err := s.system.Storage()
	if err != nil {
		return bmcError(s.info, "read storage", err)
	}
	for _, st := range storages {
		drives, err := st.Drives()
		if err != nil {
			return bmcError(s.info, "read drives of "+st.ODataID, err)
		}
		for _, d := range drives {
			if d.CapacityBytes == nil || len(disks) == maxListed {
				continue
			}
			disks = append(disks, map[string]any{"name": d.Name, "size": int64(*d.CapacityBytes), "model": d.Model,
				"vendor": d.Manufacturer, "serial": d.SerialNumber, "rotational": d.MediaType == schemas.HDDMediaType})
		}
	}
	if len(disks) == 0 {
		simple, err := s.system.SimpleStorage()
		if err != nil {
			return bmcError(s.info, "read simple storage", err)
		}
		for _, st := range simple {
			for _, d := range st.Devices {
				if d.CapacityBytes == nil || len(disks) == maxListed {
					continue
				}
				disks = append(disks, map[string]any{"name": d.Name, "size": int64(*d.CapacityBytes), "model": d.Model,
					"vendor": d.Manufacturer})
			}
		}
	}
	if disks == nil {
		disks = []map[string]any{}
	}
	inv["disks"] = disks
	return nil
}

// collectNICs lists the system's NICs, sorted by MAC. A NIC counts as enabled when its Status.State is Enabled
// (Ironic's get_enabled_macs) or absent (some BMCs omit Status).
func collectNICs(s *session, inv map[string]any) error {
	nics, err := s.system.EthernetInterfaces()
	if err != nil {
		return bmcError(s.info, "read ethernet interfaces", err)
	}
	ifaces := []map[string]any{}
	for _, e := range nics {
		if len(ifaces) == maxListed {
			break
		}
		mac := driver.NormalMAC(e.MACAddress)
		if mac == "" {
			mac = driver.NormalMAC(e.PermanentMACAddress)
		}
		if mac == "" {
			continue // no MAC, or not one a port could hold
		}
		enabled := e.Status.State == "" || e.Status.State == schemas.EnabledState
		ifaces = append(ifaces, map[string]any{"name": e.ID, "mac_address": mac, "enabled": enabled})
	}
	sort.Slice(ifaces, func(a, b int) bool { return ifaces[a]["mac_address"].(string) < ifaces[b]["mac_address"].(string) })
	inv["interfaces"] = ifaces
	return nil
}
