package api

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPortFieldGates: each port field is refused (406) on POST and PATCH before its microversion, accepted from it,
// and shown only from it.
func TestPortFieldGates(t *testing.T) {
	f := newNetFixture(t)
	pg := f.portgroup("1.26", `{"node_uuid": "`+netNode1+`"}`)
	tests := []struct {
		field, value string
		since        int
	}{
		{"pxe_enabled", `false`, 19},
		{"local_link_connection", `{"port_id": "Ethernet1/1", "switch_id": "00:11:22:33:44:55"}`, 19},
		{"portgroup_uuid", `"` + pg + `"`, 24},
		{"physical_network", `"physnet1"`, 34},
		{"is_smartnic", `false`, 53},
		{"name", `"eth-` + "x" + `"`, 88},
	}
	for i, tc := range tests {
		t.Run(tc.field, func(t *testing.T) {
			mac := "52:54:00:00:01:" + itoa(10+i)
			body := `{"node_uuid": "` + netNode1 + `", "address": "` + mac + `", "` + tc.field + `": ` + tc.value + `}`
			before, at := "1."+itoa(tc.since-1), "1."+itoa(tc.since)
			f.fails(http.StatusNotAcceptable, "Request not acceptable.", http.MethodPost, "/v1/ports", before, body)
			uuid := f.port(at, body)
			got := f.ok(http.StatusOK, http.MethodGet, "/v1/ports/"+uuid, before, "")
			assert.NotContains(t, got, tc.field, "hidden before 1.%d", tc.since)
			got = f.ok(http.StatusOK, http.MethodGet, "/v1/ports/"+uuid, at, "")
			assert.Contains(t, got, tc.field)
			f.fails(http.StatusNotAcceptable, "Request not acceptable.", http.MethodGet, "/v1/ports/"+uuid+"?fields="+tc.field, before, "")
			patch := `[{"op": "replace", "path": "/` + tc.field + `", "value": ` + tc.value + `}]`
			f.fails(http.StatusNotAcceptable, "Request not acceptable.", http.MethodPatch, "/v1/ports/"+uuid, before, patch)
			f.ok(http.StatusOK, http.MethodPatch, "/v1/ports/"+uuid, at, patch)
		})
	}
	t.Run("node_ident", func(t *testing.T) {
		body := `{"node_ident": "node-1", "address": "52:54:00:00:01:99"}`
		f.fails(http.StatusNotAcceptable, "Request not acceptable.", http.MethodPost, "/v1/ports", "1.93", body)
		got := f.ok(http.StatusCreated, http.MethodPost, "/v1/ports", "1.94", body)
		assert.Equal(t, netNode1, got["node_uuid"])
	})
	t.Run("portgroup filter", func(t *testing.T) {
		f.fails(http.StatusNotAcceptable, "Request not acceptable.", http.MethodGet, "/v1/ports?portgroup="+pg, "1.23", "")
		got := f.ok(http.StatusOK, http.MethodGet, "/v1/ports?portgroup="+pg, "1.24", "")
		assert.Len(t, got["ports"], 1)
		got = f.ok(http.StatusOK, http.MethodGet, "/v1/portgroups/"+pg+"/ports?fields=portgroup_uuid", "1.24", "")
		require.Len(t, got["ports"], 1)
		assert.Equal(t, pg, got["ports"].([]any)[0].(map[string]any)["portgroup_uuid"])
		f.fails(http.StatusForbidden, "Operation not permitted.", http.MethodGet, "/v1/ports?portgroup="+pg+"&node=node-1", "1.24", "")
	})
}

