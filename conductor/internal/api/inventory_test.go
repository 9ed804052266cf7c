package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// TestInventoryEndpoint: GET /v1/nodes/{node}/inventory exists from 1.81, answers Ironic's 404 for a node never
// inspected, and serves {"inventory", "plugin_data"} once inspection stored them.
func TestInventoryEndpoint(t *testing.T) {
	srv, st := agentServer(t)
	ctx := context.Background()
	get := func(version, node string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, "/v1/nodes/"+node+"/inventory", nil)
		if version != "" {
			req.Header.Set(headerVersion, version)
		}
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		return rec
	}
	errMsg := func(rec *httptest.ResponseRecorder) string {
		var body struct {
			ErrorMessage string `json:"error_message"`
		}
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body))
		var inner struct {
			Faultstring string `json:"faultstring"`
		}
		require.NoError(t, json.Unmarshal([]byte(body.ErrorMessage), &inner))
		return inner.Faultstring
	}

	rec := get("1.81", fuzzNodeUUID)
	assert.Equal(t, http.StatusNotFound, rec.Code)
	assert.Equal(t, "Node inventory record for node "+fuzzNodeUUID+" could not be found.", errMsg(rec))
	assert.Equal(t, http.StatusNotFound, get("1.81", "no-such-node").Code)

	inv := map[string]any{"cpu": map[string]any{"count": float64(2), "architecture": "x86_64"},
		"interfaces": []any{map[string]any{"mac_address": "52:54:00:aa:bb:cc"}}}
	require.NoError(t, st.PutInventory(ctx, fuzzNodeUUID, store.Inventory{Inventory: inv}))

	tests := []struct {
		name, version string
		wantCode      int
	}{
		{"no header (1.1)", "", http.StatusNotFound},
		{"1.80", "1.80", http.StatusNotFound},
		{"1.81", "1.81", http.StatusOK},
		{"latest", "latest", http.StatusOK},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := get(tc.version, fuzzNodeUUID)
			require.Equal(t, tc.wantCode, rec.Code, rec.Body.String())
			if tc.wantCode != http.StatusOK {
				assert.Equal(t, "The resource could not be found.", errMsg(rec))
				return
			}
			var body map[string]any
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body))
			assert.Equal(t, map[string]any{"inventory": inv, "plugin_data": map[string]any{}}, body)
		})
	}
}
