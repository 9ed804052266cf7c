package api

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	chassisA  = "3e2a0c6d-8f7b-4c1e-9a5d-0b6c7d8e9f01"
	chassisB  = "5f4e3d2c-1b0a-4f9e-8d7c-6b5a4f3e2d10"
	noChassis = "0a0b0c0d-0e0f-4a1b-8c2d-3e4f5a6b7c8d"
)

// step is one request of a table run in order against one server, and what it must answer.
type step struct {
	name, method, path, version, body string
	wantCode                          int
	wantFault                         string         // substring of Ironic's faultstring, for errors
	wantKeys                          []string       // exact top-level keys of the JSON object answered, in order
	want                              map[string]any // top-level values the answer must hold
}

func runSteps(t *testing.T, srv http.Handler, steps []step) {
	t.Helper()
	for _, tc := range steps {
		t.Run(tc.name, func(t *testing.T) {
			rec := call(srv, tc.method, tc.path, tc.version, tc.body)
			require.Equal(t, tc.wantCode, rec.Code, rec.Body.String())
			if tc.wantFault != "" {
				assert.Contains(t, faultString(t, rec), tc.wantFault)
			}
			if tc.wantKeys != nil {
				assert.Equal(t, tc.wantKeys, topKeys(t, rec.Body.Bytes()))
			}
			if tc.want != nil {
				var got map[string]any
				require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &got))
				for k, v := range tc.want {
					assert.Equal(t, v, got[k], "field %s", k)
				}
			}
		})
	}
}

// topKeys lists the keys of a JSON object in the order they were written.
func topKeys(t *testing.T, b []byte) []string {
	dec := json.NewDecoder(strings.NewReader(string(b)))
	tok, err := dec.Token()
	require.NoError(t, err)
	require.Equal(t, json.Delim('{'), tok)
	var keys []string
	for dec.More() {
		k, err := dec.Token()
		require.NoError(t, err)
		keys = append(keys, k.(string))
		var skip json.RawMessage
		require.NoError(t, dec.Decode(&skip))
	}
	return keys
}

// firstItemKeys lists the keys of the first element of the list under name.
func firstItemKeys(t *testing.T, b []byte, name string) []string {
	var body map[string][]json.RawMessage
	require.NoError(t, json.Unmarshal(b, &body))
	require.NotEmpty(t, body[name])
	return topKeys(t, body[name][0])
}

var chassisFull = []string{"uuid", "created_at", "updated_at", "description", "extra", "links", "nodes"}

