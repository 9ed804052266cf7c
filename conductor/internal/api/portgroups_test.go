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

	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/engine"
	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// Nodes of the network fixture: n1 and n2 manageable, n3 active.
const (
	netNode1 = "11111111-1111-4111-8111-111111111111"
	netNode2 = "22222222-2222-4222-8222-222222222222"
	netNode3 = "33333333-3333-4333-8333-333333333333"
)

// netFixture is an API server over a real engine and SQLite store with three fake-hardware nodes.
type netFixture struct {
	t   *testing.T
	srv *Server
	st  store.Store
}

func newNetFixture(t *testing.T) *netFixture {
	ctx := context.Background()
	st, err := store.Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "n.db"))
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
	eng := engine.New(engine.Config{Host: "t", LockRetries: 1}, st, reg, logrus.NewEntry(l))
	for uuid, state := range map[string]string{netNode1: "manageable", netNode2: "manageable", netNode3: "active"} {
		n := &store.Node{UUID: uuid, Name: "node-" + uuid[:1], Driver: "fake-hardware", ProvisionState: state}
		require.NoError(t, eng.CreateNode(ctx, n))
	}
	return &netFixture{t: t, srv: New(Config{PublicURL: "http://127.0.0.1:6385"}, eng, logrus.NewEntry(l)), st: st}
}

// do sends a request at a microversion ("" = none) and returns the recorder.
func (f *netFixture) do(method, path, version, body string) *httptest.ResponseRecorder {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, rd)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if version != "" {
		req.Header.Set(headerVersion, version)
	}
	rec := httptest.NewRecorder()
	f.srv.ServeHTTP(rec, req)
	return rec
}

// ok sends a request that must answer code and decodes the body (nil for an empty one).
func (f *netFixture) ok(code int, method, path, version, body string) map[string]any {
	f.t.Helper()
	rec := f.do(method, path, version, body)
	require.Equal(f.t, code, rec.Code, "%s %s: %s", method, path, rec.Body.String())
	if rec.Body.Len() == 0 {
		return nil
	}
	var out map[string]any
	require.NoError(f.t, json.Unmarshal(rec.Body.Bytes(), &out))
	return out
}

// fails sends a request that must fail with code and a message containing msg.
func (f *netFixture) fails(code int, msg, method, path, version, body string) {
	f.t.Helper()
	rec := f.do(method, path, version, body)
	require.Equal(f.t, code, rec.Code, "%s %s: %s", method, path, rec.Body.String())
	assert.Contains(f.t, faultString(f.t, rec), msg)
}

func (f *netFixture) portgroup(version, body string) string {
	f.t.Helper()
	return f.ok(http.StatusCreated, http.MethodPost, "/v1/portgroups", version, body)["uuid"].(string)
}

func (f *netFixture) port(version, body string) string {
	f.t.Helper()
	return f.ok(http.StatusCreated, http.MethodPost, "/v1/ports", version, body)["uuid"].(string)
}

// TestPortgroupEndpointGates: every portgroup endpoint is 404 before its microversion (1.23, sub-resources 1.24)
// and answers from it on.
func TestPortgroupEndpointGates(t *testing.T) {
	f := newNetFixture(t)
	pg := f.portgroup("1.26", `{"node_uuid": "`+netNode1+`", "name": "bond0"}`)
	tests := []struct {
		method, path, body string
		since              int
		want               int
	}{
		{http.MethodGet, "/v1/portgroups", "", 23, http.StatusOK},
		{http.MethodGet, "/v1/portgroups/detail", "", 23, http.StatusOK},
		{http.MethodPost, "/v1/portgroups", `{"node_uuid": "` + netNode2 + `"}`, 23, http.StatusCreated},
		{http.MethodGet, "/v1/portgroups/" + pg, "", 23, http.StatusOK},
		{http.MethodGet, "/v1/portgroups/bond0", "", 23, http.StatusOK},
		{http.MethodPatch, "/v1/portgroups/" + pg, `[{"op": "add", "path": "/extra/a", "value": 1}]`, 23, http.StatusOK},
		{http.MethodGet, "/v1/portgroups/" + pg + "/ports", "", 24, http.StatusOK},
		{http.MethodGet, "/v1/portgroups/" + pg + "/ports/detail", "", 24, http.StatusOK},
		{http.MethodGet, "/v1/nodes/" + netNode1 + "/portgroups", "", 24, http.StatusOK},
		{http.MethodGet, "/v1/nodes/node-1/portgroups/detail", "", 24, http.StatusOK},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			before := "1." + itoa(tc.since-1)
			f.fails(http.StatusNotFound, "The resource could not be found.", tc.method, tc.path, before, tc.body)
			f.fails(http.StatusNotFound, "The resource could not be found.", tc.method, tc.path, "", tc.body)
			rec := f.do(tc.method, tc.path, "1."+itoa(tc.since), tc.body)
			assert.Equal(t, tc.want, rec.Code, rec.Body.String())
		})
	}
	f.fails(http.StatusNotFound, "The resource could not be found.", http.MethodDelete, "/v1/portgroups/"+pg, "1.22", "")
	f.ok(http.StatusNoContent, http.MethodDelete, "/v1/portgroups/"+pg, "1.23", "")
}

