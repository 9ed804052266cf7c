package api

import (
	"context"
	"encoding/json"
	"sort"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// nodeUUIDsOf lists the UUIDs of a node list response, sorted.
func nodeUUIDsOf(t *testing.T, body []byte) []string {
	t.Helper()
	var out struct {
		Nodes []struct {
			UUID string `json:"uuid"`
		} `json:"nodes"`
	}
	require.NoError(t, json.Unmarshal(body, &out))
	uuids := []string{}
	for _, n := range out.Nodes {
		uuids = append(uuids, n.UUID)
	}
	sort.Strings(uuids)
	return uuids
}

// TestNodeParentAndChildren: parent_node on create and PATCH (a name becomes the UUID; an unknown node, the node
// itself and a value past 36 characters are refused), /children with its 1.83 gate, and the list filters: children
// hidden by default at every version, ?parent_node= and ?include_children= (406 before 1.83).
func TestNodeParentAndChildren(t *testing.T) {
	srv, st, fake, bare := extrasServer(t)
	ctx := context.Background()
	child := "7c1d3e2a-5b4f-4c3d-9e8f-1a2b3c4d5e6f"
	runExtras(t, srv, []extrasCase{
		{"create with unknown parent", "POST", "/v1/nodes", "1.83",
			`{"driver": "fake-hardware", "parent_node": "nope"}`, 400,
			"Unable to apply the requested parent_node 'nope'. Requested value was invalid."},
		{"create with parent_node before 1.83", "POST", "/v1/nodes", "1.82",
			`{"driver": "fake-hardware", "parent_node": "fake-1"}`, 406, "Request not acceptable."},
		{"create with a too long parent", "POST", "/v1/nodes", "1.83",
			`{"driver": "fake-hardware", "parent_node": "0123456789012345678901234567890123456"}`, 400,
			"Invalid parent_node: longer than 36 characters"},
		{"create child by parent name", "POST", "/v1/nodes", "1.83",
			`{"uuid": "` + child + `", "name": "kid", "driver": "fake-hardware", "parent_node": "fake-1"}`, 201, "-"},
		{"PATCH parent to itself", "PATCH", "/v1/nodes/bare-1", "1.83",
			`[{"op": "add", "path": "/parent_node", "value": "bare-1"}]`, 400, "a node cannot be its own parent"},
		{"PATCH unknown parent", "PATCH", "/v1/nodes/bare-1", "1.83",
			`[{"op": "add", "path": "/parent_node", "value": "ghost"}]`, 400,
			"Unable to apply the requested parent_node 'ghost'"},
		{"children before 1.83", "GET", "/v1/nodes/fake-1/children", "1.82", "", 404, "The resource could not be found."},
		{"children of an unknown node", "GET", "/v1/nodes/nope/children", "1.83", "", 404, "Node nope could not be found."},
		{"children", "GET", "/v1/nodes/fake-1/children", "1.83", "", 200, `{"children": ["` + child + `"], "links": ` +
			`{"href": "http://127.0.0.1:6385/v1/nodes?parent_node=` + fake.UUID + `", "rel": "children"}}`},
		{"no children", "GET", "/v1/nodes/bare-1/children", "latest", "", 200, `{"children": [], "links": ` +
			`{"href": "http://127.0.0.1:6385/v1/nodes?parent_node=` + bare.UUID + `", "rel": "children"}}`},
		{"parent_node filter before 1.83", "GET", "/v1/nodes?parent_node=" + fake.UUID, "1.82", "", 406,
			"The minimal required API version should be 1.83"},
		{"include_children before 1.83", "GET", "/v1/nodes?include_children=true", "1.82", "", 406,
			"The minimal required API version should be 1.83"},
		{"include_children not a boolean", "GET", "/v1/nodes?include_children=maybe", "1.83", "", 400, "include_children"},
	})
	got, err := st.GetNode(ctx, child)
	require.NoError(t, err)
	assert.Equal(t, fake.UUID, got.ParentNode, "a parent named by name is kept as its UUID")

	for _, tc := range []struct {
		name, query, version string
		want                 []string
	}{
		{"children hidden by default", "", "1.83", []string{bare.UUID, fake.UUID}},
		{"children hidden in old versions too", "", "1.1", []string{bare.UUID, fake.UUID}},
		{"parent_node", "?parent_node=" + fake.UUID, "1.83", []string{child}},
		{"include_children", "?include_children=true", "1.83", []string{bare.UUID, fake.UUID, child}},
		{"include_children wins over parent_node", "?include_children=true&parent_node=" + bare.UUID, "1.83",
			[]string{bare.UUID, fake.UUID, child}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := call(srv, "GET", "/v1/nodes"+tc.query, tc.version, "")
			require.Equal(t, 200, rec.Code, rec.Body.String())
			want := append([]string{}, tc.want...)
			sort.Strings(want)
			assert.Equal(t, want, nodeUUIDsOf(t, rec.Body.Bytes()))
		})
	}

	rec := call(srv, "PATCH", "/v1/nodes/kid", "1.83", `[{"op": "remove", "path": "/parent_node"}]`)
	require.Equal(t, 200, rec.Code, rec.Body.String())
	assert.Contains(t, rec.Body.String(), `"parent_node": null`)
}

