package api

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// setNode sets a fixture node's power and provision states directly in the store (as a power sync would).
func (f *netFixture) setNode(uuid, power, provision string) {
	f.t.Helper()
	ctx := context.Background()
	n, err := f.st.Reserve(ctx, uuid, "setup")
	require.NoError(f.t, err)
	n.PowerState, n.ProvisionState = power, provision
	require.NoError(f.t, f.st.UpdateNode(ctx, n))
	require.NoError(f.t, f.st.Release(ctx, n.UUID, "setup"))
}

func (f *netFixture) connector(node, typ, id string) string {
	f.t.Helper()
	return f.ok(http.StatusCreated, http.MethodPost, "/v1/volume/connectors", "1.32",
		`{"node_uuid": "`+node+`", "type": "`+typ+`", "connector_id": "`+id+`"}`)["uuid"].(string)
}

func (f *netFixture) target(node string, index int, volume string) string {
	f.t.Helper()
	return f.ok(http.StatusCreated, http.MethodPost, "/v1/volume/targets", "1.32",
		`{"node_uuid": "`+node+`", "volume_type": "iscsi", "boot_index": `+itoa(index)+`, "volume_id": "`+volume+`"}`)["uuid"].(string)
}

// TestVolumeEndpointGates: every volume endpoint is 404 before 1.32 (as Ironic) and answers from it on.
func TestVolumeEndpointGates(t *testing.T) {
	f := newNetFixture(t)
	f.setNode(netNode1, "power off", "manageable")
	vc := f.connector(netNode1, "iqn", "iqn.2017-07.org.example:gate")
	vt := f.target(netNode1, 0, "vol-gate")
	tests := []struct {
		method, path, body string
		want               int
	}{
		{http.MethodGet, "/v1/volume", "", http.StatusOK},
		{http.MethodGet, "/v1/volume/", "", http.StatusOK},
		{http.MethodGet, "/v1/volume/connectors", "", http.StatusOK},
		{http.MethodGet, "/v1/volume/targets", "", http.StatusOK},
		{http.MethodPost, "/v1/volume/connectors", `{"node_uuid": "` + netNode1 + `", "type": "ip", "connector_id": "192.0.2.9"}`, http.StatusCreated},
		{http.MethodPost, "/v1/volume/targets", `{"node_uuid": "` + netNode1 + `", "volume_type": "iscsi", "boot_index": 7, "volume_id": "v7"}`, http.StatusCreated},
		{http.MethodGet, "/v1/volume/connectors/" + vc, "", http.StatusOK},
		{http.MethodGet, "/v1/volume/targets/" + vt, "", http.StatusOK},
		{http.MethodPatch, "/v1/volume/connectors/" + vc, `[{"op": "add", "path": "/extra/a", "value": 1}]`, http.StatusOK},
		{http.MethodPatch, "/v1/volume/targets/" + vt, `[{"op": "add", "path": "/extra/a", "value": 1}]`, http.StatusOK},
		{http.MethodGet, "/v1/nodes/" + netNode1 + "/volume", "", http.StatusOK},
		{http.MethodGet, "/v1/nodes/" + netNode1 + "/volume/connectors", "", http.StatusOK},
		{http.MethodGet, "/v1/nodes/" + netNode1 + "/volume/targets", "", http.StatusOK},
		{http.MethodDelete, "/v1/volume/connectors/" + vc, "", http.StatusNoContent},
		{http.MethodDelete, "/v1/volume/targets/" + vt, "", http.StatusNoContent},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			f.t = t
			f.fails(http.StatusNotFound, "The resource could not be found.", tc.method, tc.path, "1.31", tc.body)
			f.ok(tc.want, tc.method, tc.path, "1.32", tc.body)
		})
	}
}