// TestPortgroupShape: the fields of a portgroup per microversion (mode and properties from 1.26, the ports link
// from 1.24), Ironic's defaults, and the list's default fields.
func TestPortgroupShape(t *testing.T) {
	f := newNetFixture(t)
	pg := f.portgroup("1.23", `{"node_uuid": "`+netNode1+`"}`)
	got := f.ok(http.StatusOK, http.MethodGet, "/v1/portgroups/"+pg, "1.23", "")
	assert.ElementsMatch(t, []string{"uuid", "created_at", "updated_at", "address", "extra", "internal_info", "name",
		"standalone_ports_supported", "node_uuid", "links"}, keys(got))
	got = f.ok(http.StatusOK, http.MethodGet, "/v1/portgroups/"+pg, "1.95", "")
	assert.ElementsMatch(t, []string{"uuid", "created_at", "updated_at", "address", "extra", "internal_info", "mode",
		"name", "properties", "standalone_ports_supported", "node_uuid", "links", "ports"}, keys(got))
	assert.Equal(t, "active-backup", got["mode"], "Ironic's default_portgroup_mode")
	assert.Equal(t, true, got["standalone_ports_supported"])
	assert.Nil(t, got["address"])
	assert.Nil(t, got["name"])
	assert.Equal(t, netNode1, got["node_uuid"])
	rec := f.do(http.MethodGet, "/v1/portgroups/"+pg, "1.95", "")
	assert.True(t, strings.Index(rec.Body.String(), `"mode"`) < strings.Index(rec.Body.String(), `"name"`),
		"Ironic's field order")

	list := f.ok(http.StatusOK, http.MethodGet, "/v1/portgroups", "1.95", "")
	item := list["portgroups"].([]any)[0].(map[string]any)
	assert.ElementsMatch(t, []string{"uuid", "address", "name", "links"}, keys(item))
	list = f.ok(http.StatusOK, http.MethodGet, "/v1/portgroups?fields=mode,node_uuid", "1.95", "")
	item = list["portgroups"].([]any)[0].(map[string]any)
	assert.ElementsMatch(t, []string{"mode", "node_uuid", "links"}, keys(item))
	list = f.ok(http.StatusOK, http.MethodGet, "/v1/portgroups/detail", "1.95", "")
	assert.Len(t, list["portgroups"].([]any)[0].(map[string]any), 13)

	tests := []struct {
		name, path, version string
		code                int
		msg                 string
	}{
		{"fields mode before 1.26", "/v1/portgroups/" + pg + "?fields=mode", "1.25", 406, "Request not acceptable."},
		{"fields in list before 1.26", "/v1/portgroups?fields=properties", "1.25", 406, "Request not acceptable."},
		{"unknown field", "/v1/portgroups?fields=bogus", "1.95", 400, `Field(s) "bogus" are not valid`},
		{"detail before 1.43", "/v1/portgroups?detail=true", "1.42", 400, "Invalid query parameter ?detail=true"},
		{"detail and fields", "/v1/portgroups?detail=true&fields=uuid", "1.95", 400, "Can not specify ?detail=True"},
		{"node and address", "/v1/portgroups?node=node-1&address=52:54:00:00:00:01", "1.95", 400, "Filtering by node, address"},
		{"unknown node", "/v1/portgroups?node=nope", "1.95", 404, "Node nope could not be found."},
		{"bad address", "/v1/portgroups?address=zz", "1.95", 400, "Expected valid MAC address for address: zz"},
		{"bad sort key", "/v1/portgroups?sort_key=extra", "1.95", 400, "sort_key value \"extra\""},
		{"unknown portgroup", "/v1/portgroups/nope", "1.95", 404, "Portgroup nope could not be found."},
		{"invalid ident", "/v1/portgroups/a%20b", "1.95", 400, "Expected UUID or name for portgroup: a b"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { f.fails(tc.code, tc.msg, http.MethodGet, tc.path, tc.version, "") })
	}
}