// TestPortValidation: POST /v1/ports checks as Ironic's PORT_SCHEMA and validators, and the portgroup rules.
func TestPortValidation(t *testing.T) {
	f := newNetFixture(t)
	pg := f.portgroup("1.26", `{"node_uuid": "`+netNode1+`"}`)
	noStandalone := f.portgroup("1.26", `{"node_uuid": "`+netNode1+`", "standalone_ports_supported": false}`)
	other := f.portgroup("1.26", `{"node_uuid": "`+netNode2+`"}`)
	f.port("1.88", `{"node_uuid": "`+netNode1+`", "address": "52:54:00:00:02:01", "name": "eth0"}`)
	body := func(extra string) string {
		return `{"node_uuid": "` + netNode1 + `", "address": "52:54:00:00:02:99"` + extra + `}`
	}
	tests := []struct {
		name, body string
		code       int
		msg        string
	}{
		{"no address", `{"node_uuid": "` + netNode1 + `"}`, 400, "'address' is a required property"},
		{"bad address", `{"node_uuid": "` + netNode1 + `", "address": "zz"}`, 400, "Expected valid MAC address for address: zz"},
		{"no node", `{"address": "52:54:00:00:02:99"}`, 400, "'node_uuid'"},
		{"node and node_ident", body(`, "node_ident": "node-1"`), 400, "exactly one of 'node_uuid' and 'node_ident'"},
		{"unknown node", `{"node_uuid": "44444444-4444-4444-8444-444444444444", "address": "52:54:00:00:02:99"}`, 400,
			"Node 44444444-4444-4444-8444-444444444444 could not be found."},
		{"duplicate address", `{"node_uuid": "` + netNode1 + `", "address": "52:54:00:00:02:01"}`, 409,
			"A port with MAC address 52:54:00:00:02:01 already exists."},
		{"duplicate name", body(`, "name": "eth0"`), 409, "A port with name eth0 already exists."},
		{"unknown field", body(`, "bogus": 1`), 400, "'bogus' was unexpected"},
		{"extra not an object", body(`, "extra": "x"`), 400, "is not of type 'object'"},
		{"empty physical_network", body(`, "physical_network": ""`), 400, "A non-empty value is required when setting physical_network"},
		{"long physical_network", body(`, "physical_network": "` + strings.Repeat("p", 65) + `"`), 400, "is too long"},
		{"link: unknown key", body(`, "local_link_connection": {"port_id": "p", "switch_id": "00:11:22:33:44:55", "vlan": "1"}`), 400,
			"additional property 'vlan'"},
		{"link: no switch_id", body(`, "local_link_connection": {"port_id": "p"}`), 400, "it needs port_id with switch_id"},
		{"link: bad switch_id", body(`, "local_link_connection": {"port_id": "p", "switch_id": "switch-1"}`), 400,
			"Expected a MAC address or OpenFlow datapath ID but received switch-1."},
		{"link: bad network_type", body(`, "local_link_connection": {"network_type": "other"}`), 400, "network_type \"other\""},
		{"link: network_type before 1.64", body(`, "local_link_connection": {"network_type": "unmanaged"}`), 406, "Request not acceptable."},
		{"smart NIC without hostname", body(`, "is_smartnic": true, "local_link_connection": {"port_id": "p", "switch_id": "00:11:22:33:44:55"}`),
			400, "Smart NIC port must have port_id and hostname in local_link_connection"},
		{"unknown portgroup", body(`, "portgroup_uuid": "44444444-4444-4444-8444-444444444444"`), 400,
			"Portgroup 44444444-4444-4444-8444-444444444444 could not be found."},
		{"portgroup not a UUID", body(`, "portgroup_uuid": "bond0"`), 400, "Expected UUID for portgroup_uuid: bond0"},
		{"portgroup of another node", body(`, "portgroup_uuid": "` + other + `"`), 400,
			"Port can not be added to a portgroup belonging to a different node."},
		{"PXE port in a portgroup without standalone ports", body(`, "portgroup_uuid": "` + noStandalone + `"`), 409,
			"Port group " + noStandalone + " doesn't support standalone ports."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			version := "1.88"
			switch tc.name {
			case "link: network_type before 1.64":
				version = "1.63"
			case "node and node_ident":
				version = "1.94"
			}
			f.fails(tc.code, tc.msg, http.MethodPost, "/v1/ports", version, tc.body)
		})
	}
	t.Run("physical networks of a portgroup", func(t *testing.T) {
		bond := f.portgroup("1.34", `{"node_uuid": "`+netNode1+`"}`)
		first := f.port("1.34", `{"node_uuid": "`+netNode1+`", "address": "52:54:00:00:02:51", "portgroup_uuid": "`+bond+`",
			"physical_network": "physnet1"}`)
		f.fails(http.StatusConflict, "Port with physical network None cannot become a member of port group "+bond+
			" which has ports in physical network physnet1.", http.MethodPost, "/v1/ports", "1.34",
			`{"node_uuid": "`+netNode1+`", "address": "52:54:00:00:02:52", "portgroup_uuid": "`+bond+`"}`)
		f.port("1.34", `{"node_uuid": "`+netNode1+`", "address": "52:54:00:00:02:52", "portgroup_uuid": "`+bond+`",
			"physical_network": "physnet1"}`)
		f.fails(http.StatusConflict, "Port with physical network physnet2 cannot become a member", http.MethodPatch,
			"/v1/ports/"+first, "1.34", `[{"op": "replace", "path": "/physical_network", "value": "physnet2"}]`)
	})
	t.Run("accepted", func(t *testing.T) {
		got := f.ok(http.StatusCreated, http.MethodPost, "/v1/ports", "1.88", body(`, "portgroup_uuid": "`+pg+`",
			"local_link_connection": {"port_id": "Eth1", "switch_id": "00:11:22:AA:BB:CC", "switch_info": "tor1"},
			"physical_network": "physnet1", "pxe_enabled": "false", "name": "eth1"`))
		assert.Equal(t, "00:11:22:aa:bb:cc", got["local_link_connection"].(map[string]any)["switch_id"], "normalized")
		assert.Equal(t, false, got["pxe_enabled"])
		assert.Equal(t, pg, got["portgroup_uuid"])
		f.port("1.88", `{"node_uuid": "`+netNode1+`", "address": "52:54:00:00:02:98", "portgroup_uuid": "`+noStandalone+`",
			"pxe_enabled": false}`)
		f.port("1.88", `{"node_uuid": "`+netNode1+`", "address": "52:54:00:00:02:97", "is_smartnic": true,
			"local_link_connection": {"port_id": "p", "hostname": "host-1"}}`)
		f.port("1.64", `{"node_uuid": "`+netNode1+`", "address": "52:54:00:00:02:96",
			"local_link_connection": {"network_type": "unmanaged"}}`)
		vtep := f.port("1.90", `{"node_uuid": "`+netNode1+`", "address": "52:54:00:00:02:95", "local_link_connection":
			{"port_id": "p", "vtep-logical-switch": "ls", "vtep-physical-switch": "ps"}}`)
		assert.Equal(t, map[string]any{}, f.ok(http.StatusOK, http.MethodGet, "/v1/ports/"+vtep, "1.89", "")["local_link_connection"])
		assert.Len(t, f.ok(http.StatusOK, http.MethodGet, "/v1/ports/"+vtep, "1.90", "")["local_link_connection"], 3)
		for _, ident := range []string{"eth1", "52:54:00:00:02:99", got["uuid"].(string)} {
			byIdent := f.ok(http.StatusOK, http.MethodGet, "/v1/ports/"+ident, "1.88", "")
			assert.Equal(t, got["uuid"], byIdent["uuid"], ident)
		}
	})
}

