package api

import (
	"context"
	"encoding/json"
	"net/url"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// ironicFieldVersions is Ironic's VERSIONED_FIELDS for the microversions Ferric serves (written out here, not
// taken from nodeFields, so the test checks the table rather than repeating it).
var ironicFieldVersions = map[string]int{
	"driver_internal_info": 3, "name": 5, "inspection_finished_at": 6, "inspection_started_at": 6, "clean_step": 7,
	"raid_config": 12, "target_raid_config": 12, "network_interface": 20, "resource_class": 21,
	"boot_interface": 31, "console_interface": 31, "deploy_interface": 31, "inspect_interface": 31,
	"management_interface": 31, "power_interface": 31, "raid_interface": 31, "vendor_interface": 31,
	"storage_interface": 33, "traits": 37, "rescue_interface": 38, "bios_interface": 40, "fault": 42,
	"deploy_step": 44, "conductor_group": 46, "automated_clean": 47, "protected": 48, "protected_reason": 48,
	"conductor": 49, "owner": 50, "description": 51, "allocation_uuid": 52, "retired": 61, "retired_reason": 61,
	"lessee": 65, "network_data": 66, "boot_mode": 75, "secure_boot": 75, "shard": 82, "parent_node": 83,
	"firmware_interface": 86, "disable_power_off": 95,
}

func ver(minor int) string { return "1." + itoa(minor) }

// TestNodeFieldGates: each versioned field is hidden in GET before its microversion and shown from it; asking for
// it with fields= before is 406, as Ironic's check_allowed_fields.
func TestNodeFieldGates(t *testing.T) {
	f := newAllocFix(t, nil)
	for field, since := range ironicFieldVersions {
		t.Run(field, func(t *testing.T) {
			before := f.obj(f.do("GET", "/v1/nodes/gold-a", ver(since-1), ""))
			assert.NotContains(t, before, field, "shown before 1.%d", since)
			at := f.obj(f.do("GET", "/v1/nodes/gold-a", ver(since), ""))
			assert.Contains(t, at, field, "hidden at 1.%d", since)
			if since > 8 {
				rec := f.do("GET", "/v1/nodes/gold-a?fields="+field, ver(since-1), "")
				assert.Equal(t, 406, rec.Code, rec.Body.String())
			}
			rec := f.do("GET", "/v1/nodes/gold-a?fields="+field, ver(max(since, 8)), "")
			require.Equal(t, 200, rec.Code, rec.Body.String())
			assert.Contains(t, f.obj(rec), field)
		})
	}
	rec := f.do("GET", "/v1/nodes/gold-a?fields=name", "1.7", "")
	assert.Equal(t, 406, rec.Code, "fields= before 1.8")
	rec = f.do("GET", "/v1/nodes/gold-a?fields=bogus", "1.95", "")
	assert.Equal(t, 400, rec.Code, "an unknown field")
}

// TestNodeCreateFieldGates: a create body with a field newer than the request is 406 unless the value is empty
// (Ironic's reject_fields_in_newer_versions); at its version it is taken; protected is not a create field.
func TestNodeCreateFieldGates(t *testing.T) {
	f := newAllocFix(t, nil)
	for _, tc := range []struct {
		field, value string
		since        int
	}{
		{"resource_class", `"gold"`, 21}, {"network_interface", `"noop"`, 20}, {"conductor_group", `"g1"`, 46},
		{"automated_clean", `false`, 47}, {"owner", `"p1"`, 50}, {"description", `"d"`, 51},
		{"retired", `true`, 61}, {"retired_reason", `"old"`, 61}, {"lessee", `"l1"`, 65}, {"network_data", `{}`, 66},
	} {
		t.Run(tc.field, func(t *testing.T) {
			body := `{"driver": "fake-hardware", "` + tc.field + `": ` + tc.value + `}`
			rec := f.do("POST", "/v1/nodes", ver(tc.since-1), body)
			require.Equal(t, 406, rec.Code, rec.Body.String())
			rec = f.do("POST", "/v1/nodes", ver(tc.since-1), `{"driver": "fake-hardware", "`+tc.field+`": null}`)
			require.Equal(t, 201, rec.Code, "a null value is allowed before the field's version: %s", rec.Body.String())
			rec = f.do("POST", "/v1/nodes", ver(tc.since), body)
			require.Equal(t, 201, rec.Code, rec.Body.String())
			var want any
			require.NoError(t, json.Unmarshal([]byte(tc.value), &want))
			assert.Equal(t, want, f.obj(rec)[tc.field])
		})
	}
	for _, field := range []string{"protected", "protected_reason"} {
		rec := f.do("POST", "/v1/nodes", "1.95", `{"driver": "fake-hardware", "`+field+`": "x"}`)
		assert.Equal(t, 400, rec.Code, field)
		assert.Contains(t, faultString(t, rec), "Additional properties are not allowed ('"+field+"' was unexpected)")
	}
	rec := f.do("POST", "/v1/nodes", "1.95", `{"driver": "fake-hardware", "conductor_group": "Rack A"}`)
	assert.Equal(t, 400, rec.Code)
	assert.Contains(t, faultString(t, rec), "Expected a conductor group but received rack a.")
}

func patchBody(path string, value string) string {
	return `[{"op": "add", "path": "` + path + `", "value": ` + value + `}]`
}

const goodNetworkData = `{"links": [{"id": "eth0", "type": "phy", "ethernet_mac_address": "52:54:00:12:34:56", "mtu": 1500},
	{"id": "bond0", "type": "bond", "ethernet_mac_address": "52:54:00:12:34:57", "bond_mode": "802.3ad", "bond_links": ["eth0"]},
	{"id": "vlan10", "type": "vlan", "vlan_mac_address": "52:54:00:12:34:56", "vlan_link": "bond0", "vlan_id": 10}],
	"networks": [{"id": "n4", "link": "vlan10", "network_id": "net", "type": "ipv4", "ip_address": "192.0.2.10",
		"netmask": "255.255.255.0", "routes": [{"network": "0.0.0.0", "netmask": "0.0.0.0", "gateway": "192.0.2.1"}]},
		{"id": "n6", "link": "eth0", "network_id": "net6", "type": "ipv6_slaac"}],
	"services": [{"type": "dns", "address": "192.0.2.53"}, {"type": "dns", "address": "2001:db8::53"}]}`

// TestNodePatchValidation: PATCH field gates (406), the description's length, conductor_group's format and
// case, resource_class's length, network_data's schema, and reset_interfaces' gate and rule.
func TestNodePatchValidation(t *testing.T) {
	f := newAllocFix(t, nil)
	p := "/v1/nodes/gold-b"
	runSteps(t, f.srv, []step{
		{name: "owner before 1.50", method: "PATCH", path: p, version: "1.49", body: patchBody("/owner", `"p2"`), wantCode: 406},
		{name: "owner at 1.50", method: "PATCH", path: p, version: "1.50", body: patchBody("/owner", `"p2"`), wantCode: 200,
			want: map[string]any{"owner": "p2"}},
		{name: "lessee before 1.65", method: "PATCH", path: p, version: "1.64", body: patchBody("/lessee", `"l2"`), wantCode: 406},
		{name: "lessee at 1.65", method: "PATCH", path: p, version: "1.65", body: patchBody("/lessee", `"l2"`), wantCode: 200,
			want: map[string]any{"lessee": "l2"}},
		{name: "description before 1.51", method: "PATCH", path: p, version: "1.50", body: patchBody("/description", `"d"`), wantCode: 406},
		{name: "description too long", method: "PATCH", path: p, version: "1.51",
			body: patchBody("/description", `"`+strings.Repeat("d", 4097)+`"`), wantCode: 400,
			wantFault: "Cannot update node with description exceeding 4096 characters"},
		{name: "description of 4096", method: "PATCH", path: p, version: "1.51",
			body: patchBody("/description", `"`+strings.Repeat("d", 4096)+`"`), wantCode: 200},
		{name: "description of 4096 characters, more bytes", method: "PATCH", path: p, version: "1.51",
			body: patchBody("/description", `"`+strings.Repeat("é", 4096)+`"`), wantCode: 200},
		{name: "create with a description too long", method: "POST", path: "/v1/nodes", version: "1.51",
			body: `{"driver": "fake-hardware", "description": "` + strings.Repeat("é", 4097) + `"}`, wantCode: 400,
			wantFault: "description exceeding 4096 characters"},
		{name: "retired before 1.61", method: "PATCH", path: p, version: "1.60", body: patchBody("/retired", `true`), wantCode: 406},
		{name: "protected before 1.48", method: "PATCH", path: p, version: "1.47", body: patchBody("/protected", `true`), wantCode: 406},
		{name: "automated_clean before 1.47", method: "PATCH", path: p, version: "1.46", body: patchBody("/automated_clean", `false`), wantCode: 406},
		{name: "conductor_group before 1.46", method: "PATCH", path: p, version: "1.45", body: patchBody("/conductor_group", `"g"`), wantCode: 406},
		{name: "conductor_group lowercased", method: "PATCH", path: p, version: "1.46", body: patchBody("/conductor_group", `"Rack_1.A-b"`),
			wantCode: 200, want: map[string]any{"conductor_group": "rack_1.a-b"}},
		{name: "conductor_group format", method: "PATCH", path: p, version: "1.46", body: patchBody("/conductor_group", `"rack/1"`),
			wantCode: 400, wantFault: "Expected a conductor group but received rack/1."},
		{name: "conductor_group too long", method: "PATCH", path: p, version: "1.46",
			body: patchBody("/conductor_group", `"`+strings.Repeat("g", 256)+`"`), wantCode: 400},
		{name: "resource_class too long", method: "PATCH", path: p, version: "1.21",
			body: patchBody("/resource_class", `"`+strings.Repeat("r", 81)+`"`), wantCode: 400},
		{name: "resource_class of 80", method: "PATCH", path: p, version: "1.21",
			body: patchBody("/resource_class", `"`+strings.Repeat("r", 80)+`"`), wantCode: 200},
		{name: "network_data before 1.66", method: "PATCH", path: p, version: "1.65", body: patchBody("/network_data", goodNetworkData), wantCode: 406},
		{name: "network_data", method: "PATCH", path: p, version: "1.66", body: patchBody("/network_data", goodNetworkData), wantCode: 200},
		{name: "network_data without services", method: "PATCH", path: p, version: "1.66",
			body: patchBody("/network_data", `{"links": [], "networks": []}`), wantCode: 400,
			wantFault: "Invalid network_data: 'services' is a required property"},
		{name: "network_data empty object", method: "PATCH", path: p, version: "1.66", body: patchBody("/network_data", `{}`), wantCode: 400,
			wantFault: "Invalid network_data: 'links' is a required property"},
		{name: "network_data link type", method: "PATCH", path: p, version: "1.66",
			body:     patchBody("/network_data", `{"links": [{"id": "e", "type": "wifi", "ethernet_mac_address": "52:54:00:12:34:56"}], "networks": [], "services": []}`),
			wantCode: 400, wantFault: `Invalid network_data: links[0]: "type" has an invalid value wifi`},
		{name: "network_data link MAC", method: "PATCH", path: p, version: "1.66",
			body:     patchBody("/network_data", `{"links": [{"id": "e", "type": "phy", "ethernet_mac_address": "52:54:00"}], "networks": [], "services": []}`),
			wantCode: 400, wantFault: `Invalid network_data: links[0]: "ethernet_mac_address" has an invalid value`},
		{name: "network_data IPv4 address", method: "PATCH", path: p, version: "1.66",
			body:     patchBody("/network_data", `{"links": [], "networks": [{"id": "n", "link": "e", "network_id": "x", "type": "ipv4", "ip_address": "300.1.1.1"}], "services": []}`),
			wantCode: 400, wantFault: "Invalid network_data: networks[0]"},
		{name: "network_data DNS", method: "PATCH", path: p, version: "1.66",
			body:     patchBody("/network_data", `{"links": [], "networks": [], "services": [{"type": "ntp", "address": "192.0.2.1"}]}`),
			wantCode: 400, wantFault: "Invalid network_data: services[0]"},
		{name: "reset_interfaces before 1.45", method: "PATCH", path: p + "?reset_interfaces=true", version: "1.44",
			body: patchBody("/driver", `"fake-hardware"`), wantCode: 406},
		{name: "reset_interfaces without a driver", method: "PATCH", path: p + "?reset_interfaces=true", version: "1.45",
			body: patchBody("/extra/a", `"b"`), wantCode: 400,
			wantFault: "The reset_interfaces parameter can only be used when changing the node's driver."},
		{name: "reset_interfaces with a driver", method: "PATCH", path: p + "?reset_interfaces=true", version: "1.45",
			body: patchBody("/driver", `"fake-hardware"`), wantCode: 200},
		{name: "fault is read-only", method: "PATCH", path: p, version: "1.95", body: patchBody("/fault", `"power failure"`), wantCode: 400},
		{name: "conductor is read-only", method: "PATCH", path: p, version: "1.95", body: patchBody("/conductor", `"c"`), wantCode: 400},
	})
}

// TestResetInterfaces: with reset_interfaces and a new driver, the interfaces the PATCH did not set go back to
// the driver's defaults (emptied for the engine to resolve); without either nothing changes.
func TestResetInterfaces(t *testing.T) {
	yes, no := true, false
	set := []patchOp{{Op: "add", Path: "/deploy_interface"}}
	for _, tc := range []struct {
		name   string
		driver string
		reset  *bool
		want   map[string]string
	}{
		{"new driver, reset", "other", &yes, map[string]string{"boot": "", "deploy": "d1", "power": ""}},
		{"new driver, no reset", "other", &no, map[string]string{"boot": "b1", "deploy": "d1", "power": "p1"}},
		{"same driver, reset", "old", &yes, map[string]string{"boot": "b1", "deploy": "d1", "power": "p1"}},
		{"new driver, reset absent", "other", nil, map[string]string{"boot": "b1", "deploy": "d1", "power": "p1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := &store.Node{Driver: tc.driver, Interfaces: map[string]string{"boot": "b1", "deploy": "d1", "power": "p1"}}
			resetInterfaces(n, "old", tc.reset, set)
			assert.Equal(t, tc.want, n.Interfaces)
		})
	}
}

// TestNodeProtectedRetiredAPI: Ironic's policy errors through the API: protected only on active nodes, its reason
// only with it; retired not on available nodes; a protected node refuses undeploy, rebuild and delete (403); a
// retired node refuses provide.
func TestNodeProtectedRetiredAPI(t *testing.T) {
	f := newAllocFix(t, nil)
	active, avail, managed := f.node("gold-active").UUID, "/v1/nodes/gold-b", "/v1/nodes/gold-managed"
	pa := "/v1/nodes/" + active
	prov := func(target string) string { return `{"target": "` + target + `"}` }
	protectedMsg := "Node " + active + " is protected and cannot be undeployed, rebuilt or deleted"
	runSteps(t, f.srv, []step{
		{name: "protect an available node", method: "PATCH", path: avail, version: "1.48", body: patchBody("/protected", `true`),
			wantCode: 400, wantFault: "can only be made protected in provision states 'active' or 'rescue', the current state is 'available'"},
		{name: "protected_reason alone", method: "PATCH", path: pa, version: "1.48", body: patchBody("/protected_reason", `"db"`),
			wantCode: 400, wantFault: "The protected_reason field can only be set when protected is True"},
		{name: "protect the active node", method: "PATCH", path: pa, version: "1.48",
			body:     `[{"op": "add", "path": "/protected", "value": true}, {"op": "add", "path": "/protected_reason", "value": "db"}]`,
			wantCode: 200, want: map[string]any{"protected": true, "protected_reason": "db"}},
		{name: "undeploy", method: "PUT", path: pa + "/states/provision", version: "1.48", body: prov("deleted"),
			wantCode: 403, wantFault: protectedMsg},
		{name: "rebuild", method: "PUT", path: pa + "/states/provision", version: "1.48", body: prov("rebuild"),
			wantCode: 403, wantFault: protectedMsg},
		{name: "maintenance on", method: "PUT", path: pa + "/maintenance", version: "1.48", wantCode: 202},
		{name: "delete in maintenance", method: "DELETE", path: pa, version: "1.48", wantCode: 403, wantFault: protectedMsg},
		{name: "maintenance off", method: "DELETE", path: pa + "/maintenance", version: "1.48", wantCode: 202},
		{name: "other fields still change", method: "PATCH", path: pa, version: "1.48", body: patchBody("/extra/k", `"v"`), wantCode: 200},
		{name: "unprotect clears the reason", method: "PATCH", path: pa, version: "1.48", body: patchBody("/protected", `false`),
			wantCode: 200, want: map[string]any{"protected": false, "protected_reason": nil}},

		{name: "retire an available node", method: "PATCH", path: avail, version: "1.61", body: patchBody("/retired", `true`),
			wantCode: 400, wantFault: "can not have 'retired' set in provision state 'available'"},
		{name: "retired_reason alone", method: "PATCH", path: managed, version: "1.61", body: patchBody("/retired_reason", `"old"`),
			wantCode: 400, wantFault: "The retired_reason field can only be set when retired is True"},
		{name: "retire the manageable node", method: "PATCH", path: managed, version: "1.61",
			body:     `[{"op": "add", "path": "/retired", "value": "true"}, {"op": "add", "path": "/retired_reason", "value": "old"}]`,
			wantCode: 200, want: map[string]any{"retired": true, "retired_reason": "old"}},
		{name: "provide", method: "PUT", path: managed + "/states/provision", version: "1.61", body: prov("provide"),
			wantCode: 400, wantFault: "The providing operation can't be performed on node " + f.node("gold-managed").UUID + " because it is retired."},
		{name: "unretire clears the reason", method: "PATCH", path: managed, version: "1.61", body: patchBody("/retired", `false`),
			wantCode: 200, want: map[string]any{"retired": false, "retired_reason": nil}},
	})
}

// listNames lists node names for a query at a version, or fails with the status.
func listNames(t *testing.T, f *allocFix, query, version string) ([]string, map[string]any) {
	rec := f.do("GET", "/v1/nodes?"+query, version, "")
	require.Equal(t, 200, rec.Code, rec.Body.String())
	body := f.obj(rec)
	var names []string
	for _, n := range body["nodes"].([]any) {
		names = append(names, n.(map[string]any)["name"].(string))
	}
	sort.Strings(names)
	return names, body
}

// TestNodeListFilters: each filter's gate (406 before its version) and what it selects, including the filters on
// fields kept in the node's body, paged.
func TestNodeListFilters(t *testing.T) {
	f := newAllocFix(t, nil)
	setup := map[string]func(n *store.Node){
		"gold-a":      func(n *store.Node) { n.Description = "rack 7 left" },
		"gold-b":      func(n *store.Node) { n.Lessee, n.Fault, n.Maintenance = "p1", "power failure", true },
		"gold-active": func(n *store.Node) { n.Lessee, n.Retired = "l1", true },
		"silver":      func(n *store.Node) { n.Description = "rack 8" },
	}
	for name, fn := range setup {
		n, err := f.st.Reserve(context.Background(), name, "setup")
		require.NoError(t, err)
		fn(n)
		require.NoError(t, f.st.UpdateNode(context.Background(), n))
		require.NoError(t, f.st.Release(context.Background(), n.UUID, "setup"))
	}
	all := []string{"gold-a", "gold-active", "gold-b", "gold-maint", "gold-managed", "silver"}
	for _, tc := range []struct {
		query  string
		before string // the version that refuses it, "" when none
		at     string
		want   []string
	}{
		{"provision_state=active", "1.8", "1.9", []string{"gold-active"}},
		{"driver=fake-hardware", "1.15", "1.16", all},
		{"resource_class=silver", "1.20", "1.21", []string{"silver"}},
		{"fault=power+failure", "1.41", "1.42", []string{"gold-b"}},
		{"conductor_group=", "1.45", "1.46", all},
		{"conductor=test", "1.48", "1.49", all},
		{"conductor=elsewhere", "", "1.49", nil},
		{"owner=p1", "1.49", "1.50", []string{"gold-a"}},
		{"lessee=l1", "1.64", "1.65", []string{"gold-active"}},
		{"project=p1", "", "1.65", []string{"gold-a", "gold-b"}},
		{"description_contains=rack", "", "1.51", []string{"gold-a", "silver"}},
		{"description_contains=rack+7", "", "1.51", []string{"gold-a"}},
		{"retired=true", "", "1.61", []string{"gold-active"}},
		{"retired=false&project=p1&maintenance=false", "", "1.61", []string{"gold-a"}},
	} {
		t.Run(tc.query, func(t *testing.T) {
			if tc.before != "" {
				rec := f.do("GET", "/v1/nodes?"+tc.query, tc.before, "")
				assert.Equal(t, 406, rec.Code, rec.Body.String())
				assert.Contains(t, faultString(t, rec), "The minimal required API version should be "+tc.at)
			}
			got, _ := listNames(t, f, tc.query, tc.at)
			assert.Equal(t, tc.want, got)
		})
	}
	rec := f.do("GET", "/v1/nodes?fault=bogus", "1.42", "")
	assert.Equal(t, 400, rec.Code)
	assert.Contains(t, faultString(t, rec), `Unrecognized fault "bogus" is specified`)
	rec = f.do("GET", "/v1/nodes?retired=maybe", "1.61", "")
	assert.Equal(t, 400, rec.Code)
	for key, since := range map[string]int{"resource_class": 21, "conductor_group": 46, "owner": 50} {
		rec = f.do("GET", "/v1/nodes?sort_key="+key, ver(since-1), "")
		assert.Equal(t, 406, rec.Code, "sort_key=%s before 1.%d", key, since)
		rec = f.do("GET", "/v1/nodes?sort_key="+key, ver(since), "")
		assert.Equal(t, 200, rec.Code, "sort_key=%s at 1.%d", key, since)
	}

	// A body filter pages like a store filter: limit counts matching nodes, next carries the filter on.
	page1, body := listNames(t, f, "project=p1&limit=1", "1.65")
	require.Len(t, page1, 1)
	next, err := url.Parse(body["next"].(string))
	require.NoError(t, err)
	assert.Equal(t, "p1", next.Query().Get("project"))
	page2, _ := listNames(t, f, next.RawQuery, "1.65")
	assert.Equal(t, []string{"gold-a", "gold-b"}, append(page1, page2...))
}