// TestVolumeRoot: /v1/volume and a node's volume link to themselves, connectors and targets; /v1 lists volume
// from 1.32 on, between portgroups and lookup as Ironic orders it.
func TestVolumeRoot(t *testing.T) {
	f := newNetFixture(t)
	base := "http://127.0.0.1:6385"
	doc := f.ok(http.StatusOK, http.MethodGet, "/v1/volume", "1.32", "")
	assert.Equal(t, []any{map[string]any{"href": base + "/v1/volume/", "rel": "self"},
		map[string]any{"href": base + "/volume/", "rel": "bookmark"}}, doc["links"])
	assert.Equal(t, base+"/v1/volume/connectors", doc["connectors"].([]any)[0].(map[string]any)["href"])
	assert.Equal(t, base+"/volume/targets", doc["targets"].([]any)[1].(map[string]any)["href"])
	doc = f.ok(http.StatusOK, http.MethodGet, "/v1/nodes/node-1/volume", "1.32", "")
	assert.Equal(t, base+"/v1/nodes/node-1/volume/targets", doc["targets"].([]any)[0].(map[string]any)["href"])
	rec := f.do(http.MethodGet, "/v1", "1.32", "")
	assert.Contains(t, rec.Body.String(), `"portgroups": [`)
	assert.Less(t, strings.Index(rec.Body.String(), `"portgroups"`), strings.Index(rec.Body.String(), `"volume"`))
	assert.Less(t, strings.Index(rec.Body.String(), `"volume"`), strings.Index(rec.Body.String(), `"lookup"`))
	assert.NotContains(t, f.do(http.MethodGet, "/v1", "1.31", "").Body.String(), `"volume"`)
	// The node shows its volume link from 1.32.
	n := f.ok(http.StatusOK, http.MethodGet, "/v1/nodes/"+netNode1, "1.32", "")
	assert.Equal(t, base+"/v1/nodes/"+netNode1+"/volume", n["volume"].([]any)[0].(map[string]any)["href"])
}

// TestVolumeConnectorCreate: the body is checked as Ironic's CONNECTOR_SCHEMA and validators; the connector type
// is free text (Ironic's API does not restrict it; the CLI offers iqn, ip, mac, wwnn, wwpn, port, portgroup).
func TestVolumeConnectorCreate(t *testing.T) {
	f := newNetFixture(t)
	vc := f.connector(netNode1, "iqn", "iqn.2017-07.org.example:01")
	body := func(extra string) string {
		return `{"node_uuid": "` + netNode2 + `", "type": "wwpn", "connector_id": "50:01"` + extra + `}`
	}
	tests := []struct {
		name, path, body string
		code             int
		msg              string
	}{
		{"no connector_id", "/v1/volume/connectors", `{"node_uuid": "` + netNode1 + `", "type": "ip"}`, 400,
			"Schema error for connector: 'connector_id' is a required property"},
		{"no node_uuid", "/v1/volume/connectors", `{"type": "ip", "connector_id": "x"}`, 400,
			"Schema error for connector: 'node_uuid' is a required property"},
		{"no type", "/v1/volume/connectors", `{"node_uuid": "` + netNode1 + `", "connector_id": "x"}`, 400,
			"Schema error for connector: 'type' is a required property"},
		{"unknown field", "/v1/volume/connectors", body(`, "foo": 1`), 400,
			"Additional properties are not allowed ('foo' was unexpected)"},
		{"type not a string", "/v1/volume/connectors", `{"node_uuid": "` + netNode1 + `", "type": 5, "connector_id": "x"}`, 400,
			"5 is not of type 'string' (field type)"},
		{"type too long", "/v1/volume/connectors", `{"node_uuid": "` + netNode1 + `", "type": "` + strings.Repeat("t", 33) + `", "connector_id": "x"}`, 400,
			"is too long (field type: at most 32 characters)"},
		{"extra not an object", "/v1/volume/connectors", body(`, "extra": []`), 400, "is not of type 'object'"},
		{"node_uuid a name", "/v1/volume/connectors", `{"node_uuid": "node-1", "type": "ip", "connector_id": "x"}`, 400,
			"Expected UUID for node_uuid: node-1"},
		{"unknown node", "/v1/volume/connectors", `{"node_uuid": "99999999-9999-4999-8999-999999999999", "type": "ip", "connector_id": "x"}`, 400,
			"Invalid input for field/attribute node_uuid. Value: '99999999-9999-4999-8999-999999999999'. "},
		{"bad uuid", "/v1/volume/connectors", body(`, "uuid": "nope"`), 400, "Expected UUID for uuid: nope"},
		{"duplicate type and id", "/v1/volume/connectors", `{"node_uuid": "` + netNode2 + `", "type": "iqn", "connector_id": "iqn.2017-07.org.example:01"}`, 409,
			"A volume connector with type iqn and connector ID iqn.2017-07.org.example:01 already exists."},
		{"duplicate uuid", "/v1/volume/connectors", body(`, "uuid": "` + vc + `"`), 409,
			"A volume connector with UUID " + vc + " already exists."},
		{"through a node", "/v1/nodes/" + netNode1 + "/volume/connectors", body(""), 400, "Malformed request URI."},
		{"empty body", "/v1/volume/connectors", "", 400, "The request body is empty"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f.t = t
			f.fails(tc.code, tc.msg, http.MethodPost, tc.path, "1.32", tc.body)
		})
	}
	f.t = t
	// The same connector_id with another type is another connector; the answer is the whole connector in
	// Ironic's field order, with its Location.
	rec := f.do(http.MethodPost, "/v1/volume/connectors", "1.32", body(`, "extra": {"k": "v"}, "uuid": "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"`))
	require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
	assert.Equal(t, "http://127.0.0.1:6385/v1/volume/connectors/aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa", rec.Header().Get("Location"))
	assert.Equal(t, []string{"uuid", "created_at", "updated_at", "connector_id", "extra", "type", "links", "node_uuid"},
		topKeys(t, rec.Body.Bytes()))
	f.connector(netNode1, "free-form type", "iqn.2017-07.org.example:01")
}

