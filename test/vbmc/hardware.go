package vbmc

import (
	"fmt"
	"os"
	"strings"
)

// The hardware a VM's configuration gives it, as a Redfish BMC describes a server's, so that out-of-band
// inspection (Ironic's and the conductor's redfish inspect interface, through gofish or sushy) reads the same
// CPU count, memory, disk size and MAC as the guest sees: Processors, Memory (DIMMs), Storage with one drive,
// SimpleStorage, EthernetInterfaces, and the System's ProcessorSummary and MemorySummary.

// vcpus is the VM's vCPU count as its runner starts it.
func (b *BMC) vcpus(m *vm) int {
	// Ask the runner first: QEMU picks the default by accelerator (VCPUs in vm.go), and the BMC must report what the
	// guest really has, or out-of-band and in-band inspection disagree on cpus.
	if c, ok := b.cfg.Runner.(interface{ VCPUs(VMConfig) int }); ok {
		return c.VCPUs(m.cfg)
	}
	if m.cfg.CPUs > 0 {
		return m.cfg.CPUs
	}
	return 1
}

// memoryMiB is the VM's RAM (QEMU's -m; 1024 by default, as Argv).
func memoryMiB(m *vm) int {
	if m.cfg.MemoryMiB > 0 {
		return m.cfg.MemoryMiB
	}
	return 1024
}

// dimms splits the RAM into DIMMs of equal size (4 or 2 when it divides evenly into whole GiB, else 1), so that
// a client adding CapacityMiB up gets memory_mib exactly.
func dimms(mib int) []int {
	for _, n := range []int{4, 2} {
		if mib%(n*1024) == 0 {
			out := make([]int, n)
			for i := range out {
				out[i] = mib / n
			}
			return out
		}
	}
	return []int{mib}
}

// diskBytes is the size of the VM's disk file (what the guest sees), else its configured disk_gib.
func diskBytes(m *vm) int64 {
	if st, err := os.Stat(m.cfg.Disk); err == nil {
		return st.Size()
	}
	if m.cfg.DiskGiB > 0 {
		return int64(m.cfg.DiskGiB) << 30
	}
	// 8 GiB: the size addVM gives a disk it creates when disk_gib is unset.
	return 8 << 30
}

// mac is the VM's NIC's MAC (QEMU's default in Argv when none is configured).
func mac(m *vm) string {
	if m.cfg.MAC != "" {
		return strings.ToLower(m.cfg.MAC)
	}
	return "52:54:00:12:34:56"
}

// statusOK is the Status every simulated component reports: enabled and healthy.
var statusOK = map[string]string{"State": "Enabled", "Health": "OK"}

// hardwareSummary adds the summaries and links of the hardware resources to a System.
func (b *BMC) hardwareSummary(m *vm, sys map[string]any) {
	id := "/redfish/v1/Systems/" + m.cfg.Name
	cpus := b.vcpus(m)
	sys["ProcessorSummary"] = map[string]any{"Count": 1, "CoreCount": cpus, "LogicalProcessorCount": cpus,
		// One processor whose cores and threads are the vCPUs: inspection reads the logical CPU count from it.
		"Model": "QEMU Virtual CPU (-cpu max)", "Status": statusOK}
	sys["MemorySummary"] = map[string]any{"TotalSystemMemoryGiB": float64(memoryMiB(m)) / 1024, "Status": statusOK}
	for _, k := range []string{"Processors", "Memory", "Storage", "SimpleStorage", "EthernetInterfaces"} {
		sys[k] = odata(id + "/" + k)
	}
}

// hardwarePaths are the routes of the hardware resources under a System; hardware answers them.
func hardwarePaths() []string {
	return []string{"/Processors", "/Processors/CPU0", "/Memory", "/Memory/{dimm:DIMM[0-9]+}", "/Storage", "/Storage/1",
		"/Storage/1/Drives/Disk0", "/SimpleStorage", "/SimpleStorage/1", "/EthernetInterfaces", "/EthernetInterfaces/nic0"}
}

