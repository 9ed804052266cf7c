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
	"github.com/ferric-metal/ferric/conductor/internal/engine"
	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// TestProvisionStepShapes: clean_steps, service_steps and deploy_steps of the wrong shape are a 400 naming the
// field and the fix, before the node is touched; steps nobody offers are a 400 naming the step and the offered
// steps; a node in manageable stays there.
func TestProvisionStepShapes(t *testing.T) {
	srv, st, n := stepServer(t)
	ctx := context.Background()

	for _, tc := range []struct {
		name, body, want string
	}{
		{"clean step without interface", `{"target":"clean","clean_steps":[{"step":"erase_devices"}]}`,
			"Invalid clean_steps[0]: 'interface' is a required property"},
		{"clean step with a bad interface", `{"target":"clean","clean_steps":[{"interface":"disk","step":"erase_devices"}]}`,
			"Invalid clean_steps[0]: 'disk' is not one of bios, deploy"},
		{"clean step without step", `{"target":"clean","clean_steps":[{"interface":"deploy"}]}`, "'step' is a required property"},
		{"args not a dict", `{"target":"clean","clean_steps":[{"interface":"deploy","step":"x","args":[1]}]}`,
			"Invalid clean_steps[0]: 'args' must be a dictionary"},
		{"service step shape", `{"target":"service","service_steps":[{"interface":"deploy","step":"x","args":"a"}]}`,
			"Invalid service_steps[0]: 'args' must be a dictionary"},
		{"deploy step without priority", `{"target":"active","deploy_steps":[{"interface":"deploy","step":"x","args":{}}]}`,
			"Invalid deploy_steps[0]: 'priority' is a required property"},
		{"clean step nobody offers", `{"target":"clean","clean_steps":[{"interface":"deploy","step":"erase_devices"}]}`,
			"node does not support this clean step: {'interface': 'deploy', 'step': 'erase_devices'}"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPut, "/v1/nodes/"+n.UUID+"/states/provision", strings.NewReader(tc.body))
			req.Header.Set(headerVersion, "1.89")
			req.Header.Set("Content-Type", "application/json")
			rec := httptest.NewRecorder()
			srv.ServeHTTP(rec, req)
			require.Equal(t, http.StatusBadRequest, rec.Code, rec.Body.String())
			var fault struct {
				ErrorMessage string `json:"error_message"`
			}
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &fault))
			assert.Contains(t, fault.ErrorMessage, tc.want)
			got, err := st.GetNode(ctx, n.UUID)
			require.NoError(t, err)
			assert.Equal(t, "manageable", got.ProvisionState)
		})
	}
}

// stepServer is an API server on a fresh store with one manageable fake-hardware node.
func stepServer(t *testing.T) (*Server, store.Store, *store.Node) {
	ctx := context.Background()
	st, err := store.Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "s.db"))
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	reg := driver.NewRegistry()
	driver.AddInspectRescue(reg)
	reg.AddHardware(driver.FakeHardware(nil, nil))
	reg.AddPower("fake", driver.NewFakePower())
	reg.AddManagement("fake", driver.NewFakeManagement())
	reg.AddBoot("fake", driver.NewFakeBoot())
	reg.AddDeploy("fake", driver.FakeDeploy{})
	l := logrus.New()
	l.SetOutput(io.Discard)
	eng := engine.New(engine.Config{Host: "t"}, st, reg, logrus.NewEntry(l))
	srv := New(Config{PublicURL: "http://127.0.0.1:6385"}, eng, logrus.NewEntry(l))
	n := &store.Node{UUID: "6a9a5a36-1c1e-4a8f-9a43-0d6f7f4b2c11", Driver: "fake-hardware", ProvisionState: "manageable"}
	require.NoError(t, eng.CreateNode(ctx, n))
	return srv, st, n
}

// TestProvisionRunbookAndDisableRamdisk: a runbook is refused (Ferric runs none: never accepted and ignored);
// disable_ramdisk follows Ironic's check_allow_disable_ramdisk (clean from 1.70, service from 1.108, 400 for
// other targets).
func TestProvisionRunbookAndDisableRamdisk(t *testing.T) {
	srv, st, n := stepServer(t)
	for _, tc := range []struct {
		name, version, body string
		code                int
		want                string
	}{
		{"runbook", "1.92", `{"target":"clean","runbook":"rb-1"}`, 400, "Runbooks are not supported by this conductor yet"},
		{"disable_ramdisk on deploy", "1.89", `{"target":"active","disable_ramdisk":true}`, 400,
			"disable_ramdisk is supported only with manual cleaning or servicing"},
		{"disable_ramdisk before 1.70", "1.69", `{"target":"clean","disable_ramdisk":false,"clean_steps":[{"interface":"bios","step":"factory_reset"}]}`,
			406, "disable_ramdisk is not acceptable in this API version"},
		{"disable_ramdisk on service", "1.89", `{"target":"service","disable_ramdisk":true,"service_steps":[]}`, 406,
			"disable_ramdisk is not acceptable in this API version"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPut, "/v1/nodes/"+n.UUID+"/states/provision", strings.NewReader(tc.body))
			req.Header.Set(headerVersion, tc.version)
			req.Header.Set("Content-Type", "application/json")
			rec := httptest.NewRecorder()
			srv.ServeHTTP(rec, req)
			require.Equal(t, tc.code, rec.Code, rec.Body.String())
			assert.Contains(t, rec.Body.String(), tc.want)
			got, err := st.GetNode(context.Background(), n.UUID)
			require.NoError(t, err)
			assert.Equal(t, "manageable", got.ProvisionState)
		})
	}
}