// TestVolumeConnectorList: default fields, detail, fields, sorting, paging and the node filters as Ironic's get_all.
func TestVolumeConnectorList(t *testing.T) {
	f := newNetFixture(t)
	a := f.connector(netNode1, "iqn", "iqn.a")
	b := f.connector(netNode2, "ip", "192.0.2.2")
	c := f.connector(netNode2, "mac", "52:54:00:00:00:02")
	items := func(q string) []any {
		return f.ok(http.StatusOK, http.MethodGet, "/v1/volume/connectors"+q, "1.32", "")["connectors"].([]any)
	}
	first := items("")[0].(map[string]any)
	assert.Equal(t, a, first["uuid"])
	assert.ElementsMatch(t, []string{"uuid", "node_uuid", "type", "connector_id", "links"}, keys(first))
	assert.Contains(t, items("?detail=true")[0].(map[string]any), "extra")
	assert.ElementsMatch(t, []string{"type", "links"}, keys(items("?fields=type")[0].(map[string]any)))
	assert.Len(t, items("?node="+netNode2), 2)
	assert.Len(t, items("?node=node-2"), 2)
	assert.Len(t, f.ok(http.StatusOK, http.MethodGet, "/v1/nodes/"+netNode2+"/volume/connectors", "1.32", "")["connectors"], 2)
	assert.Equal(t, c, items("?sort_key=type&sort_dir=desc")[0].(map[string]any)["uuid"])

	page := f.ok(http.StatusOK, http.MethodGet, "/v1/volume/connectors?limit=1&marker="+a, "1.32", "")
	assert.Equal(t, b, page["connectors"].([]any)[0].(map[string]any)["uuid"])
	assert.Equal(t, "http://127.0.0.1:6385/v1/volume/connectors?limit=1&marker="+b, page["next"])

	for _, tc := range []struct {
		name, path string
		code       int
		msg        string
	}{
		{"fields and detail", "/v1/volume/connectors?fields=uuid&detail=true", 400, "Can't fetch a subset of fields with 'detail' set"},
		{"unknown field", "/v1/volume/connectors?fields=nope", 400, `Field(s) "nope" are not valid`},
		{"sort by extra", "/v1/volume/connectors?sort_key=extra", 400, "The sort_key value extra is an invalid field for sorting"},
		{"sort by unknown", "/v1/volume/connectors?sort_key=nope", 400, "is an invalid field for sorting"},
		{"bad sort_dir", "/v1/volume/connectors?sort_dir=up", 400, "Invalid sort direction: up"},
		{"bad detail", "/v1/volume/connectors?detail=maybe", 400, "detail"},
		{"unknown parameter", "/v1/volume/connectors?address=x", 400, `Unknown query parameter "address"`},
		{"unknown node", "/v1/volume/connectors?node=nope", 404, "Node nope could not be found."},
		{"unknown node path", "/v1/nodes/nope/volume/connectors", 404, "Node nope could not be found."},
		{"unknown marker", "/v1/volume/connectors?marker=99999999-9999-4999-8999-999999999999", 404,
			"Volume connector 99999999-9999-4999-8999-999999999999 could not be found."},
		{"bad marker", "/v1/volume/connectors?marker=nope", 400, "Invalid marker"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f.t = t
			f.fails(tc.code, tc.msg, http.MethodGet, tc.path, "1.32", "")
		})
	}
}