// hardware serves the System's hardware resources (sub is the path under the System); false when sub is none.
func (b *BMC) hardware(m *vm, sub string) (map[string]any, bool) {
	id := "/redfish/v1/Systems/" + m.cfg.Name
	cpus := b.vcpus(m)
	sizes := dimms(memoryMiB(m))
	switch sub {
	case "Processors":
		return collection(id+"/Processors", "Processors", []string{id + "/Processors/CPU0"}), true
	case "Processors/CPU0":
		return map[string]any{"@odata.id": id + "/Processors/CPU0", "@odata.type": "#Processor.v1_10_0.Processor",
			"Id": "CPU0", "Name": "Processor", "Socket": "CPU 0", "ProcessorType": "CPU",
			"ProcessorArchitecture": "x86", "InstructionSet": "x86-64", "Manufacturer": "QEMU", "Model": "QEMU Virtual CPU (-cpu max)",
			"TotalCores": cpus, "TotalThreads": cpus, "TotalEnabledCores": cpus, "Status": statusOK}, true
	case "Memory":
		var ms []string
		for i := range sizes {
			ms = append(ms, fmt.Sprintf("%s/Memory/DIMM%d", id, i))
		}
		return collection(id+"/Memory", "Memory", ms), true
	case "Storage":
		return collection(id+"/Storage", "Storage", []string{id + "/Storage/1"}), true
	case "Storage/1":
		return map[string]any{"@odata.id": id + "/Storage/1", "@odata.type": "#Storage.v1_8_0.Storage", "Id": "1",
			"Name": "virtio-blk storage", "Status": statusOK,
			"StorageControllers": []any{map[string]any{"@odata.id": id + "/Storage/1#/StorageControllers/0", "MemberId": "0",
				"Name": "virtio-blk", "Status": statusOK, "SupportedDeviceProtocols": []string{"PCIe"}}},
			"Drives": []any{odata(id + "/Storage/1/Drives/Disk0")}, "Drives@odata.count": 1}, true
	case "Storage/1/Drives/Disk0":
		// HDD: a virtio-blk disk is rotational as the guest's kernel sees it, which is what in-band inspection reports.
		return map[string]any{"@odata.id": id + "/Storage/1/Drives/Disk0", "@odata.type": "#Drive.v1_9_0.Drive", "Id": "Disk0",
			"Name": "Virtual disk", "Model": "QEMU virtio-blk", "CapacityBytes": diskBytes(m), "MediaType": "HDD",
			"Protocol": "PCIe", "SerialNumber": m.cfg.Name + "-disk0", "Status": statusOK}, true
	case "SimpleStorage":
		return collection(id+"/SimpleStorage", "Simple Storage", []string{id + "/SimpleStorage/1"}), true
	case "SimpleStorage/1":
		return map[string]any{"@odata.id": id + "/SimpleStorage/1", "@odata.type": "#SimpleStorage.v1_3_0.SimpleStorage",
			"Id": "1", "Name": "virtio-blk", "UefiDevicePath": "PciRoot(0x0)", "Status": statusOK,
			"Devices": []any{map[string]any{"Name": "Virtual disk", "Model": "QEMU virtio-blk", "CapacityBytes": diskBytes(m), "Status": statusOK}}}, true
	case "EthernetInterfaces":
		return collection(id+"/EthernetInterfaces", "Ethernet Interfaces", []string{id + "/EthernetInterfaces/nic0"}), true
	case "EthernetInterfaces/nic0":
		// LinkUp also while the VM is off, as a server NIC on standby power: out-of-band inspection runs on
		// powered-off machines, and QEMU's user-mode network has no cable to pull.
		link := "LinkUp"
		return map[string]any{"@odata.id": id + "/EthernetInterfaces/nic0", "@odata.type": "#EthernetInterface.v1_6_0.EthernetInterface",
			"Id": "nic0", "Name": "virtio-net", "MACAddress": mac(m), "PermanentMACAddress": mac(m), "LinkStatus": link,
			"SpeedMbps": 1000, "InterfaceEnabled": true, "Status": statusOK}, true
	}
	var i int
	// DIMMn is matched here rather than in the switch: the index must be within the DIMMs the RAM splits into, and the
	// round trip through Sprintf refuses spellings such as DIMM01 or a trailing suffix that Sscanf would accept.
	if _, err := fmt.Sscanf(sub, "Memory/DIMM%d", &i); err == nil && sub == fmt.Sprintf("Memory/DIMM%d", i) && i >= 0 && i < len(sizes) {
		return map[string]any{"@odata.id": fmt.Sprintf("%s/Memory/DIMM%d", id, i), "@odata.type": "#Memory.v1_10_0.Memory",
			"Id": fmt.Sprintf("DIMM%d", i), "Name": fmt.Sprintf("DIMM %d", i), "CapacityMiB": sizes[i], "MemoryType": "DRAM",
			"MemoryDeviceType": "DDR4", "DeviceLocator": fmt.Sprintf("DIMM %d", i), "Status": statusOK}, true
	}
	return nil, false
}
