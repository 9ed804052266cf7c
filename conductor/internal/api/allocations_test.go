package api

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/engine"
	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// allocFix is an in-process API over a fresh store holding a few nodes, by name:
//
//	gold-a    available, rc gold, traits CUSTOM_A, owner p1
//	gold-b    available, rc gold, traits CUSTOM_A CUSTOM_B
//	gold-maint available, rc gold, in maintenance
//	gold-active active, rc gold, instance_uuid instUUID, traits CUSTOM_A
//	silver    available, rc silver
//	gold-managed manageable, rc gold
type allocFix struct {
	t     *testing.T
	srv   *Server
	st    store.Store
	nodes map[string]*store.Node
}

const instUUID = "0d6e1b5c-8a3f-4c2e-9b7a-6f5e4d3c2b1a"

func newAllocFix(t *testing.T, mut func(c *engine.Config)) *allocFix {
	st, err := store.Open(context.Background(), "sqlite://"+filepath.Join(t.TempDir(), "a.db"))
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	reg := driver.NewRegistry()
	reg.AddHardware(driver.FakeHardware(nil, nil))
	reg.AddPower("fake", driver.NewFakePower())
	reg.AddManagement("fake", driver.NewFakeManagement())
	reg.AddBoot("fake", driver.NewFakeBoot())
	reg.AddDeploy("fake", driver.FakeDeploy{})
	l := logrus.New()
	l.SetOutput(io.Discard)
	cfg := engine.Config{Host: "test", LockRetryInterval: 20 * time.Millisecond}
	if mut != nil {
		mut(&cfg)
	}
	eng := engine.New(cfg, st, reg, logrus.NewEntry(l))
	f := &allocFix{t: t, st: st, nodes: map[string]*store.Node{}}
	add := func(name, state, rc string, maint bool, owner string, traits ...string) {
		n := &store.Node{UUID: uuid.NewString(), Name: name, Driver: "fake-hardware", ProvisionState: state,
			PowerState: "power off", ResourceClass: rc, Maintenance: maint, Owner: owner, Traits: traits,
			InstanceInfo: map[string]any{"image_source": "oci://r/i:1"}, CreatedAt: time.Now().UTC()}
		if state == "active" {
			n.InstanceUUID = instUUID
		}
		require.NoError(t, st.CreateNode(context.Background(), n))
		f.nodes[name] = n
	}
	add("gold-a", "available", "gold", false, "p1", "CUSTOM_A")
	add("gold-b", "available", "gold", false, "", "CUSTOM_A", "CUSTOM_B")
	add("gold-maint", "available", "gold", true, "")
	add("gold-active", "active", "gold", false, "", "CUSTOM_A")
	add("silver", "available", "silver", false, "")
	add("gold-managed", "manageable", "gold", false, "")
	f.srv = New(Config{PublicURL: "http://127.0.0.1:6385"}, eng, logrus.NewEntry(l))
	return f
}

// do sends a request; body "" sends none.
func (f *allocFix) do(method, path, version, body string) *httptest.ResponseRecorder {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, rd)
	if version != "" {
		req.Header.Set(headerVersion, version)
	}
	rec := httptest.NewRecorder()
	f.srv.ServeHTTP(rec, req)
	return rec
}

// obj decodes a JSON object answer.
func (f *allocFix) obj(rec *httptest.ResponseRecorder) map[string]any {
	var m map[string]any
	require.NoError(f.t, json.Unmarshal(rec.Body.Bytes(), &m), rec.Body.String())
	return m
}

// create posts an allocation at 1.60 and wants 201.
func (f *allocFix) create(body string) map[string]any {
	rec := f.do(http.MethodPost, "/v1/allocations", "1.60", body)
	require.Equal(f.t, http.StatusCreated, rec.Code, rec.Body.String())
	return f.obj(rec)
}

func (f *allocFix) node(name string) *store.Node {
	n, err := f.st.GetNode(context.Background(), name)
	require.NoError(f.t, err)
	return n
}

