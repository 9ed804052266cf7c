package engine

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/conductor/internal/driver/redfish"
	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// smallBMC serves one powered-off system with 4 x86-64 CPUs, 8 GiB, a 64 GiB disk and one NIC.
func smallBMC() http.Handler {
	const sys = "/redfish/v1/Systems/1"
	ref := func(p string) map[string]any { return map[string]any{"@odata.id": p} }
	docs := map[string]any{
		"/redfish/v1":         map[string]any{"@odata.id": "/redfish/v1/", "Systems": ref("/redfish/v1/Systems")},
		"/redfish/v1/Systems": map[string]any{"Members": []any{ref(sys)}},
		sys: map[string]any{"@odata.id": sys, "Id": "1", "PowerState": "Off", "Manufacturer": "QEMU",
			"ProcessorSummary": map[string]any{"Count": 4}, "MemorySummary": map[string]any{"TotalSystemMemoryGiB": 8},
			"Processors": ref(sys + "/Processors"), "Storage": ref(sys + "/Storage"), "SimpleStorage": ref(sys + "/SimpleStorage"),
			"EthernetInterfaces": ref(sys + "/EthernetInterfaces"), "Boot": map[string]any{"BootSourceOverrideMode": "UEFI"}},
		sys + "/Processors":    map[string]any{"Members": []any{ref(sys + "/Processors/0")}},
		sys + "/Processors/0":  map[string]any{"@odata.id": sys + "/Processors/0", "Id": "0", "ProcessorArchitecture": "x86", "InstructionSet": "x86-64"},
		sys + "/Storage":       map[string]any{"Members": []any{}},
		sys + "/SimpleStorage": map[string]any{"Members": []any{ref(sys + "/SimpleStorage/0")}},
		sys + "/SimpleStorage/0": map[string]any{"@odata.id": sys + "/SimpleStorage/0", "Id": "0",
			"Devices": []any{map[string]any{"Name": "vda", "CapacityBytes": 64 << 30}}},
		sys + "/EthernetInterfaces":   map[string]any{"Members": []any{ref(sys + "/EthernetInterfaces/0")}},
		sys + "/EthernetInterfaces/0": map[string]any{"@odata.id": sys + "/EthernetInterfaces/0", "Id": "0", "MACAddress": "52:54:00:12:34:56"},
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path := strings.TrimSuffix(r.URL.Path, "/")
		if u, p, _ := r.BasicAuth(); path != "/redfish/v1" && (u != "admin" || p != "secret") {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		doc, ok := docs[path]
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		json.NewEncoder(w).Encode(doc)
	})
}

// TestInspectRedfishNode: inspect on a redfish node reads the BMC through the engine (under the node's
// reservation) and lands in manageable with properties, a port and an inventory; a BMC that refuses the
// credentials lands in inspect failed with a last_error naming the fix.
func TestInspectRedfishNode(t *testing.T) {
	bmc := httptest.NewServer(smallBMC())
	defer bmc.Close()
	tests := []struct {
		name, password, wantState, wantLastError string
	}{
		{"inspected", "secret", "manageable", ""},
		{"credentials refused", "wrong", "inspect failed", "Failed to inspect hardware. Reason: Redfish BMC " + bmc.URL +
			": list systems failed: the BMC refused the credentials; check driver_info.redfish_username and redfish_password"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, Config{})
			rf := &redfish.Driver{CallTimeout: 5 * time.Second, PowerTimeout: time.Second, PollInterval: 10 * time.Millisecond}
			f.eng.reg.AddHardware(redfish.Hardware([]string{"fake"}, []string{"fake"}))
			f.eng.reg.AddPower("redfish", rf)
			f.eng.reg.AddManagement("redfish", rf)
			f.eng.reg.AddInspect("redfish", &redfish.Inspector{Driver: rf, Store: f.st, AddPorts: redfish.AddPortsAll})
			ctx := context.Background()
			n := &store.Node{UUID: uuid.NewString(), Driver: "redfish", ProvisionState: "manageable",
				DriverInfo: map[string]any{"redfish_address": bmc.URL, "redfish_username": "admin", "redfish_password": tc.password}}
			require.NoError(t, f.eng.CreateNode(ctx, n))
			require.Equal(t, "redfish", n.Interfaces["inspect"], "redfish inspects out of band by default")

			require.NoError(t, f.eng.Provision(ctx, n.UUID, ProvisionRequest{Target: "inspect"}))
			f.eng.Wait()
			got, err := f.st.GetNode(ctx, n.UUID)
			require.NoError(t, err)
			assert.Equal(t, tc.wantState, got.ProvisionState)
			assert.True(t, strings.HasPrefix(got.LastError, tc.wantLastError), got.LastError)
			assert.NotContains(t, got.LastError, tc.password)
			assert.Empty(t, got.Reservation)
			ports, err := f.st.ListPorts(ctx, store.PortFilter{NodeUUID: n.UUID}, store.ListOptions{})
			require.NoError(t, err)
			_, invErr := f.st.Inventory(ctx, n.UUID)
			if tc.wantState != "manageable" {
				assert.Empty(t, ports)
				assert.ErrorIs(t, invErr, store.ErrNotFound)
				assert.Nil(t, got.InspectionFinishedAt)
				return
			}
			assert.NoError(t, invErr)
			assert.NotNil(t, got.InspectionFinishedAt)
			props, _ := json.Marshal(got.Properties)
			assert.JSONEq(t, `{"cpus":4,"cpu_arch":"x86_64","memory_mb":8192,"local_gb":63}`, string(props))
			require.Len(t, ports, 1)
			assert.Equal(t, "52:54:00:12:34:56", ports[0].Address)
		})
	}
}