// TestNodeShards: the shard field and /v1/shards (1.82) with Ironic's counts (nodes without a shard as "None",
// largest first), ?shard= (a list) and ?sharded= with their 406 before 1.82, and the single-shard 404.
func TestNodeShards(t *testing.T) {
	srv, _, fake, bare := extrasServer(t)
	third := "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a"
	runExtras(t, srv, []extrasCase{
		{"shards before 1.82", "GET", "/v1/shards", "1.81", "", 404, "The resource could not be found."},
		{"no shard yet", "GET", "/v1/shards", "1.82", "", 200, `{"shards": [{"name": "None", "count": 2}]}`},
		{"PATCH shard before 1.82", "PATCH", "/v1/nodes/fake-1", "1.81", `[{"op": "add", "path": "/shard", "value": "east"}]`,
			406, "Request not acceptable."}, // a field newer than the request, as Ironic answers it
		{"PATCH shard", "PATCH", "/v1/nodes/fake-1", "1.82", `[{"op": "add", "path": "/shard", "value": "east"}]`, 200, "-"},
		{"create in a shard", "POST", "/v1/nodes", "1.82",
			`{"uuid": "` + third + `", "driver": "fake-hardware", "shard": "east"}`, 201, "-"},
		{"counts", "GET", "/v1/shards", "latest", "", 200,
			`{"shards": [{"name": "east", "count": 2}, {"name": "None", "count": 1}]}`},
		{"shard filter before 1.82", "GET", "/v1/nodes?shard=east", "1.81", "", 406,
			"The minimal required API version should be 1.82"},
		{"sharded filter before 1.82", "GET", "/v1/nodes?sharded=true", "1.81", "", 406,
			"The minimal required API version should be 1.82"},
		{"one shard", "GET", "/v1/shards/east", "1.82", "", 404, "The resource could not be found."},
	})
	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"?shard=east", []string{fake.UUID, third}},
		{"?shard=west,east", []string{fake.UUID, third}},
		{"?shard=west", []string{}},
		{"?sharded=true", []string{fake.UUID, third}},
		{"?sharded=false", []string{bare.UUID}},
	} {
		t.Run(tc.query, func(t *testing.T) {
			rec := call(srv, "GET", "/v1/nodes"+tc.query, "1.82", "")
			require.Equal(t, 200, rec.Code, rec.Body.String())
			want := append([]string{}, tc.want...)
			sort.Strings(want)
			assert.Equal(t, want, nodeUUIDsOf(t, rec.Body.Bytes()))
		})
	}
	// GET /v1 links the shards from 1.82, as Ironic's versioned controllers.
	for version, listed := range map[string]bool{"1.81": false, "1.82": true} {
		var doc map[string]any
		rec := call(srv, "GET", "/v1", version, "")
		require.Equal(t, 200, rec.Code)
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &doc))
		_, ok := doc["shards"]
		assert.Equal(t, listed, ok, "shards in GET /v1 at %s", version)
	}
	// The next link of a full page keeps the filter.
	rec := call(srv, "GET", "/v1/nodes?shard=east&limit=1", "1.82", "")
	require.Equal(t, 200, rec.Code, rec.Body.String())
	assert.Contains(t, rec.Body.String(), "shard=east")
}