// TestAllocationGates: every endpoint answers from its microversion; reads 404 and writes 405 before, as Ironic.
func TestAllocationGates(t *testing.T) {
	f := newAllocFix(t, nil)
	a := f.create(`{"resource_class": "gold", "name": "a1"}`)
	id := a["uuid"].(string)
	tests := []struct {
		name, method, path, version, body string
		want                              int
	}{
		{"list 1.51", "GET", "/v1/allocations", "1.51", "", 404},
		{"list no header", "GET", "/v1/allocations", "", "", 404},
		{"list 1.52", "GET", "/v1/allocations", "1.52", "", 200},
		{"get 1.51", "GET", "/v1/allocations/" + id, "1.51", "", 404},
		{"get 1.52", "GET", "/v1/allocations/a1", "1.52", "", 200},
		{"create 1.51", "POST", "/v1/allocations", "1.51", `{"resource_class": "gold"}`, 405},
		{"create 1.52", "POST", "/v1/allocations", "1.52", `{"resource_class": "gold"}`, 201},
		{"patch 1.56", "PATCH", "/v1/allocations/a1", "1.56", `[{"op": "add", "path": "/extra/k", "value": "v"}]`, 405},
		{"patch 1.57", "PATCH", "/v1/allocations/a1", "1.57", `[{"op": "add", "path": "/extra/k", "value": "v"}]`, 200},
		{"backfill 1.57", "POST", "/v1/allocations", "1.57", `{"node": "gold-active"}`, 400},
		{"owner on create 1.59", "POST", "/v1/allocations", "1.59", `{"resource_class": "gold", "owner": "p1"}`, 406},
		{"owner filter 1.59", "GET", "/v1/allocations?owner=p1", "1.59", "", 406},
		{"owner field 1.59", "GET", "/v1/allocations/a1?fields=owner", "1.59", "", 406},
		{"owner field 1.60", "GET", "/v1/allocations/a1?fields=owner", "1.60", "", 200},
		{"node allocation 1.51", "GET", "/v1/nodes/gold-a/allocation", "1.51", "", 404},
		{"node allocation delete 1.51", "DELETE", "/v1/nodes/gold-a/allocation", "1.51", "", 404},
		{"delete 1.51", "DELETE", "/v1/allocations/a1", "1.51", "", 405},
		{"delete 1.52", "DELETE", "/v1/allocations/a1", "1.52", "", 204},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := f.do(tc.method, tc.path, tc.version, tc.body)
			assert.Equal(t, tc.want, rec.Code, rec.Body.String())
		})
	}
	// owner is shown from 1.60 only; allocation_uuid on nodes from 1.52.
	rec := f.do("GET", "/v1/allocations", "1.59", "")
	assert.NotContains(t, rec.Body.String(), `"owner"`)
	rec = f.do("GET", "/v1/allocations", "1.60", "")
	assert.Contains(t, rec.Body.String(), `"owner"`)
	assert.NotContains(t, f.do("GET", "/v1/nodes/gold-a", "1.51", "").Body.String(), "allocation_uuid")
	assert.Contains(t, f.do("GET", "/v1/nodes/gold-a", "1.52", "").Body.String(), "allocation_uuid")
}

