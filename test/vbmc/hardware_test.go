package vbmc

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stmcginnis/gofish"
	"github.com/stmcginnis/gofish/schemas"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestHardwareResources: gofish reads each VM's CPUs, memory, disk and NIC as its configuration (and the
// runner's defaults) give them: Processors, Memory DIMMs adding up to memory_mib, Storage with a drive of the
// disk's size, SimpleStorage, EthernetInterfaces, and the System's summaries. Before: all were 404.
func TestHardwareResources(t *testing.T) {
	for _, tc := range []struct {
		name    string
		vm      VMConfig
		runner  Runner
		cpus    int
		memMiB  int
		dimms   int
		diskGiB int64
		mac     string
	}{
		{"configured", VMConfig{Name: "vm1", CPUs: 4, MemoryMiB: 3072, DiskGiB: 2, MAC: "52:54:00:AB:CD:01"}, &fakeRunner{}, 4, 3072, 1, 2, "52:54:00:ab:cd:01"},
		{"4 DIMMs", VMConfig{Name: "vm1", CPUs: 2, MemoryMiB: 8192, DiskGiB: 1, MAC: "52:54:00:00:00:02"}, &fakeRunner{}, 2, 8192, 4, 1, "52:54:00:00:00:02"},
		{"defaults under TCG", VMConfig{Name: "vm1", DiskGiB: 1}, &QEMU{}, 1, 1024, 1, 1, "52:54:00:12:34:56"},
		{"KVM default vCPUs", VMConfig{Name: "vm1", MemoryMiB: 2048, DiskGiB: 1}, &QEMU{Accel: "kvm"}, 2, 2048, 2, 1, "52:54:00:12:34:56"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url, _ := startBMCWith(t, Config{Username: "admin", Password: "pw", StateDir: t.TempDir(), Runner: tc.runner, VMs: []VMConfig{tc.vm}})
			c, err := gofish.Connect(gofish.ClientConfig{Endpoint: url, Username: "admin", Password: "pw", BasicAuth: true})
			require.NoError(t, err)
			systems, err := c.Service.Systems()
			require.NoError(t, err)
			sys := systems[0]
			assert.EqualValues(t, tc.cpus, *sys.ProcessorSummary.LogicalProcessorCount)
			assert.EqualValues(t, tc.cpus, *sys.ProcessorSummary.CoreCount)
			assert.InDelta(t, float64(tc.memMiB)/1024, *sys.MemorySummary.TotalSystemMemoryGiB, 1e-9)

			procs, err := sys.Processors()
			require.NoError(t, err)
			require.Len(t, procs, 1)
			assert.EqualValues(t, tc.cpus, *procs[0].TotalCores)
			assert.EqualValues(t, tc.cpus, *procs[0].TotalThreads)
			assert.Equal(t, schemas.X86ProcessorArchitecture, procs[0].ProcessorArchitecture)
			assert.Equal(t, schemas.X8664InstructionSet, procs[0].InstructionSet)

			mem, err := sys.Memory()
			require.NoError(t, err)
			assert.Len(t, mem, tc.dimms)
			total := 0
			for _, d := range mem {
				total += int(*d.CapacityMiB)
			}
			assert.Equal(t, tc.memMiB, total, "DIMMs add up to memory_mib")

			storage, err := sys.Storage()
			require.NoError(t, err)
			require.Len(t, storage, 1)
			drives, err := storage[0].Drives()
			require.NoError(t, err)
			require.Len(t, drives, 1)
			assert.EqualValues(t, tc.diskGiB<<30, *drives[0].CapacityBytes)
			assert.Equal(t, schemas.HDDMediaType, drives[0].MediaType)

			simple, err := sys.SimpleStorage()
			require.NoError(t, err)
			require.Len(t, simple, 1)
			require.Len(t, simple[0].Devices, 1)
			assert.EqualValues(t, tc.diskGiB<<30, *simple[0].Devices[0].CapacityBytes)

			nics, err := sys.EthernetInterfaces()
			require.NoError(t, err)
			require.Len(t, nics, 1)
			assert.Equal(t, tc.mac, nics[0].MACAddress)
			assert.Equal(t, schemas.LinkUpLinkStatus, nics[0].LinkStatus)
			assert.EqualValues(t, 1000, *nics[0].SpeedMbps)
			assert.Equal(t, schemas.EnabledState, nics[0].Status.State)
		})
	}
}

// TestHardwareResourcesRefuseUnknown: paths under a System that name nothing are 404, and need auth.
func TestHardwareResourcesRefuseUnknown(t *testing.T) {
	url, _ := startBMCWith(t, Config{Username: "admin", Password: "pw", StateDir: t.TempDir(), Runner: &fakeRunner{}})
	for _, p := range []string{"Memory/DIMM1", "Memory/DIMM-1", "Memory/DIMM0x", "Processors/CPU1", "Storage/2", "EthernetInterfaces/nic1"} {
		code, _ := redfishDo(t, http.MethodGet, url+"/redfish/v1/Systems/vm1/"+p, nil)
		assert.Equal(t, http.StatusNotFound, code, p)
	}
	resp, err := http.Get(url + "/redfish/v1/Systems/vm1/Processors")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	assert.True(t, strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json"))
}
