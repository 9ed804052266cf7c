package api

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestVolumeTargetCreate: the body is checked as Ironic's TARGET_SCHEMA and validators; boot_index is unique per
// node only (409 with Ironic's message), volume_type is free text and volume IDs may repeat.
func TestVolumeTargetCreate(t *testing.T) {
	f := newNetFixture(t)
	vt := f.target(netNode1, 0, "vol-1")
	body := func(fields string) string {
		return `{"node_uuid": "` + netNode1 + `"` + fields + `}`
	}
	full := `, "volume_type": "iscsi", "volume_id": "v", "boot_index": 3`
	tests := []struct {
		name, path, body string
		code             int
		msg              string
	}{
		{"no boot_index", "/v1/volume/targets", body(`, "volume_type": "iscsi", "volume_id": "v"`), 400,
			"Schema error for target: 'boot_index' is a required property"},
		{"no volume_id", "/v1/volume/targets", body(`, "volume_type": "iscsi", "boot_index": 1`), 400,
			"Schema error for target: 'volume_id' is a required property"},
		{"no volume_type", "/v1/volume/targets", body(`, "volume_id": "v", "boot_index": 1`), 400,
			"Schema error for target: 'volume_type' is a required property"},
		{"no node_uuid", "/v1/volume/targets", `{"volume_type": "iscsi", "volume_id": "v", "boot_index": 1}`, 400,
			"Schema error for target: 'node_uuid' is a required property"},
		{"unknown field", "/v1/volume/targets", body(full + `, "name": "x"`), 400,
			"Additional properties are not allowed ('name' was unexpected)"},
		{"boot_index a string", "/v1/volume/targets", body(`, "volume_type": "iscsi", "volume_id": "v", "boot_index": "1"`), 400,
			"'1' is not of type 'integer' (field boot_index)"},
		{"boot_index a fraction", "/v1/volume/targets", body(`, "volume_type": "iscsi", "volume_id": "v", "boot_index": 1.5`), 400,
			"1.5 is not of type 'integer' (field boot_index)"},
		{"volume_id too long", "/v1/volume/targets", body(`, "volume_type": "iscsi", "volume_id": "` + strings.Repeat("v", 37) + `", "boot_index": 1`), 400,
			"(field volume_id: at most 36 characters)"},
		{"properties not an object", "/v1/volume/targets", body(full + `, "properties": "x"`), 400, "is not of type 'object'"},
		{"volume_type null", "/v1/volume/targets", body(`, "volume_type": null, "volume_id": "v", "boot_index": 1`), 400,
			"None is not of type 'string' (field volume_type)"},
		{"unknown node", "/v1/volume/targets", `{"node_uuid": "99999999-9999-4999-8999-999999999999"` + full + `}`, 400,
			"Invalid input for field/attribute node_uuid. Value: '99999999-9999-4999-8999-999999999999'. "},
		{"duplicate boot_index", "/v1/volume/targets", body(`, "volume_type": "fibre_channel", "volume_id": "v2", "boot_index": 0`), 409,
			"A volume target with boot index '0' for the same node already exists."},
		{"duplicate uuid", "/v1/volume/targets", body(full + `, "uuid": "` + vt + `"`), 409,
			"A volume target with UUID " + vt + " already exists."},
		{"through a node", "/v1/nodes/" + netNode1 + "/volume/targets", body(full), 400, "Malformed request URI."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f.t = t
			f.fails(tc.code, tc.msg, http.MethodPost, tc.path, "1.32", tc.body)
		})
	}
	f.t = t
	// Another node may use the same boot index and volume; secrets in properties are masked in answers.
	rec := f.do(http.MethodPost, "/v1/volume/targets", "1.32", `{"node_uuid": "`+netNode2+`", "volume_type": "my-own-type", `+
		`"volume_id": "vol-1", "boot_index": 0, "properties": {"auth_password": "s3cret", "target_lun": 0}}`)
	require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
	assert.Equal(t, []string{"uuid", "created_at", "updated_at", "boot_index", "extra", "properties", "volume_id",
		"volume_type", "links", "node_uuid"}, topKeys(t, rec.Body.Bytes()))
	assert.NotContains(t, rec.Body.String(), "s3cret")
	assert.Contains(t, rec.Body.String(), `"target_lun": 0`)
	assert.NotContains(t, f.do(http.MethodGet, "/v1/volume/targets?detail=true", "1.32", "").Body.String(), "s3cret")
}