// TestPortStateRules: Ironic's update_port and destroy_port rules, applied under the node's reservation.
func TestPortStateRules(t *testing.T) {
	f := newNetFixture(t)
	ctx := context.Background()
	active := f.port("1.88", `{"node_uuid": "`+netNode3+`", "address": "52:54:00:00:03:01"}`)
	path := "/v1/ports/" + active
	replace := func(field, value string) string {
		return `[{"op": "replace", "path": "/` + field + `", "value": ` + value + `}]`
	}
	f.fails(http.StatusConflict, "Cannot update hardware address for port "+active+" as node "+netNode3+" is active",
		http.MethodPatch, path, "1.88", replace("address", `"52:54:00:00:03:02"`))
	for field, value := range map[string]string{"pxe_enabled": "false", "physical_network": `"p2"`,
		"local_link_connection": `{"port_id": "p", "switch_id": "00:11:22:33:44:55"}`} {
		f.fails(http.StatusConflict, "can not have any connectivity attributes", http.MethodPatch, path, "1.88", replace(field, value))
	}
	got := f.ok(http.StatusOK, http.MethodPatch, path, "1.88", replace("extra", `{"rack": "r1"}`))
	assert.Equal(t, map[string]any{"rack": "r1"}, got["extra"], "extra may change on an active node")
	f.fails(http.StatusBadRequest, "'address' is a required property", http.MethodPatch, path, "1.88",
		`[{"op": "remove", "path": "/address"}]`)

	// A VIF on the port keeps it; maintenance lifts every rule.
	p, err := f.st.GetPort(ctx, active)
	require.NoError(t, err)
	p.InternalInfo["tenant_vif_port_id"] = "vif-1"
	require.NoError(t, f.st.UpdatePort(ctx, p))
	f.fails(http.StatusConflict, "Cannot delete the port "+active+" as it is bound to VIF vif-1 for use.",
		http.MethodDelete, path, "1.88", "")
	f.ok(http.StatusAccepted, http.MethodPut, "/v1/nodes/"+netNode3+"/maintenance", "1.88", `{"reason": "rewire"}`)
	got = f.ok(http.StatusOK, http.MethodPatch, path, "1.88", replace("address", `"52:54:00:00:03:02"`))
	assert.Equal(t, "52:54:00:00:03:02", got["address"])
	f.ok(http.StatusOK, http.MethodPatch, path, "1.88", replace("pxe_enabled", "false"))

	// Moving a port to an active node is refused there; a node being inspected refuses any change.
	manageable := f.port("1.88", `{"node_uuid": "`+netNode1+`", "address": "52:54:00:00:03:03"}`)
	f.ok(http.StatusAccepted, http.MethodDelete, "/v1/nodes/"+netNode3+"/maintenance", "1.88", "")
	f.fails(http.StatusConflict, "can not have any connectivity attributes", http.MethodPatch, "/v1/ports/"+manageable,
		"1.88", `[{"op": "replace", "path": "/node_uuid", "value": "`+netNode3+`"}, {"op": "replace", "path": "/pxe_enabled", "value": false}]`)
	got = f.ok(http.StatusOK, http.MethodPatch, "/v1/ports/"+manageable, "1.88", replace("node_uuid", `"node-1"`))
	assert.Equal(t, netNode1, got["node_uuid"], "a node name names the port's own node")
	got = f.ok(http.StatusOK, http.MethodPatch, "/v1/ports/"+manageable, "1.88", replace("node_uuid", `"node-2"`))
	assert.Equal(t, netNode2, got["node_uuid"], "Ferric also takes a node name where Ironic wants a UUID")
	f.fails(http.StatusBadRequest, "Node node-9 could not be found.", http.MethodPatch, "/v1/ports/"+manageable, "1.88",
		replace("node_uuid", `"node-9"`))
	n, err := f.st.Reserve(ctx, netNode2, "t")
	require.NoError(t, err)
	n.ProvisionState = "inspecting"
	require.NoError(t, f.st.UpdateNode(ctx, n))
	require.NoError(t, f.st.Release(ctx, netNode2, "t"))
	f.fails(http.StatusConflict, "while it is in state \"inspecting\"", http.MethodPatch, "/v1/ports/"+manageable, "1.88",
		replace("extra", `{"a": "b"}`))

	// A node another conductor holds refuses port writes with NodeLocked.
	_, err = f.st.Reserve(ctx, netNode2, "other-conductor")
	require.NoError(t, err)
	f.fails(http.StatusConflict, "is locked by host other-conductor", http.MethodDelete, "/v1/ports/"+manageable, "1.88", "")
	f.fails(http.StatusConflict, "is locked by host other-conductor", http.MethodPost, "/v1/ports", "1.88",
		`{"node_uuid": "`+netNode2+`", "address": "52:54:00:00:03:09"}`)
	require.NoError(t, f.st.Release(ctx, netNode2, "other-conductor"))
	f.ok(http.StatusNoContent, http.MethodDelete, "/v1/ports/"+manageable, "1.88", "")
	f.fails(http.StatusNotFound, "Port "+manageable+" could not be found.", http.MethodDelete, "/v1/ports/"+manageable, "1.88", "")
}