// TestAllocationMatching: the rules of Ironic's matching, one fresh fixture per case, and its last_error texts.
func TestAllocationMatching(t *testing.T) {
	tests := []struct {
		name      string
		body      string
		wantNodes []string // any of them; nil = state error
		wantError string   // last_error after "Failed to process allocation <uuid>: "
	}{
		{"resource class", `{"resource_class": "gold"}`, []string{"gold-a", "gold-b"}, ""},
		{"traits", `{"resource_class": "gold", "traits": ["CUSTOM_B"]}`, []string{"gold-b"}, ""},
		{"candidate by name", `{"resource_class": "gold", "candidate_nodes": ["gold-a"]}`, []string{"gold-a"}, ""},
		{"owner", `{"resource_class": "gold", "owner": "p1"}`, []string{"gold-a"}, ""},
		{"node named as the allocation first", `{"resource_class": "gold", "name": "gold-b"}`, []string{"gold-b"}, ""},
		{"no node of the class", `{"resource_class": "bronze"}`, nil,
			"no available nodes match the resource class bronze."},
		{"candidates not available", `{"resource_class": "gold", "candidate_nodes": ["gold-maint", "gold-managed", "gold-active"]}`,
			nil, "none of the requested nodes are available and match the resource class gold."},
		{"traits missing", `{"resource_class": "gold", "traits": ["CUSTOM_C"]}`, nil,
			"no suitable nodes have the requested traits CUSTOM_C."},
		{"other owner", `{"resource_class": "gold", "owner": "p2"}`, nil,
			"no available nodes match the resource class gold."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newAllocFix(t, nil)
			a := f.create(tc.body)
			id := a["uuid"].(string)
			if tc.wantNodes == nil {
				assert.Equal(t, "error", a["state"])
				assert.Nil(t, a["node_uuid"])
				assert.Equal(t, "Failed to process allocation "+id+": "+tc.wantError, a["last_error"])
				return
			}
			require.Equal(t, "active", a["state"], a["last_error"])
			assert.Nil(t, a["last_error"])
			var got *store.Node
			for _, name := range tc.wantNodes {
				if f.nodes[name].UUID == a["node_uuid"] {
					got = f.node(name)
				}
			}
			require.NotNil(t, got, "bound to %v, want one of %v", a["node_uuid"], tc.wantNodes)
			assert.Equal(t, id, got.AllocationUUID)
			assert.Equal(t, id, got.InstanceUUID, "instance_uuid is the allocation's UUID, as Ironic")
			assert.Contains(t, got.InstanceInfo, "traits", "instance_info.traits carries the traits asked")
			assert.Equal(t, "oci://r/i:1", got.InstanceInfo["image_source"])
			rec := f.do("GET", "/v1/nodes/"+got.UUID+"?fields=allocation_uuid,instance_uuid", "1.52", "")
			assert.Equal(t, id, f.obj(rec)["allocation_uuid"])
			rec = f.do("GET", "/v1/nodes/"+got.Name+"/allocation", "1.52", "")
			require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
			assert.Equal(t, id, f.obj(rec)["uuid"])
			// The node is taken: a second identical request cannot have it.
			if len(tc.wantNodes) == 1 && a["name"] == nil {
				b := f.create(tc.body)
				assert.Equal(t, "error", b["state"])
			}
		})
	}
}

// TestAllocationNamePreferred: among matches, the node named as the allocation is tried first (Ironic), whatever the
// shuffle: eight rounds would all land there by chance once in 256 runs.
func TestAllocationNamePreferred(t *testing.T) {
	f := newAllocFix(t, nil)
	for i := 0; i < 8; i++ {
		a := f.create(`{"resource_class": "gold", "name": "gold-b"}`)
		require.Equal(t, f.nodes["gold-b"].UUID, a["node_uuid"], "round %d", i)
		require.Equal(t, http.StatusNoContent, f.do(http.MethodDelete, "/v1/allocations/gold-b", "1.60", "").Code)
	}
}

// TestAllocationCreateRefused: bodies Ironic refuses, with its status and message.
func TestAllocationCreateRefused(t *testing.T) {
	f := newAllocFix(t, nil)
	f.create(`{"resource_class": "gold", "name": "taken"}`)
	tests := []struct {
		name, body string
		want       int
		msg        string
	}{
		{"no resource class", `{"name": "x"}`, 400, "The resource_class field is mandatory when not backfilling"},
		{"unknown candidate", `{"resource_class": "gold", "candidate_nodes": ["gold-a", "nope"]}`, 400, "Nodes cannot be found: nope"},
		{"invalid name", `{"resource_class": "gold", "name": "a b"}`, 400, "Cannot create allocation with invalid name 'a b'"},
		{"duplicate name", `{"resource_class": "gold", "name": "taken"}`, 409, "An allocation with name taken already exists."},
		{"bad trait", `{"resource_class": "gold", "traits": ["lower"]}`, 400, ""},
		{"unknown field", `{"resource_class": "gold", "color": "red"}`, 400,
			"Schema error for allocation: Additional properties are not allowed ('color' was unexpected)"},
		{"bad uuid", `{"resource_class": "gold", "uuid": "x"}`, 400, ""},
		{"long resource class", `{"resource_class": "` + strings.Repeat("r", 81) + `"}`, 400, ""},
		{"traits not a list", `{"resource_class": "gold", "traits": "CUSTOM_A"}`, 400, ""},
		{"not JSON", `{`, 400, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := f.do(http.MethodPost, "/v1/allocations", "1.60", tc.body)
			require.Equal(t, tc.want, rec.Code, rec.Body.String())
			if tc.msg != "" {
				assert.Equal(t, tc.msg, faultString(t, rec))
			}
		})
	}
	rec := f.do("GET", "/v1/allocations", "1.60", "")
	assert.Len(t, f.obj(rec)["allocations"], 1, "nothing refused was stored")
}