// TestVolumeConnectorShow: a connector by UUID, with ?fields; names are not identifiers, the node path is refused.
func TestVolumeConnectorShow(t *testing.T) {
	f := newNetFixture(t)
	vc := f.connector(netNode1, "iqn", "iqn.show")
	got := f.ok(http.StatusOK, http.MethodGet, "/v1/volume/connectors/"+vc, "1.32", "")
	assert.Equal(t, map[string]any{}, got["extra"])
	assert.Nil(t, got["updated_at"])
	assert.Equal(t, "http://127.0.0.1:6385/volume/connectors/"+vc, got["links"].([]any)[1].(map[string]any)["href"])
	assert.ElementsMatch(t, []string{"connector_id", "links"},
		keys(f.ok(http.StatusOK, http.MethodGet, "/v1/volume/connectors/"+vc+"?fields=connector_id", "1.32", "")))
	f.fails(400, "Expected UUID for connector_uuid: iqn.show", http.MethodGet, "/v1/volume/connectors/iqn.show", "1.32", "")
	f.fails(404, "Volume connector 99999999-9999-4999-8999-999999999999 could not be found.", http.MethodGet,
		"/v1/volume/connectors/99999999-9999-4999-8999-999999999999", "1.32", "")
	f.fails(400, "Malformed request URI.", http.MethodGet, "/v1/nodes/"+netNode1+"/volume/connectors/"+vc, "1.32", "")
	f.fails(400, "Malformed request URI.", http.MethodDelete, "/v1/nodes/"+netNode1+"/volume/connectors/"+vc, "1.32", "")
	f.fails(400, `Field(s) "nope" are not valid`, http.MethodGet, "/v1/volume/connectors/"+vc+"?fields=nope", "1.32", "")
}

