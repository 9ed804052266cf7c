package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/store"
)

const (
	inspUUID = "7c2b8f0e-1d3a-4e5f-8a9b-0c1d2e3f4a5b"
	inspMAC  = "52:54:00:12:34:56"
)

// inspectionServer is agentServer (one node waiting for its deploy agent, fuzzNodeUUID) plus a node in inspect
// wait with the agent inspect interface and one port.
func inspectionServer(t testing.TB) (*Server, store.Store) {
	srv, st := agentServer(t)
	reg := srv.eng.Registry()
	driver.AddInspectRescue(reg)
	reg.AddInspect(driver.InspectAgent, driver.AgentInspect{Store: st, AddPorts: driver.AddPortsAll})
	ctx := context.Background()
	n := &store.Node{UUID: inspUUID, Driver: "fake-hardware", ProvisionState: "inspect wait",
		Interfaces:         map[string]string{"inspect": "agent"},
		DriverInternalInfo: map[string]any{"agent_secret_token": fuzzToken, "agent_secret_token_pregenerated": true}}
	require.NoError(t, srv.eng.CreateNode(ctx, n))
	require.NoError(t, st.CreatePort(ctx, &store.Port{UUID: "0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9", Address: inspMAC,
		NodeUUID: inspUUID, CreatedAt: time.Now()}))
	return srv, st
}

func postInspection(srv *Server, version, query, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, "/v1/continue_inspection"+query, strings.NewReader(body))
	if version != "" {
		req.Header.Set(headerVersion, version)
	}
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, req)
	return rec
}

func faultString(t *testing.T, rec *httptest.ResponseRecorder) string {
	var body struct {
		ErrorMessage string `json:"error_message"`
	}
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body), rec.Body.String())
	var inner struct {
		Faultstring string `json:"faultstring"`
	}
	require.NoError(t, json.Unmarshal([]byte(body.ErrorMessage), &inner))
	return inner.Faultstring
}

// inventoryBody is a minimal valid body for the MACs given.
func inventoryBody(macs ...string) string {
	var ifs []string
	for i, m := range macs {
		ifs = append(ifs, `{"name": "eth`+string(rune('0'+i))+`", "mac_address": "`+m+`"}`)
	}
	return `{"inventory": {"interfaces": [` + strings.Join(ifs, ", ") + `], "cpu": {"count": 4, "architecture": "x86_64"},
		"memory": {"total": 4294967296, "physical_mb": 4096}, "disks": [{"name": "/dev/sda", "size": 107374182400}],
		"bmc_address": "0.0.0.0"}, "boot_interface": null, "error": null}`
}

// TestContinueInspectionRequests: the endpoint's versions, schema checks (400 naming the field), size cap, and the
// single 404 for nodes that are not waiting for this inspection.
func TestContinueInspectionRequests(t *testing.T) {
	srv, st := inspectionServer(t)
	big := `{"inventory": {"interfaces": [{"mac_address": "` + inspMAC + `"}], "pad": "` + strings.Repeat("x", 1<<20) + `"}}`
	tests := []struct {
		name, version, query, body string
		wantCode                   int
		wantMsg                    string
	}{
		{"1.83 is too old", "1.83", "", inventoryBody(inspMAC), 404, "API version 1.84 or newer is required"},
		{"node_uuid needs 1.84", "", "?node_uuid=" + inspUUID, inventoryBody(inspMAC), 404, "API version 1.84 or newer is required"},
		{"bad node_uuid", "1.84", "?node_uuid=x", inventoryBody(inspMAC), 400, `Invalid node_uuid "x": expected a UUID`},
		{"no inventory", "1.84", "", `{"plugin": 1}`, 400, `Invalid inspection data: "inventory" is a required property`},
		{"no interfaces", "1.84", "", `{"inventory": {"cpu": {}}}`, 400,
			`Invalid inspection data: "inventory.interfaces" must be a non-empty list of the node's NICs`},
		{"interface without MAC", "1.84", "", `{"inventory": {"interfaces": [{"name": "eth0"}]}}`, 400,
			`Invalid inspection data: "inventory.interfaces[0].mac_address" is a required string`},
		{"no cpu", "1.84", "", strings.Replace(inventoryBody(inspMAC), `"cpu"`, `"cpux"`, 1), 400,
			`Invalid inspection data: "inventory.cpu" is a required object`},
		{"no cpu count", "1.84", "", strings.Replace(inventoryBody(inspMAC), `"count": 4`, `"count": 0`, 1), 400,
			`Invalid inspection data: "inventory.cpu.count" must be a positive number`},
		{"no architecture", "1.84", "", strings.Replace(inventoryBody(inspMAC), `"architecture": "x86_64"`, `"architecture": ""`, 1), 400,
			`Invalid inspection data: "inventory.cpu.architecture" is required`},
		{"no memory", "1.84", "", strings.Replace(inventoryBody(inspMAC), `"memory"`, `"memoryx"`, 1), 400,
			`Invalid inspection data: "inventory.memory" is a required object`},
		{"no memory size", "1.84", "", strings.Replace(inventoryBody(inspMAC), `"total": 4294967296, "physical_mb": 4096`, `"total": null`, 1), 400,
			`Invalid inspection data: "inventory.memory.physical_mb" (or "total") must be a positive number`},
		{"only invalid MACs", "1.84", "", inventoryBody("zz"), 400, "No lookup information provided"},
		{"too big", "1.84", "", big, 413, "Request body is larger than the limit of 1048576 bytes"},
		{"node waiting for its deploy agent", "1.84", "", inventoryBody(fuzzNodeMAC), 404, "Resource could not be found."},
		{"same node by UUID", "1.84", "?node_uuid=" + fuzzNodeUUID, inventoryBody(fuzzNodeMAC), 404, "Resource could not be found."},
		{"unknown MACs", "1.84", "", inventoryBody("52:54:00:99:99:99"), 404, "Resource could not be found."},
		{"UUID of the inspecting node, MACs of another", "1.84", "?node_uuid=" + inspUUID, inventoryBody(fuzzNodeMAC), 404,
			"Resource could not be found."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := postInspection(srv, tc.version, tc.query, tc.body)
			require.Equal(t, tc.wantCode, rec.Code, rec.Body.String())
			assert.Equal(t, tc.wantMsg, faultString(t, rec))
			checkPublicAnswer(t, rec, tc.body)
		})
	}
	srv.eng.Wait()
	n, err := st.GetNode(context.Background(), inspUUID)
	require.NoError(t, err)
	assert.Equal(t, "inspect wait", n.ProvisionState, "no refused request moved the node")
	assert.NotContains(t, n.Properties, "cpus")
	assert.True(t, publicPath("/v1/continue_inspection"), "agents have no credentials: public like lookup")
}