// TestAllocationBackfill: POST with "node" (1.58) binds an active node or refuses, leaving an error allocation.
func TestAllocationBackfill(t *testing.T) {
	tests := []struct {
		name, body string
		want       int
		msg        string // the answer's message, %s = the node's UUID, %a the allocation's
	}{
		{"active node, uuid from its instance", `{"node": "gold-active"}`, 201, ""},
		{"traits match", `{"node": "gold-active", "traits": ["CUSTOM_A"], "resource_class": "gold"}`, 201, ""},
		{"not active", `{"node": "gold-a"}`, 400, "Failed to process allocation %a: Cannot backfill an allocation for node %g: Node must be in the " +
			"\"active\" state, but the current state is \"available\"."},
		{"class mismatch", `{"node": "gold-active", "resource_class": "silver"}`, 400, "Failed to process allocation %a: Cannot backfill an allocation " +
			"for node %s: Resource class gold does not match the requested resource class silver."},
		{"not a candidate", `{"node": "gold-active", "candidate_nodes": ["gold-a"]}`, 400, ""},
		{"traits mismatch", `{"node": "gold-active", "traits": ["CUSTOM_B"]}`, 400, ""},
		{"other instance", `{"node": "gold-active", "uuid": "` + uuid.NewString() + `"}`, 409,
			"Node %s is associated with instance " + instUUID + "."},
		{"unknown node", `{"node": "nope"}`, 400, "Node nope could not be found."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newAllocFix(t, nil)
			active := f.nodes["gold-active"].UUID
			rec := f.do(http.MethodPost, "/v1/allocations", "1.58", tc.body)
			require.Equal(t, tc.want, rec.Code, rec.Body.String())
			list := f.obj(f.do("GET", "/v1/allocations", "1.58", ""))["allocations"].([]any)
			if tc.want == 201 {
				a := f.obj(rec)
				assert.Equal(t, instUUID, a["uuid"])
				assert.Equal(t, "active", a["state"])
				assert.Equal(t, "gold", a["resource_class"])
				assert.Equal(t, active, a["node_uuid"])
				assert.Equal(t, instUUID, f.node("gold-active").AllocationUUID)
				return
			}
			if tc.name == "unknown node" {
				assert.Equal(t, tc.msg, faultString(t, rec))
				assert.Empty(t, list, "nothing stored for an unknown node")
				return
			}
			require.Len(t, list, 1, "a refused backfill stays as an allocation in error, as Ironic")
			a := list[0].(map[string]any)
			if tc.msg != "" {
				msg := strings.NewReplacer("%s", active, "%g", f.nodes["gold-a"].UUID, "%a", a["uuid"].(string)).Replace(tc.msg)
				assert.Equal(t, msg, faultString(t, rec))
			}
			got := f.obj(f.do("GET", "/v1/allocations/"+a["uuid"].(string), "1.58", ""))
			assert.Equal(t, "error", got["state"])
			assert.NotEmpty(t, got["last_error"])
			assert.Empty(t, f.node("gold-active").AllocationUUID)
		})
	}
}