// TestVolumeConnectorPatch: Ironic's patch checks, and the conductor's rule that a connector changes only while
// the node it ends on is powered off (an unknown power state refuses too).
func TestVolumeConnectorPatch(t *testing.T) {
	f := newNetFixture(t)
	f.setNode(netNode1, "power off", "manageable")
	f.setNode(netNode2, "power off", "manageable")
	vc := f.connector(netNode1, "iqn", "iqn.patch")
	f.connector(netNode2, "ip", "192.0.2.5")
	path := "/v1/volume/connectors/" + vc
	patch := func(ops string) string { return `[` + ops + `]` }

	got := f.ok(http.StatusOK, http.MethodPatch, path, "1.32", patch(`{"op": "replace", "path": "/connector_id", "value": "iqn.new"}`))
	assert.Equal(t, "iqn.new", got["connector_id"])
	assert.NotNil(t, got["updated_at"])
	// Moving to another powered-off node; a remove of node_uuid keeps the node (Ironic's patched document).
	got = f.ok(http.StatusOK, http.MethodPatch, path, "1.32", patch(`{"op": "replace", "path": "/node_uuid", "value": "`+netNode2+`"}`))
	assert.Equal(t, netNode2, got["node_uuid"])
	got = f.ok(http.StatusOK, http.MethodPatch, path, "1.32", patch(`{"op": "remove", "path": "/node_uuid"}`))
	assert.Equal(t, netNode2, got["node_uuid"])

	for _, tc := range []struct {
		name, setup, ops string
		code             int
		msg              string
	}{
		{"powered on", "power on", `{"op": "add", "path": "/extra/a", "value": 1}`, 400,
			`The requested action "volume connector update" can not be performed on node "` + netNode2 + `" while it is in state "power on".`},
		{"power unknown", "", `{"op": "add", "path": "/extra/a", "value": 1}`, 400,
			`can not be performed on node "` + netNode2 + `" while it is in state "None".`},
		{"to a powered-on node", "power off", `{"op": "replace", "path": "/node_uuid", "value": "` + netNode3 + `"}`, 400,
			`can not be performed on node "` + netNode3 + `" while it is in state "power on".`},
		{"to an unknown node", "power off", `{"op": "replace", "path": "/node_uuid", "value": "99999999-9999-4999-8999-999999999999"}`, 400,
			"Unable to apply the requested node_uuid '99999999-9999-4999-8999-999999999999'. Requested value was invalid."},
		{"node_uuid a name", "power off", `{"op": "replace", "path": "/node_uuid", "value": "node-1"}`, 400,
			"Expected a UUID for node_uuid, but received node-1."},
		{"uuid", "power off", `{"op": "replace", "path": "/uuid", "value": "` + vc + `"}`, 400,
			"Cannot patch /uuid. Only the following can be updated: connector_id, extra, node_uuid, type"},
		{"remove type", "power off", `{"op": "remove", "path": "/type"}`, 400,
			"Schema error for patch: 'type' is a required property"},
		{"type a number", "power off", `{"op": "replace", "path": "/type", "value": 3}`, 400, "is not of type 'string'"},
		{"duplicate", "power off", `{"op": "replace", "path": "/type", "value": "ip"}, {"op": "replace", "path": "/connector_id", "value": "192.0.2.5"}`, 409,
			"A volume connector with type ip and connector ID 192.0.2.5 already exists."},
		{"not a patch", "power off", `{"op": "move"}`, 400, "not one of ['add', 'replace', 'remove']"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f.t = t
			f.setNode(netNode2, tc.setup, "manageable")
			f.setNode(netNode3, "power on", "active")
			f.fails(tc.code, tc.msg, http.MethodPatch, path, "1.32", patch(tc.ops))
		})
	}
	f.t = t
	f.fails(400, "Malformed request URI.", http.MethodPatch, "/v1/nodes/"+netNode2+"/volume/connectors/"+vc, "1.32",
		patch(`{"op": "add", "path": "/extra/a", "value": 1}`))
	// A node locked by another conductor is Ironic's NodeLocked.
	_, err := f.st.Reserve(context.Background(), netNode2, "other")
	require.NoError(t, err)
	f.fails(409, "is locked by host other", http.MethodPatch, path, "1.32", patch(`{"op": "add", "path": "/extra/a", "value": 1}`))
}

// TestVolumeDelete: a connector or target goes only while its node is powered off, or while the node is in a
// state where it may be deleted itself (Ironic's DELETE_ALLOWED_STATES); the records go with their node.
func TestVolumeDelete(t *testing.T) {
	f := newNetFixture(t)
	f.setNode(netNode3, "power on", "active")
	vc := f.connector(netNode3, "iqn", "iqn.del")
	vt := f.target(netNode3, 0, "vol-del")
	f.fails(400, `The requested action "volume connector deletion" can not be performed on node "`+netNode3+
		`" while it is in state "power on".`, http.MethodDelete, "/v1/volume/connectors/"+vc, "1.32", "")
	f.fails(400, `The requested action "volume target deletion" can not be performed on node "`+netNode3+
		`" while it is in state "power on".`, http.MethodDelete, "/v1/volume/targets/"+vt, "1.32", "")
	f.setNode(netNode3, "power on", "manageable")
	f.ok(http.StatusNoContent, http.MethodDelete, "/v1/volume/connectors/"+vc, "1.32", "")
	f.setNode(netNode3, "power off", "active")
	f.ok(http.StatusNoContent, http.MethodDelete, "/v1/volume/targets/"+vt, "1.32", "")
	f.fails(404, "Volume target "+vt+" could not be found.", http.MethodDelete, "/v1/volume/targets/"+vt, "1.32", "")
	f.fails(400, "Expected UUID for target_uuid: x", http.MethodDelete, "/v1/volume/targets/x", "1.32", "")

	// Deleting the node removes its connectors and targets.
	f.connector(netNode1, "iqn", "iqn.gone")
	f.target(netNode1, 0, "vol-gone")
	f.ok(http.StatusNoContent, http.MethodDelete, "/v1/nodes/"+netNode1, "1.32", "")
	assert.Empty(t, f.ok(http.StatusOK, http.MethodGet, "/v1/volume/connectors", "1.32", "")["connectors"])
	assert.Empty(t, f.ok(http.StatusOK, http.MethodGet, "/v1/volume/targets", "1.32", "")["targets"])
}