// TestChassisAPI walks the chassis endpoints as Ironic's API reference describes them, with each microversion
// gate and each refusal.
func TestChassisAPI(t *testing.T) {
	srv, _ := agentServer(t)
	long := strings.Repeat("x", 256)
	runSteps(t, srv, []step{
		{name: "create", method: "POST", path: "/v1/chassis", body: `{"uuid":"` + chassisA + `","description":"rack 1","extra":{"row":"a"}}`,
			wantCode: 201, wantKeys: chassisFull, want: map[string]any{"uuid": chassisA, "description": "rack 1",
				"extra": map[string]any{"row": "a"}, "updated_at": nil,
				"nodes": []any{map[string]any{"href": "http://127.0.0.1:6385/v1/chassis/" + chassisA + "/nodes", "rel": "self"},
					map[string]any{"href": "http://127.0.0.1:6385/chassis/" + chassisA + "/nodes", "rel": "bookmark"}}}},
		{name: "create without a body field", method: "POST", path: "/v1/chassis", body: `{"uuid":"` + chassisB + `"}`,
			wantCode: 201, want: map[string]any{"description": nil, "extra": map[string]any{}}},
		{name: "duplicate uuid", method: "POST", path: "/v1/chassis", body: `{"uuid":"` + chassisA + `"}`,
			wantCode: 409, wantFault: "A chassis with UUID " + chassisA + " already exists."},
		{name: "unknown field", method: "POST", path: "/v1/chassis", body: `{"name":"c"}`,
			wantCode: 400, wantFault: "Additional properties are not allowed ('name' was unexpected)"},
		{name: "description too long", method: "POST", path: "/v1/chassis", body: `{"description":"` + long + `"}`,
			wantCode: 400, wantFault: "is too long"},
		{name: "description not a string", method: "POST", path: "/v1/chassis", body: `{"description":5}`,
			wantCode: 400, wantFault: "is not of type 'string', 'null'"},
		{name: "extra not an object", method: "POST", path: "/v1/chassis", body: `{"extra":"x"}`,
			wantCode: 400, wantFault: "is not of type 'object', 'null'"},
		{name: "uuid not a uuid", method: "POST", path: "/v1/chassis", body: `{"uuid":"rack-1"}`,
			wantCode: 400, wantFault: "Expected UUID for uuid: rack-1"},
		{name: "empty body", method: "POST", path: "/v1/chassis", wantCode: 400, wantFault: "The request body is empty"},

		{name: "show", method: "GET", path: "/v1/chassis/" + chassisA, wantCode: 200, wantKeys: chassisFull},
		{name: "show fields (1.8)", method: "GET", path: "/v1/chassis/" + chassisA + "?fields=extra", version: "1.8",
			wantCode: 200, wantKeys: []string{"extra", "links"}},
		{name: "show fields before 1.8", method: "GET", path: "/v1/chassis/" + chassisA + "?fields=extra", version: "1.7",
			wantCode: 406, wantFault: "Request not acceptable."},
		{name: "show unknown field", method: "GET", path: "/v1/chassis/" + chassisA + "?fields=name", version: "1.8",
			wantCode: 400, wantFault: `Field(s) "name" are not valid`},
		{name: "show unknown", method: "GET", path: "/v1/chassis/" + noChassis, wantCode: 404,
			wantFault: "Chassis " + noChassis + " could not be found."},
		{name: "show by a name", method: "GET", path: "/v1/chassis/rack-1", wantCode: 400,
			wantFault: "Expected UUID for chassis_uuid: rack-1"},

		{name: "list", method: "GET", path: "/v1/chassis", wantCode: 200, wantKeys: []string{"chassis"}},
		{name: "list paged", method: "GET", path: "/v1/chassis?limit=1", wantCode: 200,
			want: map[string]any{"next": "http://127.0.0.1:6385/v1/chassis?limit=1&marker=" + chassisA}},
		{name: "list unknown marker", method: "GET", path: "/v1/chassis?marker=" + noChassis, wantCode: 404,
			wantFault: "Chassis " + noChassis + " could not be found."},
		{name: "list bad limit", method: "GET", path: "/v1/chassis?limit=0", wantCode: 400, wantFault: "Invalid limit"},
		{name: "list sort by extra", method: "GET", path: "/v1/chassis?sort_key=extra", wantCode: 400,
			wantFault: "is an invalid field for sorting"},
		{name: "list unknown parameter", method: "GET", path: "/v1/chassis?node=x", wantCode: 400,
			wantFault: `Unknown query parameter "node"`},
		{name: "list detail before 1.43", method: "GET", path: "/v1/chassis?detail=true", version: "1.42", wantCode: 400,
			wantFault: "Invalid query parameter ?detail=true received."},
		{name: "list fields before 1.8", method: "GET", path: "/v1/chassis?fields=uuid", version: "1.7", wantCode: 406},
		{name: "list fields and detail", method: "GET", path: "/v1/chassis?fields=uuid&detail=true", version: "1.43",
			wantCode: 400, wantFault: "Can not specify ?detail=True and fields in the same request."},
		{name: "detail takes no fields", method: "GET", path: "/v1/chassis/detail?fields=uuid", wantCode: 400,
			wantFault: `Unknown query parameter "fields"`},

		{name: "patch description", method: "PATCH", path: "/v1/chassis/" + chassisA,
			body:     `[{"op":"replace","path":"/description","value":"rack 2"},{"op":"add","path":"/extra/slot","value":4}]`,
			wantCode: 200, wantKeys: chassisFull, want: map[string]any{"description": "rack 2",
				"extra": map[string]any{"row": "a", "slot": float64(4)}}},
		{name: "patch remove extra", method: "PATCH", path: "/v1/chassis/" + chassisB,
			body: `[{"op":"remove","path":"/extra"}]`, wantCode: 200, want: map[string]any{"extra": map[string]any{}}},
		{name: "patch uuid refused", method: "PATCH", path: "/v1/chassis/" + chassisA,
			body: `[{"op":"replace","path":"/uuid","value":"` + noChassis + `"}]`, wantCode: 400,
			wantFault: "Cannot patch /uuid. Only the following can be updated: description, extra"},
		{name: "patch too long", method: "PATCH", path: "/v1/chassis/" + chassisA,
			body: `[{"op":"replace","path":"/description","value":"` + long + `"}]`, wantCode: 400, wantFault: "is too long"},
		{name: "patch unknown", method: "PATCH", path: "/v1/chassis/" + noChassis,
			body: `[{"op":"remove","path":"/extra"}]`, wantCode: 404, wantFault: "Chassis " + noChassis + " could not be found."},

		{name: "delete unknown", method: "DELETE", path: "/v1/chassis/" + noChassis, wantCode: 404},
		{name: "delete", method: "DELETE", path: "/v1/chassis/" + chassisB, wantCode: 204},
		{name: "deleted is gone", method: "GET", path: "/v1/chassis/" + chassisB, wantCode: 404},
	})

	// List shapes: the default list shows uuid, description and links; detail (path or ?detail at 1.43) all.
	for _, tc := range []struct{ path, version string }{{"/v1/chassis", ""}, {"/v1/chassis?fields=uuid,description", "1.8"}} {
		rec := call(srv, "GET", tc.path, tc.version, "")
		require.Equal(t, 200, rec.Code)
		assert.Equal(t, []string{"uuid", "description", "links"}, firstItemKeys(t, rec.Body.Bytes(), "chassis"), tc.path)
	}
	for _, tc := range []struct{ path, version string }{{"/v1/chassis/detail", ""}, {"/v1/chassis?detail=true", "1.43"}} {
		rec := call(srv, "GET", tc.path, tc.version, "")
		require.Equal(t, 200, rec.Code)
		assert.Equal(t, chassisFull, firstItemKeys(t, rec.Body.Bytes(), "chassis"), tc.path)
	}
}