// TestAllocationDelete: deletion frees the node, refused as Ironic while the node is active or deploying.
func TestAllocationDelete(t *testing.T) {
	ctx := context.Background()
	f := newAllocFix(t, nil)
	free := f.create(`{"resource_class": "gold", "candidate_nodes": ["gold-a"]}`)
	backfilled := f.create(`{"node": "gold-active"}`)
	failed := f.create(`{"resource_class": "bronze"}`)
	deploying := f.create(`{"resource_class": "gold", "candidate_nodes": ["gold-b"]}`)
	n, err := f.st.Reserve(ctx, "gold-b", "other")
	require.NoError(t, err)
	n.ProvisionState, n.TargetProvisionState = "deploying", "active"
	require.NoError(t, f.st.UpdateNode(ctx, n))
	require.NoError(t, f.st.Release(ctx, n.UUID, "other"))
	goldActive := f.nodes["gold-active"].UUID
	goldB := f.nodes["gold-b"].UUID

	tests := []struct {
		name, path string
		want       int
		msg        string
	}{
		{"active node", "/v1/allocations/" + backfilled["uuid"].(string), 409, "Cannot remove allocation " + instUUID +
			" for node " + goldActive + ", because the node is active (and maintenance mode is off)"},
		{"deploying node", "/v1/nodes/gold-b/allocation", 409, "Cannot remove allocation " + deploying["uuid"].(string) +
			" for node " + goldB + ", because the node is in state deploying where updates are not allowed (and " +
			"maintenance mode is off)"},
		{"available node", "/v1/allocations/" + free["uuid"].(string), 204, ""},
		{"failed allocation", "/v1/allocations/" + failed["uuid"].(string), 204, ""},
		{"gone", "/v1/allocations/" + failed["uuid"].(string), 404, "Allocation " + failed["uuid"].(string) + " could not be found."},
		{"node without allocation", "/v1/nodes/gold-a/allocation", 404, "Allocation for node gold-a was not found"},
		{"unknown node", "/v1/nodes/nope/allocation", 404, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := f.do(http.MethodDelete, tc.path, "1.60", "")
			require.Equal(t, tc.want, rec.Code, rec.Body.String())
			if tc.msg != "" {
				assert.Equal(t, tc.msg, faultString(t, rec))
			}
		})
	}
	got := f.node("gold-a")
	assert.Empty(t, got.AllocationUUID, "the node is freed")
	assert.Empty(t, got.InstanceUUID)
	assert.Equal(t, backfilled["uuid"], f.node("gold-active").AllocationUUID, "a refused delete keeps the binding")

	// Maintenance lifts the refusal.
	require.NoError(t, f.srv.eng.SetMaintenance(ctx, "gold-active", true, "broken"))
	rec := f.do(http.MethodDelete, "/v1/nodes/gold-active/allocation", "1.60", "")
	require.Equal(t, http.StatusNoContent, rec.Code, rec.Body.String())
	assert.Empty(t, f.node("gold-active").InstanceUUID)

	// Deleting a node deletes its allocation.
	require.NoError(t, f.srv.eng.SetMaintenance(ctx, "gold-b", true, "broken"))
	require.Equal(t, http.StatusNoContent, f.do(http.MethodDelete, "/v1/nodes/gold-b", "1.60", "").Code)
	assert.Equal(t, http.StatusNotFound, f.do("GET", "/v1/allocations/"+deploying["uuid"].(string), "1.60", "").Code)
}

