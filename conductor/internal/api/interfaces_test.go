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

	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/driver/redfish"
	"github.com/ferric-metal/ferric/conductor/internal/engine"
	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// TestCreateWithAgentInspect: Metal3's baremetal-operator creates every node with inspect_interface=agent, even
// when it never inspects; both hardware types accept it (201), and the defaults are fake / redfish.
func TestCreateWithAgentInspect(t *testing.T) {
	st, err := store.Open(context.Background(), "sqlite://"+filepath.Join(t.TempDir(), "i.db"))
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	reg := driver.NewRegistry()
	driver.AddInspectRescue(reg)
	reg.AddHardware(driver.FakeHardware(nil, nil))
	reg.AddHardware(redfish.Hardware([]string{"fake"}, []string{"fake"}))
	l := logrus.New()
	l.SetOutput(io.Discard)
	srv := New(Config{PublicURL: "http://127.0.0.1:6385"}, engine.New(engine.Config{Host: "t"}, st, reg, logrus.NewEntry(l)), logrus.NewEntry(l))

	tests := []struct {
		name, body   string
		wantCode     int
		wantInspect  string
		wantRescue   string
		wantInErrMsg string
	}{
		{"fake-hardware with agent", `{"driver":"fake-hardware","inspect_interface":"agent"}`, http.StatusCreated, "agent", "fake", ""},
		{"redfish with agent (BMO)", `{"driver":"redfish","inspect_interface":"agent","driver_info":{"redfish_address":"https://192.0.2.9"}}`,
			http.StatusCreated, "agent", "no-rescue", ""},
		{"fake-hardware defaults", `{"driver":"fake-hardware"}`, http.StatusCreated, "fake", "fake", ""},
		{"redfish defaults", `{"driver":"redfish"}`, http.StatusCreated, "redfish", "no-rescue", ""},
		{"redfish has no agent rescue", `{"driver":"redfish","rescue_interface":"agent"}`, http.StatusBadRequest, "", "",
			"is not enabled for driver redfish; valid interfaces are: no-rescue"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPost, "/v1/nodes", strings.NewReader(tc.body))
			req.Header.Set(headerVersion, "1.81")
			req.Header.Set("Content-Type", "application/json")
			rec := httptest.NewRecorder()
			srv.ServeHTTP(rec, req)
			require.Equal(t, tc.wantCode, rec.Code, rec.Body.String())
			if tc.wantCode != http.StatusCreated {
				assert.Contains(t, rec.Body.String(), tc.wantInErrMsg)
				return
			}
			var n map[string]any
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &n))
			assert.Equal(t, tc.wantInspect, n["inspect_interface"])
			assert.Equal(t, tc.wantRescue, n["rescue_interface"])
		})
	}
}