// TestNodeChassisUUID: a node's chassis_uuid on create, PATCH (removal from 1.25, 406 before), the node list
// filter, /v1/chassis/{uuid}/nodes, and a chassis holding nodes is not deleted.
func TestNodeChassisUUID(t *testing.T) {
	srv, _ := agentServer(t)
	const node = "6d5c4b3a-2f1e-4d0c-9b8a-7f6e5d4c3b2a"
	require.Equal(t, 201, call(srv, "POST", "/v1/chassis", "", `{"uuid":"`+chassisA+`"}`).Code)
	require.Equal(t, 201, call(srv, "POST", "/v1/chassis", "", `{"uuid":"`+chassisB+`"}`).Code)
	runSteps(t, srv, []step{
		{name: "create in a chassis", method: "POST", path: "/v1/nodes", version: "1.25",
			body:     `{"uuid":"` + node + `","driver":"fake-hardware","chassis_uuid":"` + chassisA + `"}`,
			wantCode: 201, want: map[string]any{"chassis_uuid": chassisA}},
		{name: "create in an unknown chassis", method: "POST", path: "/v1/nodes",
			body:     `{"driver":"fake-hardware","chassis_uuid":"` + noChassis + `"}`,
			wantCode: 400, wantFault: "Chassis " + noChassis + " could not be found."},
		{name: "create with a malformed chassis", method: "POST", path: "/v1/nodes",
			body: `{"driver":"fake-hardware","chassis_uuid":"rack-1"}`, wantCode: 400, wantFault: "Expected UUID for chassis_uuid: rack-1"},

		{name: "filter", method: "GET", path: "/v1/nodes?chassis_uuid=" + chassisA, wantCode: 200,
			want: map[string]any{"nodes": []any{map[string]any{"uuid": node, "instance_uuid": nil, "maintenance": false,
				"power_state": nil, "provision_state": "enroll", "links": []any{
					map[string]any{"href": "http://127.0.0.1:6385/v1/nodes/" + node, "rel": "self"},
					map[string]any{"href": "http://127.0.0.1:6385/nodes/" + node, "rel": "bookmark"}}}}}},
		{name: "filter by an empty chassis", method: "GET", path: "/v1/nodes?chassis_uuid=" + chassisB, wantCode: 200,
			want: map[string]any{"nodes": []any{}}},
		{name: "filter by an unknown chassis", method: "GET", path: "/v1/nodes?chassis_uuid=" + noChassis, wantCode: 404,
			wantFault: "Chassis " + noChassis + " could not be found."},
		{name: "filter malformed", method: "GET", path: "/v1/nodes?chassis_uuid=x", wantCode: 400,
			wantFault: "Expected UUID for chassis_uuid: x"},
		{name: "chassis nodes", method: "GET", path: "/v1/chassis/" + chassisA + "/nodes?fields=chassis_uuid", version: "1.8",
			wantCode: 200, want: map[string]any{"nodes": []any{map[string]any{"uuid": node, "chassis_uuid": chassisA,
				"links": []any{map[string]any{"href": "http://127.0.0.1:6385/v1/nodes/" + node, "rel": "self"},
					map[string]any{"href": "http://127.0.0.1:6385/nodes/" + node, "rel": "bookmark"}}}}}},
		{name: "chassis nodes paged", method: "GET", path: "/v1/chassis/" + chassisA + "/nodes?limit=1", wantCode: 200,
			want: map[string]any{"next": "http://127.0.0.1:6385/v1/nodes?chassis_uuid=" + chassisA + "&limit=1&marker=" + node}},
		{name: "chassis nodes of an empty chassis", method: "GET", path: "/v1/chassis/" + chassisB + "/nodes", wantCode: 200,
			want: map[string]any{"nodes": []any{}}},
		{name: "chassis nodes of an unknown chassis", method: "GET", path: "/v1/chassis/" + noChassis + "/nodes", wantCode: 404},
		{name: "delete a chassis holding nodes", method: "DELETE", path: "/v1/chassis/" + chassisA, wantCode: 400,
			wantFault: "Cannot complete the requested action because chassis " + chassisA + " contains nodes."},

		{name: "move to another chassis", method: "PATCH", path: "/v1/nodes/" + node,
			body: `[{"op":"replace","path":"/chassis_uuid","value":"` + chassisB + `"}]`, wantCode: 200,
			want: map[string]any{"chassis_uuid": chassisB}},
		{name: "move to an unknown chassis", method: "PATCH", path: "/v1/nodes/" + node,
			body: `[{"op":"replace","path":"/chassis_uuid","value":"` + noChassis + `"}]`, wantCode: 400,
			wantFault: "Chassis " + noChassis + " could not be found."},
		{name: "remove before 1.25", method: "PATCH", path: "/v1/nodes/" + node, version: "1.24",
			body: `[{"op":"remove","path":"/chassis_uuid"}]`, wantCode: 406, wantFault: "Request not acceptable."},
		{name: "freed chassis is deleted", method: "DELETE", path: "/v1/chassis/" + chassisA, wantCode: 204},
		{name: "remove at 1.25", method: "PATCH", path: "/v1/nodes/" + node, version: "1.25",
			body: `[{"op":"remove","path":"/chassis_uuid"}]`, wantCode: 200, want: map[string]any{"chassis_uuid": nil}},
		{name: "emptied chassis is deleted", method: "DELETE", path: "/v1/chassis/" + chassisB, wantCode: 204},
	})
	// The detail list of a chassis's nodes is the node detail list.
	require.Equal(t, 201, call(srv, "POST", "/v1/chassis", "", `{"uuid":"`+chassisA+`"}`).Code)
	require.Equal(t, 200, call(srv, "PATCH", "/v1/nodes/"+node, "1.25",
		`[{"op":"add","path":"/chassis_uuid","value":"`+chassisA+`"}]`).Code)
	rec := call(srv, "GET", "/v1/chassis/"+chassisA+"/nodes/detail", "1.95", "")
	require.Equal(t, 200, rec.Code, rec.Body.String())
	assert.Contains(t, firstItemKeys(t, rec.Body.Bytes(), "nodes"), "driver_info")
}