// TestAllocationListAndPatch: filters, paging, fields and sort keys of the list; PATCH of name and extra.
func TestAllocationListAndPatch(t *testing.T) {
	f := newAllocFix(t, nil)
	a1 := f.create(`{"resource_class": "gold", "name": "one", "candidate_nodes": ["gold-a"]}`)
	a2 := f.create(`{"resource_class": "silver", "name": "two", "owner": "p9"}`)
	a3 := f.create(`{"resource_class": "bronze"}`)
	ids := func(rec *httptest.ResponseRecorder) []string {
		var out []string
		for _, x := range f.obj(rec)["allocations"].([]any) {
			out = append(out, x.(map[string]any)["uuid"].(string))
		}
		return out
	}
	u1, u2, u3 := a1["uuid"].(string), a2["uuid"].(string), a3["uuid"].(string)
	tests := []struct {
		name, query string
		want        int
		ids         []string
	}{
		{"all", "", 200, []string{u1, u2, u3}},
		{"by node name", "?node=gold-a", 200, []string{u1}},
		{"by state", "?state=error", 200, []string{u2, u3}},
		{"active", "?state=active", 200, []string{u1}},
		{"by resource class", "?resource_class=silver", 200, []string{u2}},
		{"by owner", "?owner=p9", 200, []string{u2}},
		{"page", "?limit=2", 200, []string{u1, u2}},
		{"marker", "?marker=" + u2, 200, []string{u3}},
		{"sorted", "?sort_key=name&sort_dir=desc", 200, []string{u2, u1, u3}},
		{"unsortable", "?sort_key=traits", 400, nil},
		{"unknown sort key", "?sort_key=color", 400, nil},
		{"unknown node", "?node=nope", 400, nil},
		{"unknown parameter", "?detail=true", 400, nil},
		{"unknown field", "?fields=color", 400, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := f.do("GET", "/v1/allocations"+tc.query, "1.60", "")
			require.Equal(t, tc.want, rec.Code, rec.Body.String())
			if tc.want == 200 {
				assert.Equal(t, tc.ids, ids(rec))
			}
		})
	}
	page := f.obj(f.do("GET", "/v1/allocations?limit=2", "1.60", ""))
	assert.Equal(t, "http://127.0.0.1:6385/v1/allocations?limit=2&marker="+u2, page["next"])
	item := f.obj(f.do("GET", "/v1/allocations?fields=uuid,name", "1.60", ""))["allocations"].([]any)[0].(map[string]any)
	assert.Len(t, item, 3, "uuid, name and links: %v", item)

	patches := []struct {
		name, ident, body string
		want              int
		check             func(t *testing.T, a map[string]any)
	}{
		{"rename", "one", `[{"op": "replace", "path": "/name", "value": "uno"}]`, 200,
			func(t *testing.T, a map[string]any) { assert.Equal(t, "uno", a["name"]) }},
		{"extra", "uno", `[{"op": "add", "path": "/extra/rack", "value": "r1"}]`, 200,
			func(t *testing.T, a map[string]any) { assert.Equal(t, map[string]any{"rack": "r1"}, a["extra"]) }},
		{"remove name", u2, `[{"op": "remove", "path": "/name"}]`, 200,
			func(t *testing.T, a map[string]any) { assert.Nil(t, a["name"]) }},
		{"taken name", "uno", `[{"op": "replace", "path": "/name", "value": "two"}]`, 200, nil},
		{"duplicate name", u3, `[{"op": "add", "path": "/name", "value": "two"}]`, 409, nil},
		{"invalid name", "two", `[{"op": "replace", "path": "/name", "value": "a b"}]`, 400, nil},
		{"read-only field", "two", `[{"op": "replace", "path": "/resource_class", "value": "x"}]`, 400, nil},
		{"unknown", "nope", `[{"op": "replace", "path": "/name", "value": "x"}]`, 404, nil},
	}
	for _, tc := range patches {
		t.Run(tc.name, func(t *testing.T) {
			rec := f.do(http.MethodPatch, "/v1/allocations/"+tc.ident, "1.60", tc.body)
			require.Equal(t, tc.want, rec.Code, rec.Body.String())
			if tc.check != nil {
				tc.check(t, f.obj(rec))
			}
		})
	}
}