// TestContinueInspectionAccepted: at 1.84 the answer is 202 with the lookup-shaped node (secrets masked, the token
// "******" when it was handed out before) and the node becomes manageable with its inventory; at 1.1 the answer is
// ironic-inspector's {"uuid": ...}.
func TestContinueInspectionAccepted(t *testing.T) {
	for _, tc := range []struct{ name, version string }{{"1.84", "1.84"}, {"1.1 (inspector compatible)", ""}} {
		t.Run(tc.name, func(t *testing.T) {
			srv, st := inspectionServer(t)
			rec := postInspection(srv, tc.version, "", inventoryBody(inspMAC, "52:54:00:12:34:57"))
			require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())
			checkPublicAnswer(t, rec, "")
			var out map[string]any
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &out))
			if tc.version == "" {
				assert.Equal(t, map[string]any{"uuid": inspUUID}, out)
			} else {
				node := out["node"].(map[string]any)
				assert.Equal(t, inspUUID, node["uuid"])
				cfg := out["config"].(map[string]any)
				assert.Equal(t, "******", cfg["agent_token"], "the pre-generated token is never shown")
				assert.Equal(t, true, cfg["ferric_inspection_power_off"], "the agent may power off: the conductor will")
				for k := range node["driver_internal_info"].(map[string]any) {
					assert.Contains(t, agentReadableKeys(), k)
				}
			}
			srv.eng.Wait()
			n, err := st.GetNode(context.Background(), inspUUID)
			require.NoError(t, err)
			assert.Equal(t, "manageable", n.ProvisionState, n.LastError)
			assert.Equal(t, float64(4), n.Properties["cpus"])
			assert.Equal(t, float64(4096), n.Properties["memory_mb"])
			assert.Equal(t, float64(99), n.Properties["local_gb"])
			inv, err := st.Inventory(context.Background(), inspUUID)
			require.NoError(t, err)
			assert.Contains(t, inv.PluginData, "boot_interface", "everything but the inventory is plugin data")
			ports, err := st.ListPorts(context.Background(), store.PortFilter{NodeUUID: inspUUID}, store.ListOptions{})
			require.NoError(t, err)
			assert.Len(t, ports, 2, "add_ports=all")
		})
	}
}

// FuzzContinueInspection: whatever the body and query, the endpoint never fails on the server side, never leaks a
// secret, and never changes the node waiting for its deploy agent.
func FuzzContinueInspection(f *testing.F) {
	for _, s := range []string{inventoryBody(inspMAC), inventoryBody(fuzzNodeMAC), `{"inventory": []}`, `[]`, `null`,
		`{"inventory": {"interfaces": [{"mac_address": 5}]}}`, `{"inventory": {"interfaces": [null]}}`,
		`{"inventory": {"interfaces": [{"mac_address": "` + inspMAC + `"}], "cpu": {"count": "4"}, "memory": 1}}`,
		`{"inventory": {"interfaces": [{"mac_address": "` + inspMAC + `"}], "cpu": {"count": 1e308, "architecture": 7},
		"memory": {"total": -1}, "bmc_address": 5}}`} {
		f.Add("", s)
		f.Add("?node_uuid="+inspUUID, s)
		f.Add("?node_uuid="+fuzzNodeUUID, s)
	}
	srv, st := inspectionServer(f)
	f.Fuzz(func(t *testing.T, query, body string) {
		if strings.ContainsAny(query, " #\n\r\t") {
			return
		}
		req := httptest.NewRequest(http.MethodPost, "/v1/continue_inspection", strings.NewReader(body))
		req.URL.RawQuery = strings.TrimPrefix(query, "?")
		req.Header.Set(headerVersion, "1.89")
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		srv.eng.Wait()
		checkPublicAnswer(t, rec, query+body)
		n, err := st.GetNode(context.Background(), fuzzNodeUUID)
		require.NoError(t, err)
		assert.Equal(t, "wait call-back", n.ProvisionState)
		assert.NotContains(t, n.Properties, "cpus")
	})
}