// TestVolumeTargetListAndPatch: default fields, sorting by boot_index, Ironic's refused sort keys, and the
// update rules (powered off only, boot_index unique per node, node moves).
func TestVolumeTargetListAndPatch(t *testing.T) {
	f := newNetFixture(t)
	a := f.target(netNode1, 1, "vol-a")
	b := f.target(netNode1, 0, "vol-b")
	list := f.ok(http.StatusOK, http.MethodGet, "/v1/nodes/node-1/volume/targets?sort_key=boot_index", "1.32", "")["targets"].([]any)
	require.Len(t, list, 2)
	assert.Equal(t, b, list[0].(map[string]any)["uuid"])
	assert.ElementsMatch(t, []string{"uuid", "node_uuid", "volume_type", "boot_index", "volume_id", "links"},
		keys(list[0].(map[string]any)))
	f.fails(400, "The sort_key value properties is an invalid field for sorting", http.MethodGet,
		"/v1/volume/targets?sort_key=properties", "1.32", "")
	f.fails(400, "Can't fetch a subset of fields with 'detail' set", http.MethodGet,
		"/v1/volume/targets?fields=uuid&detail=True", "1.32", "")
	f.fails(404, "Volume target 99999999-9999-4999-8999-999999999999 could not be found.", http.MethodGet,
		"/v1/volume/targets/99999999-9999-4999-8999-999999999999", "1.32", "")
	f.fails(400, "Malformed request URI.", http.MethodGet, "/v1/nodes/"+netNode1+"/volume/targets/"+a, "1.32", "")

	path := "/v1/volume/targets/" + a
	f.fails(400, `The requested action "volume target update" can not be performed on node "`+netNode1+
		`" while it is in state "None".`, http.MethodPatch, path, "1.32", `[{"op": "replace", "path": "/boot_index", "value": 2}]`)
	f.setNode(netNode1, "power off", "manageable")
	f.setNode(netNode2, "power off", "manageable")
	got := f.ok(http.StatusOK, http.MethodPatch, path, "1.32", `[{"op": "replace", "path": "/boot_index", "value": 2},
		{"op": "add", "path": "/properties/target_iqn", "value": "iqn.x"}, {"op": "replace", "path": "/volume_type", "value": "fibre_channel"}]`)
	assert.Equal(t, float64(2), got["boot_index"])
	assert.Equal(t, "iqn.x", got["properties"].(map[string]any)["target_iqn"])
	assert.Equal(t, "fibre_channel", got["volume_type"])
	f.fails(409, "A volume target with boot index '0' for the same node already exists.", http.MethodPatch, path, "1.32",
		`[{"op": "replace", "path": "/boot_index", "value": 0}]`)
	f.fails(400, "Schema error for patch: 'volume_id' is a required property", http.MethodPatch, path, "1.32",
		`[{"op": "remove", "path": "/volume_id"}]`)
	f.fails(400, "Cannot patch /uuid. Only the following can be updated: boot_index, extra, node_uuid, properties, volume_id, volume_type",
		http.MethodPatch, path, "1.32", `[{"op": "replace", "path": "/uuid", "value": "`+a+`"}]`)
	f.fails(400, "is not of type 'integer'", http.MethodPatch, path, "1.32", `[{"op": "replace", "path": "/boot_index", "value": "x"}]`)
	got = f.ok(http.StatusOK, http.MethodPatch, path, "1.32", `[{"op": "replace", "path": "/node_uuid", "value": "`+netNode2+`"},
		{"op": "replace", "path": "/boot_index", "value": 0}]`)
	assert.Equal(t, netNode2, got["node_uuid"])
	f.setNode(netNode2, "power on", "manageable")
	f.fails(400, `The requested action "volume target update" can not be performed on node "`+netNode2+
		`" while it is in state "power on".`, http.MethodPatch, path, "1.32", `[{"op": "add", "path": "/extra/x", "value": 1}]`)
}

// TestStorageInterface: noop is every hardware type's default, fake-hardware offers fake too; the node's
// storage_interface is set and checked like the other interfaces and validate reports it.
func TestStorageInterface(t *testing.T) {
	f := newNetFixture(t)
	n := f.ok(http.StatusOK, http.MethodGet, "/v1/nodes/"+netNode1, "1.33", "")
	assert.Equal(t, "noop", n["storage_interface"])
	created := f.ok(http.StatusCreated, http.MethodPost, "/v1/nodes", "1.33",
		`{"driver": "fake-hardware", "name": "st", "storage_interface": "fake"}`)
	assert.Equal(t, "fake", created["storage_interface"])
	f.fails(400, `storage_interface "cinder" is not enabled for driver fake-hardware; valid interfaces are: noop, fake`,
		http.MethodPost, "/v1/nodes", "1.33", `{"driver": "fake-hardware", "storage_interface": "cinder"}`)
	f.fails(400, "storage_interface", http.MethodPatch, "/v1/nodes/st", "1.33",
		`[{"op": "replace", "path": "/storage_interface", "value": "external"}]`)
	patched := f.ok(http.StatusOK, http.MethodPatch, "/v1/nodes/st", "1.33",
		`[{"op": "replace", "path": "/storage_interface", "value": "noop"}]`)
	assert.Equal(t, "noop", patched["storage_interface"])
	v := f.ok(http.StatusOK, http.MethodGet, "/v1/nodes/st/validate", "1.33", "")
	assert.Equal(t, map[string]any{"result": true}, v["storage"])
	// Ironic's storage_interface field is new in 1.33.
	f.fails(406, "", http.MethodPost, "/v1/nodes", "1.32", `{"driver": "fake-hardware", "storage_interface": "fake"}`)
}