// TestPortgroupCreate: POST /v1/portgroups validation, uniqueness and the 1.26 gate of mode and properties.
func TestPortgroupCreate(t *testing.T) {
	f := newNetFixture(t)
	f.portgroup("1.26", `{"node_uuid": "`+netNode1+`", "name": "bond0", "address": "52:54:00:AA:00:01"}`)
	node := `"node_uuid": "` + netNode1 + `"`
	tests := []struct {
		name, version, body string
		code                int
		msg                 string
	}{
		{"mode before 1.26", "1.25", `{` + node + `, "mode": "802.3ad"}`, 406, "Request not acceptable."},
		{"properties before 1.26", "1.25", `{` + node + `, "properties": {"miimon": 100}}`, 406, "Request not acceptable."},
		{"invalid name", "1.26", `{` + node + `, "name": "bad name"}`, 400, "Cannot create portgroup with invalid name 'bad name'"},
		{"bad MAC", "1.26", `{` + node + `, "address": "nope"}`, 400, "Expected valid MAC address for address: nope"},
		{"no node", "1.26", `{"name": "x"}`, 400, "'node_uuid' is a required property"},
		{"node not a UUID", "1.26", `{"node_uuid": "node-1"}`, 400, "Expected UUID for node_uuid: node-1"},
		{"unknown node", "1.26", `{"node_uuid": "44444444-4444-4444-8444-444444444444"}`, 400,
			"Node 44444444-4444-4444-8444-444444444444 could not be found."},
		{"duplicate name", "1.26", `{` + node + `, "name": "bond0"}`, 409, "A portgroup with name bond0 already exists."},
		{"duplicate address", "1.26", `{` + node + `, "address": "52:54:00:aa:00:01"}`, 409,
			"A portgroup with MAC address 52:54:00:aa:00:01 already exists."},
		{"unknown field", "1.26", `{` + node + `, "bogus": 1}`, 400, "'bogus' was unexpected"},
		{"properties not an object", "1.26", `{` + node + `, "properties": [1]}`, 400, "is not of type 'object'"},
		{"standalone not a boolean", "1.26", `{` + node + `, "standalone_ports_supported": "maybe"}`, 400, "is not a boolean"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { f.fails(tc.code, tc.msg, http.MethodPost, "/v1/portgroups", tc.version, tc.body) })
	}
	t.Run("full", func(t *testing.T) {
		rec := f.do(http.MethodPost, "/v1/portgroups", "1.26", `{"node_uuid": "`+netNode2+`", "name": "bond1",
			"address": "52:54:00:AA:00:02", "mode": "802.3ad", "properties": {"miimon": "100"},
			"standalone_ports_supported": false, "extra": {"a": "b"}}`)
		require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
		var got map[string]any
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &got))
		assert.Equal(t, "http://127.0.0.1:6385/v1/portgroups/"+got["uuid"].(string), rec.Header().Get("Location"))
		assert.Equal(t, "52:54:00:aa:00:02", got["address"])
		assert.Equal(t, "802.3ad", got["mode"])
		assert.Equal(t, false, got["standalone_ports_supported"])
		assert.Equal(t, map[string]any{"miimon": "100"}, got["properties"])
		list := f.ok(http.StatusOK, http.MethodGet, "/v1/portgroups?address=52:54:00:aa:00:02", "1.26", "")
		assert.Len(t, list["portgroups"], 1)
		list = f.ok(http.StatusOK, http.MethodGet, "/v1/nodes/node-2/portgroups", "1.26", "")
		assert.Len(t, list["portgroups"], 1)
	})
}

// TestPortgroupUpdateDelete: PATCH rules (mode cannot go, names stay valid, a portgroup moves only without ports
// and only to a node in enroll/manageable/inspecting or maintenance), DELETE refused while ports belong to it.
func TestPortgroupUpdateDelete(t *testing.T) {
	f := newNetFixture(t)
	pg := f.portgroup("1.26", `{"node_uuid": "`+netNode1+`", "name": "bond0"}`)
	empty := f.portgroup("1.26", `{"node_uuid": "`+netNode1+`", "name": "bond1"}`)
	f.port("1.24", `{"node_uuid": "`+netNode1+`", "address": "52:54:00:00:00:11", "portgroup_uuid": "`+pg+`"}`)
	path := "/v1/portgroups/" + pg
	patch := func(op, field, value string) string {
		if value == "" {
			return `[{"op": "` + op + `", "path": "/` + field + `"}]`
		}
		return `[{"op": "` + op + `", "path": "/` + field + `", "value": ` + value + `}]`
	}
	tests := []struct {
		name, path, version, body string
		code                      int
		msg                       string
	}{
		{"mode removed", path, "1.26", patch("remove", "mode", ""), 400, "'mode' is a mandatory attribute and can not be removed"},
		{"mode before 1.26", path, "1.25", patch("replace", "mode", `"balance-rr"`), 406, "Request not acceptable."},
		{"invalid name", path, "1.26", patch("replace", "name", `"a b"`), 400, "Cannot change name to invalid name 'a b'"},
		{"duplicate name", path, "1.26", patch("replace", "name", `"bond1"`), 409, "A portgroup with name bond1 already exists."},
		{"read-only field", path, "1.26", patch("replace", "uuid", `"`+netNode2+`"`), 400, "Cannot patch /uuid"},
		{"move with ports", path, "1.26", patch("replace", "node_uuid", `"`+netNode2+`"`), 400,
			"can not be associated with node " + netNode2 + " because there are ports associated"},
		{"move to an active node", "/v1/portgroups/" + empty, "1.26", patch("replace", "node_uuid", `"`+netNode3+`"`), 409,
			"can not be associated to node " + netNode3 + " unless the node is in a enroll, inspecting, inspect wait, manageable state"},
		{"move to an unknown node", "/v1/portgroups/" + empty, "1.26",
			patch("replace", "node_uuid", `"44444444-4444-4444-8444-444444444444"`), 400, "Node 44444444-4444-4444-8444-444444444444 could not be found."},
		{"delete with ports", path, "1.26", "", 400, "Cannot complete the requested action because portgroup " + pg + " contains ports."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			method := http.MethodPatch
			if tc.body == "" {
				method = http.MethodDelete
			}
			f.fails(tc.code, tc.msg, method, tc.path, tc.version, tc.body)
		})
	}
	got := f.ok(http.StatusOK, http.MethodPatch, path, "1.26", `[{"op": "replace", "path": "/mode", "value": "802.3ad"},
		{"op": "add", "path": "/properties/miimon", "value": "100"}, {"op": "replace", "path": "/name", "value": "bond7"}]`)
	assert.Equal(t, "802.3ad", got["mode"])
	assert.Equal(t, "bond7", got["name"])
	assert.NotNil(t, got["updated_at"])
	got = f.ok(http.StatusOK, http.MethodPatch, "/v1/portgroups/"+empty, "1.26", patch("replace", "node_uuid", `"`+netNode2+`"`))
	assert.Equal(t, netNode2, got["node_uuid"])

	// A node that is locked refuses the write with Ironic's NodeLocked.
	_, err := f.st.Reserve(context.Background(), netNode2, "other-conductor")
	require.NoError(t, err)
	f.fails(http.StatusConflict, "is locked by host other-conductor", http.MethodDelete, "/v1/portgroups/"+empty, "1.26", "")
	require.NoError(t, f.st.Release(context.Background(), netNode2, "other-conductor"))
	f.ok(http.StatusNoContent, http.MethodDelete, "/v1/portgroups/"+empty, "1.26", "")
	f.fails(http.StatusNotFound, "could not be found", http.MethodGet, "/v1/portgroups/"+empty, "1.26", "")
}

// TestPortgroupPaging: limit and marker with Ironic's next link.
func TestPortgroupPaging(t *testing.T) {
	f := newNetFixture(t)
	for i := 0; i < 3; i++ {
		f.portgroup("1.26", `{"node_uuid": "`+netNode1+`"}`)
		time.Sleep(time.Millisecond)
	}
	got := f.ok(http.StatusOK, http.MethodGet, "/v1/portgroups?limit=2", "1.26", "")
	assert.Len(t, got["portgroups"], 2)
	next, _ := got["next"].(string)
	require.True(t, strings.HasPrefix(next, "http://127.0.0.1:6385/v1/portgroups?"), next)
	got = f.ok(http.StatusOK, http.MethodGet, strings.TrimPrefix(next, "http://127.0.0.1:6385"), "1.26", "")
	assert.Len(t, got["portgroups"], 1)
	assert.Nil(t, got["next"])
}
