package redfish_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/driver/redfish"
	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// hardwareBMC serves a Dell-like system with its Processors, Memory, Storage (or SimpleStorage) and
// EthernetInterfaces collections, as Redfish documents keyed by path.
type hardwareBMC map[string]any

func (h hardwareBMC) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if u, p, ok := r.BasicAuth(); strings.TrimSuffix(r.URL.Path, "/") != "/redfish/v1" && (!ok || u != "root" || p != "calvin") {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	doc, ok := h[strings.TrimSuffix(r.URL.Path, "/")]
	if !ok {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(doc)
}

func ref(p string) map[string]any { return map[string]any{"@odata.id": p} }

func collection(p string, members ...string) map[string]any {
	m := make([]any, 0, len(members))
	for _, x := range members {
		m = append(m, ref(x))
	}
	return map[string]any{"@odata.id": p, "Members": m, "Members@odata.count": len(m)}
}

const sys = "/redfish/v1/Systems/System.Embedded.1"

// newHardwareBMC: 2 x86-64 sockets, 256 GiB, a 480 GB SSD and a 1.92 TB drive, three NICs of which one is disabled.
func newHardwareBMC() hardwareBMC {
	return hardwareBMC{
		"/redfish/v1": map[string]any{"@odata.id": "/redfish/v1/", "Id": "RootService", "RedfishVersion": "1.11.0",
			"Systems": ref("/redfish/v1/Systems")},
		"/redfish/v1/Systems": collection("/redfish/v1/Systems", sys),
		sys: map[string]any{"@odata.id": sys, "Id": "System.Embedded.1", "Manufacturer": "Dell Inc.", "Model": "PowerEdge R650",
			"SerialNumber": "CNIVC0012345678", "PowerState": "Off",
			"Boot":             map[string]any{"BootSourceOverrideMode": "UEFI", "BootSourceOverrideTarget": "None"},
			"ProcessorSummary": map[string]any{"Count": 2, "Model": "Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz"},
			"MemorySummary":    map[string]any{"TotalSystemMemoryGiB": 256},
			"Processors":       ref(sys + "/Processors"), "Memory": ref(sys + "/Memory"), "Storage": ref(sys + "/Storage"),
			"SimpleStorage": ref(sys + "/SimpleStorage"), "EthernetInterfaces": ref(sys + "/EthernetInterfaces")},
		sys + "/Processors": collection(sys+"/Processors", sys+"/Processors/CPU.Socket.1", sys+"/Processors/CPU.Socket.2"),
		sys + "/Processors/CPU.Socket.1": map[string]any{"@odata.id": sys + "/Processors/CPU.Socket.1", "Id": "CPU.Socket.1",
			"ProcessorType": "CPU", "ProcessorArchitecture": "x86", "InstructionSet": "x86-64", "MaxSpeedMHz": 4000,
			"Model": "Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz", "TotalCores": 32},
		sys + "/Processors/CPU.Socket.2": map[string]any{"@odata.id": sys + "/Processors/CPU.Socket.2", "Id": "CPU.Socket.2",
			"ProcessorType": "CPU", "ProcessorArchitecture": "x86", "InstructionSet": "x86-64"},
		sys + "/Memory":  collection(sys + "/Memory"),
		sys + "/Storage": collection(sys+"/Storage", sys+"/Storage/RAID.Integrated.1-1"),
		sys + "/Storage/RAID.Integrated.1-1": map[string]any{"@odata.id": sys + "/Storage/RAID.Integrated.1-1",
			"Id": "RAID.Integrated.1-1", "Drives": []any{
				ref(sys + "/Storage/RAID.Integrated.1-1/Drives/Disk.Bay.0"), ref(sys + "/Storage/RAID.Integrated.1-1/Drives/Disk.Bay.1")}},
		sys + "/Storage/RAID.Integrated.1-1/Drives/Disk.Bay.0": map[string]any{"@odata.id": sys + "/Storage/RAID.Integrated.1-1/Drives/Disk.Bay.0",
			"Id": "Disk.Bay.0", "Name": "SSD 0", "CapacityBytes": 479559942144, "MediaType": "SSD", "Model": "MZ7KH480HAHQ0D3"},
		sys + "/Storage/RAID.Integrated.1-1/Drives/Disk.Bay.1": map[string]any{"@odata.id": sys + "/Storage/RAID.Integrated.1-1/Drives/Disk.Bay.1",
			"Id": "Disk.Bay.1", "Name": "Disk 1", "CapacityBytes": 1919850381312, "MediaType": "HDD"},
		sys + "/SimpleStorage": collection(sys + "/SimpleStorage"),
		sys + "/EthernetInterfaces": collection(sys+"/EthernetInterfaces", sys+"/EthernetInterfaces/NIC.Integrated.1-1-1",
			sys+"/EthernetInterfaces/NIC.Integrated.1-2-1", sys+"/EthernetInterfaces/NIC.Slot.3-1-1", sys+"/EthernetInterfaces/ToManager"),
		sys + "/EthernetInterfaces/NIC.Integrated.1-1-1": map[string]any{"@odata.id": sys + "/EthernetInterfaces/NIC.Integrated.1-1-1",
			"Id": "NIC.Integrated.1-1-1", "MACAddress": "B0:26:28:AA:00:01", "Status": map[string]any{"State": "Enabled"}},
		sys + "/EthernetInterfaces/NIC.Integrated.1-2-1": map[string]any{"@odata.id": sys + "/EthernetInterfaces/NIC.Integrated.1-2-1",
			"Id": "NIC.Integrated.1-2-1", "MACAddress": "B0:26:28:AA:00:02", "Status": map[string]any{"State": "Enabled"}},
		sys + "/EthernetInterfaces/NIC.Slot.3-1-1": map[string]any{"@odata.id": sys + "/EthernetInterfaces/NIC.Slot.3-1-1",
			"Id": "NIC.Slot.3-1-1", "MACAddress": "B0:26:28:AA:00:03", "Status": map[string]any{"State": "Disabled"}},
		// A BMC's junk (seen on BMC-internal USB NICs): no port, not in the inventory.
		sys + "/EthernetInterfaces/ToManager": map[string]any{"@odata.id": sys + "/EthernetInterfaces/ToManager",
			"Id": "ToManager", "MACAddress": "not-a-mac; rm -rf /", "Status": map[string]any{"State": "Enabled"}},
	}
}

func openStore(t *testing.T) store.Store {
	s, err := store.Open(context.Background(), "sqlite://"+filepath.Join(t.TempDir(), "ferric.db"))
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

func TestRedfishInspection(t *testing.T) {
	tests := []struct {
		name      string
		addPorts  string
		mut       func(h hardwareBMC)
		wantProps map[string]any
		wantPorts []string
		wantDisks int
	}{
		{"all ports", redfish.AddPortsAll, nil,
			map[string]any{"cpus": float64(2), "cpu_arch": "x86_64", "memory_mb": float64(262144), "local_gb": float64(1787)},
			[]string{"b0:26:28:aa:00:01", "b0:26:28:aa:00:02"}, 2},
		{"pxe falls back to every enabled NIC, as in Ironic", redfish.AddPortsPXE, nil,
			map[string]any{"cpus": float64(2), "cpu_arch": "x86_64", "memory_mb": float64(262144), "local_gb": float64(1787)},
			[]string{"b0:26:28:aa:00:01", "b0:26:28:aa:00:02"}, 2},
		{"no ports", redfish.AddPortsNone, nil,
			map[string]any{"cpus": float64(2), "cpu_arch": "x86_64", "memory_mb": float64(262144), "local_gb": float64(1787)},
			nil, 2},
		{"summaries missing, simple storage, aarch64", redfish.AddPortsAll, func(h hardwareBMC) {
			s := h[sys].(map[string]any)
			delete(s, "ProcessorSummary")
			delete(s, "MemorySummary")
			h[sys+"/Storage"] = collection(sys + "/Storage")
			for _, c := range []string{"CPU.Socket.1", "CPU.Socket.2"} {
				p := h[sys+"/Processors/"+c].(map[string]any)
				p["ProcessorArchitecture"], p["InstructionSet"] = "ARM", "ARM-A64"
			}
			h[sys+"/Memory"] = collection(sys+"/Memory", sys+"/Memory/DIMM.A1", sys+"/Memory/DIMM.A2")
			h[sys+"/Memory/DIMM.A1"] = map[string]any{"@odata.id": sys + "/Memory/DIMM.A1", "Id": "DIMM.A1", "CapacityMiB": 16384}
			h[sys+"/Memory/DIMM.A2"] = map[string]any{"@odata.id": sys + "/Memory/DIMM.A2", "Id": "DIMM.A2", "CapacityMiB": 16384}
			h[sys+"/SimpleStorage"] = collection(sys+"/SimpleStorage", sys+"/SimpleStorage/1")
			h[sys+"/SimpleStorage/1"] = map[string]any{"@odata.id": sys + "/SimpleStorage/1", "Id": "1",
				"Devices": []any{map[string]any{"Name": "QEMU HARDDISK", "CapacityBytes": 21474836480}}}
		}, map[string]any{"cpus": float64(2), "cpu_arch": "aarch64", "memory_mb": float64(32768), "local_gb": float64(19)},
			[]string{"b0:26:28:aa:00:01", "b0:26:28:aa:00:02"}, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHardwareBMC()
			if tc.mut != nil {
				tc.mut(h)
			}
			srv := httptest.NewTLSServer(h)
			defer srv.Close()
			st := openStore(t)
			ctx := context.Background()
			n := node(srv.URL, "")
			n.UUID, n.Driver, n.ProvisionState, n.CreatedAt = uuid.NewString(), "redfish", "inspecting", time.Now().UTC()
			require.NoError(t, st.CreateNode(ctx, n))
			// A port the operator made already is kept, not duplicated.
			require.NoError(t, st.CreatePort(ctx, &store.Port{UUID: uuid.NewString(), Address: "b0:26:28:aa:00:02",
				NodeUUID: n.UUID, CreatedAt: time.Now().UTC()}))
			saved := 0
			task := &driver.Task{Node: n, Log: logrus.NewEntry(logrus.New()), Save: func(context.Context) error { saved++; return nil }}
			insp := &redfish.Inspector{Driver: fastDriver(), Store: st, AddPorts: tc.addPorts}

			require.NoError(t, insp.Validate(ctx, n))
			out, err := insp.Inspect(ctx, task)
			require.NoError(t, err)
			assert.Equal(t, driver.Done, out)
			assert.Equal(t, 1, saved, "the properties are saved")
			props, _ := json.Marshal(n.Properties)
			var got map[string]any
			require.NoError(t, json.Unmarshal(props, &got))
			assert.Equal(t, tc.wantProps, got)

			ports, err := st.ListPorts(ctx, store.PortFilter{NodeUUID: n.UUID}, store.ListOptions{})
			require.NoError(t, err)
			var macs []string
			for _, p := range ports {
				if p.Address != "b0:26:28:aa:00:02" || tc.wantPorts == nil {
					macs = append(macs, p.Address)
				}
			}
			want := []string{}
			for _, m := range tc.wantPorts {
				if m != "b0:26:28:aa:00:02" {
					want = append(want, m)
				}
			}
			if tc.wantPorts == nil {
				want = []string{"b0:26:28:aa:00:02"} // only the operator's
			}
			assert.ElementsMatch(t, want, macs, "ports for enabled NICs only, none duplicated")
			assert.Len(t, ports, len(want)+map[bool]int{true: 1, false: 0}[tc.wantPorts != nil])

			inv, err := st.Inventory(ctx, n.UUID)
			require.NoError(t, err)
			assert.Len(t, inv.Inventory["disks"], tc.wantDisks)
			assert.Len(t, inv.Inventory["interfaces"], 3)
			assert.Equal(t, tc.wantProps["cpus"], inv.Inventory["cpu"].(map[string]any)["count"])
			assert.Equal(t, tc.wantProps["cpu_arch"], inv.Inventory["cpu"].(map[string]any)["architecture"])
			assert.Equal(t, map[string]any{"current_boot_mode": "uefi"}, inv.Inventory["boot"])
			assert.Equal(t, "Dell Inc.", inv.Inventory["system_vendor"].(map[string]any)["manufacturer"])
			assert.Equal(t, map[string]any{}, inv.PluginData)
		})
	}
}

// TestRedfishInspectionFails: a BMC that reports no processors fails inspection naming what is missing, and
// stores nothing.
func TestRedfishInspectionFails(t *testing.T) {
	h := newHardwareBMC()
	delete(h[sys].(map[string]any), "ProcessorSummary")
	h[sys+"/Processors"] = collection(sys + "/Processors")
	srv := httptest.NewTLSServer(h)
	defer srv.Close()
	st := openStore(t)
	ctx := context.Background()
	n := node(srv.URL, "")
	n.UUID, n.Driver, n.CreatedAt = uuid.NewString(), "redfish", time.Now().UTC()
	require.NoError(t, st.CreateNode(ctx, n))
	insp := &redfish.Inspector{Driver: fastDriver(), Store: st, AddPorts: redfish.AddPortsAll}
	_, err := insp.Inspect(ctx, &driver.Task{Node: n, Log: logrus.NewEntry(logrus.New())})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "Failed to discover the following properties: cpus, cpu_arch")
	assert.NotContains(t, err.Error(), "calvin")
	_, err = st.Inventory(ctx, n.UUID)
	assert.ErrorIs(t, err, store.ErrNotFound)
	ports, _ := st.ListPorts(ctx, store.PortFilter{NodeUUID: n.UUID}, store.ListOptions{})
	assert.Empty(t, ports)
}

