package api

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// TestUnversionedPathsAreV1: Ironic routes a path without /v1 to v1, so GET /nodes answers exactly what
// GET /v1/nodes does, POST /nodes creates, and so on for every v1 resource; / and /v1 keep their documents.
func TestUnversionedPathsAreV1(t *testing.T) {
	srv, _ := agentServer(t)
	const node = "9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b"
	tests := []struct {
		name, method, path, version, body string
		wantCode                          int
	}{
		{"create a node", "POST", "/nodes", "1.95", `{"uuid":"` + node + `","driver":"fake-hardware"}`, 201},
		{"create a chassis", "POST", "/chassis/", "", `{"uuid":"` + chassisA + `"}`, 201},
		{"list nodes", "GET", "/nodes", "", "", 200},
		{"list nodes, trailing slash", "GET", "/nodes/", "", "", 200},
		{"node detail", "GET", "/nodes/detail", "1.95", "", 200},
		{"show a node", "GET", "/nodes/" + node, "1.95", "", 200},
		{"patch a node", "PATCH", "/nodes/" + node, "1.95", `[{"op":"add","path":"/extra/a","value":1}]`, 200},
		{"node states", "GET", "/nodes/" + node + "/states", "", "", 200},
		{"node ports", "GET", "/nodes/" + node + "/ports", "", "", 200},
		{"ports", "GET", "/ports", "", "", 200},
		{"drivers", "GET", "/drivers", "", "", 200},
		{"conductors", "GET", "/conductors", "1.49", "", 200},
		{"conductors before 1.49", "GET", "/conductors", "1.48", "", 404},
		{"show a chassis", "GET", "/chassis/" + chassisA, "", "", 200},
		{"chassis nodes", "GET", "/chassis/" + chassisA + "/nodes", "", "", 200},
		{"unknown resource", "GET", "/nope", "", "", 404},
		{"unknown below v1", "GET", "/v1/nope", "", "", 404},
		{"no double prefix", "GET", "/v1/v1/nodes", "", "", 404},
		{"method not allowed", "PUT", "/nodes", "", "", 405},
		{"above the maximum version", "GET", "/nodes", "1.96", "", 406},
		{"above the maximum version, chassis", "GET", "/v1/chassis", "1.96", "", 406},
		{"delete a node", "DELETE", "/nodes/" + node, "1.95", "", 204},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := call(srv, tc.method, tc.path, tc.version, tc.body)
			require.Equal(t, tc.wantCode, rec.Code, rec.Body.String())
		})
	}

	// Reads answer byte for byte what their /v1 twin answers.
	for _, path := range []string{"/nodes", "/nodes/detail", "/chassis", "/chassis/detail", "/drivers", "/ports/detail"} {
		un, v1 := call(srv, "GET", path, "latest", ""), call(srv, "GET", "/v1"+path, "latest", "")
		assert.Equal(t, v1.Code, un.Code, path)
		assert.Equal(t, v1.Body.String(), un.Body.String(), path)
	}

	// The roots keep their own documents.
	var root, v1 map[string]any
	rec := call(srv, "GET", "/", "", "")
	require.Equal(t, 200, rec.Code)
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &root))
	assert.Contains(t, root, "versions")
	rec = call(srv, "GET", "/v1", "", "")
	require.Equal(t, 200, rec.Code)
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &v1))
	assert.Equal(t, "v1", v1["id"])
}

// TestV1DocumentListsResources: GET /v1 lists each served resource from its microversion, as Ironic's v1().
func TestV1DocumentListsResources(t *testing.T) {
	srv, _ := agentServer(t)
	for _, tc := range []struct {
		version       string
		want, missing []string
	}{
		{"1.1", []string{"chassis", "nodes", "ports", "drivers"}, []string{"portgroups", "lookup", "allocations", "deploy_templates"}},
		{"1.23", []string{"portgroups", "lookup", "heartbeat"}, []string{"conductors", "allocations"}},
		{"1.52", []string{"conductors", "allocations"}, []string{"deploy_templates"}},
		{"1.55", []string{"portgroups", "conductors", "allocations", "deploy_templates"}, nil},
	} {
		var doc map[string]any
		rec := call(srv, "GET", "/v1", tc.version, "")
		require.Equal(t, 200, rec.Code)
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &doc))
		for _, k := range tc.want {
			assert.Contains(t, doc, k, "at %s", tc.version)
		}
		for _, k := range tc.missing {
			assert.NotContains(t, doc, k, "at %s", tc.version)
		}
	}
}

// TestUnversionedPublicRoutesNeedCredentials: Ironic's public routes (lookup, heartbeat, continue_inspection)
// are public under /v1 only; without the prefix they are ordinary routes and need credentials, as in Ironic.
func TestUnversionedPublicRoutesNeedCredentials(t *testing.T) {
	base, _ := agentServer(t)
	basic, _, _ := newTestBasic(t)
	srv := New(Config{PublicURL: "http://127.0.0.1:6385", Auth: basic}, base.eng, quietLog())
	tests := []struct {
		name, method, path, body string
		wantCode                 int
	}{
		{"v1 lookup is public", "GET", "/v1/lookup?addresses=" + fuzzNodeMAC, "", 200},
		{"unversioned lookup is not", "GET", "/lookup?addresses=" + fuzzNodeMAC, "", 401},
		{"unversioned heartbeat is not", "POST", "/heartbeat/" + fuzzNodeUUID, `{"callback_url":"https://192.0.2.1:9999"}`, 401},
		{"unversioned continue_inspection is not", "POST", "/continue_inspection", `{}`, 401},
		{"unversioned nodes need credentials", "GET", "/nodes", "", 401},
		{"the root is public", "GET", "/", "", 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := call(srv, tc.method, tc.path, "1.95", tc.body)
			require.Equal(t, tc.wantCode, rec.Code, rec.Body.String())
		})
	}
}

// TestEndpointGates: each endpoint newer than the negotiated microversion answers 404, as Ironic's versions.py
// says, under /v1 and without it; at its version it is served.
func TestEndpointGates(t *testing.T) {
	srv, st := agentServer(t)
	require.NoError(t, st.PutInventory(context.Background(), fuzzNodeUUID, store.Inventory{Inventory: map[string]any{}}))
	tests := []struct {
		name, method, path, body string
		since                    int
	}{
		{"conductors", "GET", "/conductors", "", 49},
		{"lookup", "GET", "/lookup?addresses=" + fuzzNodeMAC, "", 22},
		{"heartbeat", "POST", "/heartbeat/" + fuzzNodeUUID, `{"callback_url":"https://192.0.2.1:9999"}`, 22},
		{"inventory", "GET", "/nodes/" + fuzzNodeUUID + "/inventory", "", 81},
		{"chassis", "GET", "/chassis", "", 1},
		{"nodes", "GET", "/nodes", "", 1},
		{"ports", "GET", "/ports", "", 1},
	}
	for _, tc := range tests {
		for _, prefix := range []string{"/v1", ""} {
			t.Run(tc.name+" "+prefix, func(t *testing.T) {
				if tc.since > 1 {
					rec := call(srv, tc.method, prefix+tc.path, "1."+itoa(tc.since-1), tc.body)
					assert.Equal(t, http.StatusNotFound, rec.Code, "below 1.%d: %s", tc.since, rec.Body.String())
				}
				rec := call(srv, tc.method, prefix+tc.path, "1."+itoa(tc.since), tc.body)
				assert.NotEqual(t, http.StatusNotFound, rec.Code, "at 1.%d: %s", tc.since, rec.Body.String())
				assert.Less(t, rec.Code, 500, rec.Body.String())
			})
		}
	}
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }
