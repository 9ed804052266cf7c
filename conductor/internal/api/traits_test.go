package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// call sends one request to the in-process API (or any handler) with a microversion ("" = none, i.e. 1.1) and an
// optional body. Every resource's API tests use it.
func call(srv http.Handler, method, path, version, body string) *httptest.ResponseRecorder {
	var req *http.Request
	if body == "" {
		req = httptest.NewRequest(method, path, nil)
	} else {
		req = httptest.NewRequest(method, path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
	}
	if version != "" {
		req.Header.Set(headerVersion, version)
	}
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, req)
	return rec
}

// TestNodeTraitsEndpoints: each endpoint of /v1/nodes/{node}/traits, its 1.37 gate, and its refusals, in order
// on one node (each case starts from the traits the previous ones left).
func TestNodeTraitsEndpoints(t *testing.T) {
	srv, st, n := stepServer(t)
	base := "/v1/nodes/" + n.UUID + "/traits"
	var fifty []string
	for i := 0; i < 50; i++ {
		fifty = append(fifty, fmt.Sprintf("\"CUSTOM_T%02d\"", i))
	}
	for _, tc := range []struct {
		name, method, path, version, body string
		code                              int
		want                              string // error message part, or the GET body
		traits                            []string
	}{
		{"GET before 1.37", "GET", base, "1.36", "", 404, "The resource could not be found.", nil},
		{"PUT before 1.37", "PUT", base + "/CUSTOM_A", "1.36", "", 404, "The resource could not be found.", nil},
		{"DELETE before 1.37", "DELETE", base, "1.36", "", 404, "The resource could not be found.", nil},
		{"GET empty", "GET", base, "1.37", "", 200, `{"traits": []}`, []string{}},
		{"GET unknown node", "GET", "/v1/nodes/nope/traits", "1.37", "", 404, "Node nope could not be found.", nil},
		{"PUT list", "PUT", base, "1.37", `{"traits": ["CUSTOM_B", "HW_CPU_X86_VMX", "CUSTOM_B"]}`, 204, "",
			[]string{"CUSTOM_B", "HW_CPU_X86_VMX"}},
		{"PUT one by name", "PUT", "/v1/nodes/" + n.UUID + "/traits/CUSTOM_A", "latest", "", 204, "",
			[]string{"CUSTOM_A", "CUSTOM_B", "HW_CPU_X86_VMX"}},
		{"PUT one again", "PUT", base + "/CUSTOM_A", "1.37", "{}", 204, "", []string{"CUSTOM_A", "CUSTOM_B", "HW_CPU_X86_VMX"}},
		{"GET sorted", "GET", base, "1.37", "", 200, `{"traits": ["CUSTOM_A", "CUSTOM_B", "HW_CPU_X86_VMX"]}`, nil},
		{"PUT one with a body", "PUT", base + "/CUSTOM_C", "1.37", `{"traits": ["CUSTOM_C"]}`, 400,
			"No body should be provided when adding a trait", []string{"CUSTOM_A", "CUSTOM_B", "HW_CPU_X86_VMX"}},
		{"PUT invalid trait", "PUT", base + "/custom_c", "1.37", "", 400, "'custom_c' is not a valid trait", nil},
		{"PUT list invalid trait", "PUT", base, "1.37", `{"traits": ["CUSTOM_OK", "BAD-NAME"]}`, 400,
			"'BAD-NAME' is not a valid trait", []string{"CUSTOM_A", "CUSTOM_B", "HW_CPU_X86_VMX"}},
		{"PUT without body", "PUT", base, "1.37", "", 400, "A single node trait may be added via PUT", nil},
		{"PUT without traits", "PUT", base, "1.37", `{}`, 400, "A single node trait may be added via PUT", nil},
		{"PUT unknown key", "PUT", base, "1.37", `{"traits": [], "x": 1}`, 400, "('x' was unexpected)", nil},
		{"PUT traits not a list", "PUT", base, "1.37", `{"traits": "CUSTOM_A"}`, 400, "'traits' must be a list", nil},
		{"PUT 51", "PUT", base, "1.37", `{"traits": [` + strings.Join(fifty, ",") + `, "CUSTOM_Z"]}`, 400,
			"would exceed the maximum number of traits per node (51 vs. 50)", []string{"CUSTOM_A", "CUSTOM_B", "HW_CPU_X86_VMX"}},
		{"DELETE missing trait", "DELETE", base + "/CUSTOM_Q", "1.37", "", 404,
			"Node " + n.UUID + " doesn't have a trait 'CUSTOM_Q'", nil},
		{"DELETE one", "DELETE", base + "/CUSTOM_B", "1.37", "", 204, "", []string{"CUSTOM_A", "HW_CPU_X86_VMX"}},
		{"DELETE on unknown node", "DELETE", "/v1/nodes/nope/traits", "1.37", "", 404, "Node nope could not be found.", nil},
		{"DELETE all", "DELETE", base, "1.37", "", 204, "", []string{}},
		{"PUT 50", "PUT", base, "1.37", `{"traits": [` + strings.Join(fifty, ",") + `]}`, 204, "", nil},
		{"PUT empty list", "PUT", base, "1.37", `{"traits": []}`, 204, "", []string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := call(srv, tc.method, tc.path, tc.version, tc.body)
			require.Equal(t, tc.code, rec.Code, rec.Body.String())
			switch {
			case tc.code >= 400:
				assert.Contains(t, faultString(t, rec), tc.want)
			case tc.code == 200:
				assert.JSONEq(t, tc.want, rec.Body.String())
			}
			if tc.name == "PUT one by name" {
				assert.Equal(t, "http://127.0.0.1:6385/v1/nodes/"+n.UUID+"/traits/CUSTOM_A", rec.Header().Get("Location"))
			}
			if tc.traits != nil {
				got, err := st.GetNode(context.Background(), n.UUID)
				require.NoError(t, err)
				assert.Equal(t, tc.traits, got.Traits)
			}
		})
	}
}

// TestNodeTraitsField: a node shows its traits from 1.37 (and with ?fields=traits), not before.
func TestNodeTraitsField(t *testing.T) {
	srv, _, n := stepServer(t)
	require.Equal(t, 204, call(srv, "PUT", "/v1/nodes/"+n.UUID+"/traits/CUSTOM_X", "1.37", "").Code)
	for _, tc := range []struct {
		name, path, version string
		want                any
	}{
		{"1.36 has no traits", "/v1/nodes/" + n.UUID, "1.36", nil},
		{"1.37 has traits", "/v1/nodes/" + n.UUID, "1.37", []any{"CUSTOM_X"}},
		{"fields=traits", "/v1/nodes/" + n.UUID + "?fields=traits", "1.37", []any{"CUSTOM_X"}},
		{"detail list", "/v1/nodes/detail", "1.37", []any{"CUSTOM_X"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := call(srv, "GET", tc.path, tc.version, "")
			require.Equal(t, 200, rec.Code, rec.Body.String())
			var body map[string]any
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body))
			if nodes, ok := body["nodes"].([]any); ok {
				body = nodes[0].(map[string]any)
			}
			v, ok := body["traits"]
			if tc.want == nil {
				assert.False(t, ok, "traits appear from 1.37 only")
				return
			}
			assert.Equal(t, tc.want, v)
		})
	}
	rec := call(srv, "GET", "/v1/nodes/"+n.UUID+"?fields=traits", "1.36", "")
	assert.Equal(t, 406, rec.Code, "fields=traits before 1.37 (Ironic's check_allowed_fields)")

	// A node PATCH does not set traits: Ironic points to the traits API.
	rec = call(srv, "PATCH", "/v1/nodes/"+n.UUID, "1.37", `[{"op": "add", "path": "/traits", "value": ["CUSTOM_Y"]}]`)
	require.Equal(t, 400, rec.Code, rec.Body.String())
	assert.Equal(t, "Cannot update node traits via node patch. Node traits should be updated via the node traits API.", faultString(t, rec))
}