func TestParseAddPorts(t *testing.T) {
	for in, want := range map[string]string{"": "pxe", "all": "all", "pxe": "pxe", "none": "none"} {
		got, err := redfish.ParseAddPorts(in)
		require.NoError(t, err)
		assert.Equal(t, want, got)
	}
	_, err := redfish.ParseAddPorts("some")
	assert.ErrorContains(t, err, "--inspect-add-ports")
}

// TestRedfishInspectionDeadline: a BMC that stops answering mid-inspection fails it within Timeout.
func TestRedfishInspectionDeadline(t *testing.T) {
	h := newHardwareBMC()
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "/Processors") {
			select {
			case <-r.Context().Done():
			case <-time.After(3 * time.Second):
			}
			return
		}
		h.ServeHTTP(w, r)
	})
	srv := httptest.NewTLSServer(slow)
	defer srv.Close()
	n := node(srv.URL, "")
	insp := &redfish.Inspector{Driver: fastDriver(), Store: openStore(t), Timeout: 300 * time.Millisecond}
	start := time.Now()
	_, err := insp.Inspect(context.Background(), &driver.Task{Node: n, Log: logrus.NewEntry(logrus.New())})
	require.Error(t, err)
	assert.Less(t, time.Since(start), 2*time.Second)
	assert.Contains(t, err.Error(), "did not answer in time")
}