// TestAllocationLockedNodes: a node locked by another operation is retried, then reported as Ironic does; the
// trait reader configured on the engine is the one matching uses.
func TestAllocationLockedNodes(t *testing.T) {
	ctx := context.Background()
	f := newAllocFix(t, func(c *engine.Config) { c.LockRetries = 25 }) // 0.5 s of rounds: the release below lands
	_, err := f.st.Reserve(ctx, "gold-a", "other")
	require.NoError(t, err)
	a := f.create(`{"resource_class": "gold", "candidate_nodes": ["gold-a"]}`)
	assert.Equal(t, "Failed to process allocation "+a["uuid"].(string)+": could not reserve any of 1 suitable nodes.",
		a["last_error"])

	// Released while the allocation waits between rounds: it gets the node.
	go func() {
		time.Sleep(10 * time.Millisecond)
		f.st.Release(ctx, f.nodes["gold-a"].UUID, "other")
	}()
	f2 := f.create(`{"resource_class": "gold", "candidate_nodes": ["gold-a"]}`)
	assert.Equal(t, "active", f2["state"], f2["last_error"])

	calls := 0
	g := newAllocFix(t, func(c *engine.Config) {
		c.NodeTraits = func(ctx context.Context, nodeUUID string) ([]string, error) {
			calls++
			return []string{"CUSTOM_FROM_TABLE"}, nil
		}
	})
	b := g.create(`{"resource_class": "silver", "traits": ["CUSTOM_FROM_TABLE"]}`)
	assert.Equal(t, "active", b["state"], b["last_error"])
	assert.Positive(t, calls)
}

// TestAllocationGoesWithInstance: as in Ironic, removing a node's instance drops its allocation: by PATCH (allowed
// on an available node, refused on an active one unless in maintenance; another instance_uuid is refused) and by
// undeploy.
func TestAllocationGoesWithInstance(t *testing.T) {
	ctx := context.Background()
	f := newAllocFix(t, func(c *engine.Config) { c.NoAutomatedClean = true })
	a := f.create(`{"resource_class": "gold", "candidate_nodes": ["gold-a"]}`)
	b := f.create(`{"node": "gold-active"}`)
	require.Equal(t, "active", b["state"])
	goldActive := f.nodes["gold-active"].UUID

	tests := []struct {
		name, node, body string
		want             int
		msg              string
	}{
		{"other instance", "gold-a", `[{"op": "replace", "path": "/instance_uuid", "value": "` + instUUID + `"}]`, 409,
			"Node " + f.nodes["gold-a"].UUID + " is associated with instance " + a["uuid"].(string) + "."},
		{"remove on an active node", "gold-active", `[{"op": "remove", "path": "/instance_uuid"}]`, 409,
			"Node " + goldActive + " with an allocation can not have instance_uuid removed unless it is in one of " +
				"allowed (enroll, inspecting, inspect wait, manageable, available) states or in maintenance mode. " +
				"Current state is 'active'."},
		{"remove on an available node", "gold-a", `[{"op": "remove", "path": "/instance_uuid"}]`, 200, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := f.do(http.MethodPatch, "/v1/nodes/"+tc.node, "1.60", tc.body)
			require.Equal(t, tc.want, rec.Code, rec.Body.String())
			if tc.msg != "" {
				assert.Equal(t, tc.msg, faultString(t, rec))
			}
		})
	}
	assert.Equal(t, http.StatusNotFound, f.do("GET", "/v1/allocations/"+a["uuid"].(string), "1.60", "").Code,
		"the allocation went with the instance_uuid")
	assert.Empty(t, f.node("gold-a").AllocationUUID)
	assert.Equal(t, b["uuid"], f.node("gold-active").AllocationUUID, "a refused PATCH keeps the binding")

	// Undeploy tears the instance down, and the allocation with it.
	n, err := f.st.Reserve(ctx, "gold-active", "setup")
	require.NoError(t, err)
	require.NoError(t, f.srv.eng.Registry().ResolveInterfaces(n))
	require.NoError(t, f.st.UpdateNode(ctx, n))
	require.NoError(t, f.st.Release(ctx, n.UUID, "setup"))
	rec := f.do(http.MethodPut, "/v1/nodes/gold-active/states/provision", "1.60", `{"target": "deleted"}`)
	require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())
	f.srv.eng.Wait()
	got := f.node("gold-active")
	assert.Equal(t, "available", got.ProvisionState, got.LastError)
	assert.Empty(t, got.InstanceUUID)
	assert.Empty(t, got.AllocationUUID)
	assert.Equal(t, http.StatusNotFound, f.do("GET", "/v1/allocations/"+b["uuid"].(string), "1.60", "").Code)
}
