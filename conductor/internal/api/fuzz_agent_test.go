package api

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
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

// Secrets planted in the fuzzed node: none may ever come out of a public endpoint.
const (
	fuzzToken    = "fuzz-agent-token-0123456789abcdefghijklmnopqrstuv"
	fuzzPull     = "fuzz-pull-secret-value"
	fuzzMediaID  = "fuzzmediaid0123456789abcdef"
	fuzzPassword = "fuzz-bmc-password"
	fuzzNodeMAC  = "52:54:00:aa:bb:cc"
	fuzzNodeUUID = "1be26c0f-a5a2-4c44-9f2a-0d4b3c9e2a11"
)

// agentServer is an API server over a real engine and SQLite store, with one node waiting for its agent.
func agentServer(t testing.TB) (*Server, store.Store) {
	st, err := store.Open(context.Background(), "sqlite://"+filepath.Join(t.TempDir(), "f.db"))
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
	eng := engine.New(engine.Config{Host: "fuzz"}, st, reg, logrus.NewEntry(l))
	n := &store.Node{UUID: fuzzNodeUUID, Driver: "fake-hardware", ProvisionState: "wait call-back",
		DriverInfo:   map[string]any{"redfish_password": fuzzPassword},
		InstanceInfo: map[string]any{"image_pull_secret": fuzzPull, "nested": []any{map[string]any{"pull_secret": fuzzPull}}},
		DriverInternalInfo: map[string]any{"agent_secret_token": fuzzToken, "agent_secret_token_pregenerated": true,
			"vmedia_id": fuzzMediaID, "agent_url": "https://192.0.2.1:9999"}}
	require.NoError(t, eng.CreateNode(context.Background(), n))
	require.NoError(t, st.CreatePort(context.Background(), &store.Port{UUID: "5d1e0c55-2f0a-4c1b-9d7e-1f2e3d4c5b6a",
		Address: fuzzNodeMAC, NodeUUID: fuzzNodeUUID, CreatedAt: time.Now()}))
	return New(Config{PublicURL: "http://127.0.0.1:6385"}, eng, logrus.NewEntry(l)), st
}

// checkPublicAnswer holds for every answer of a public endpoint: no server error, no planted secret (unless the
// caller sent it itself: an error may quote the caller's own input back).
func checkPublicAnswer(t *testing.T, rec *httptest.ResponseRecorder, sent string) {
	assert.Less(t, rec.Code, 500, "public endpoints answer client errors, never server errors: %s", rec.Body.String())
	body := rec.Body.String()
	for _, secret := range []string{fuzzToken, fuzzPull, fuzzMediaID, fuzzPassword} {
		if !strings.Contains(sent, secret) {
			assert.NotContains(t, body, secret)
		}
	}
}

// FuzzLookup: whatever the query, lookup never fails on the server side and never hands out a secret.
func FuzzLookup(f *testing.F) {
	for _, s := range []string{"addresses=" + fuzzNodeMAC, "node_uuid=" + fuzzNodeUUID, "addresses=zz,,52:54:00:aa:bb:cc",
		"addresses=" + strings.ToUpper(fuzzNodeMAC) + "&node_uuid=x", "", "addresses=%zz", "node_uuid=" + fuzzNodeUUID + "&addresses=a"} {
		f.Add(s, "1.89")
		f.Add(s, "1.22")
	}
	srv, _ := agentServer(f)
	f.Fuzz(func(t *testing.T, query, version string) {
		req := httptest.NewRequest(http.MethodGet, "/v1/lookup", nil)
		req.URL.RawQuery = query
		req.Header.Set("X-OpenStack-Ironic-API-Version", version)
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		checkPublicAnswer(t, rec, query)
		if rec.Code == 200 {
			var out struct {
				Node struct {
					DriverInternalInfo map[string]any `json:"driver_internal_info"`
				} `json:"node"`
			}
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &out))
			for k := range out.Node.DriverInternalInfo {
				assert.Contains(t, agentReadableKeys(), k)
			}
		}
	})
}

// FuzzHeartbeat: whatever the body, a heartbeat without the node's token changes nothing, and no answer leaks a
// secret or is a server error.
func FuzzHeartbeat(f *testing.F) {
	for _, s := range []string{`{"callback_url": "https://203.0.113.5:9999", "agent_token": "x"}`,
		`{"callback_url": "https://203.0.113.5:9999", "agent_token": "` + fuzzToken + `"}`,
		`{"callback_url": "https://192.0.2.1:9999", "agent_token": "` + fuzzToken + `", "agent_verify_ca": "PEM"}`,
		`{"callback_url": null}`, `{"callback_url": 5}`, `[]`, `{"agent_status": "bogus", "callback_url": ""}`,
		`{"callback_url": "http://[::1", "agent_token": ""}`, `{"unknown": 1}`} {
		f.Add(fuzzNodeUUID, s)
		f.Add("node-name", s)
	}
	srv, st := agentServer(f)
	f.Fuzz(func(t *testing.T, ident, body string) {
		if ident == "" || url.PathEscape(ident) != ident {
			return // the path segment itself is the router's business, not the handler's
		}
		req := httptest.NewRequest(http.MethodPost, "/v1/heartbeat/"+ident, strings.NewReader(body))
		req.Header.Set("X-OpenStack-Ironic-API-Version", "1.89")
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		srv.eng.Wait()
		checkPublicAnswer(t, rec, ident+body)
		if !strings.Contains(body, fuzzToken) {
			assert.NotEqual(t, http.StatusAccepted, rec.Code, "accepted without the token: %s", body)
			n, err := st.GetNode(context.Background(), fuzzNodeUUID)
			require.NoError(t, err)
			assert.Equal(t, "https://192.0.2.1:9999", n.DriverInternalInfo["agent_url"])
		}
	})
}

// FuzzMaskSecrets: after masking, no value under a secret key survives at any depth, lists included.
func FuzzMaskSecrets(f *testing.F) {
	for _, s := range []string{`{"redfish_password": "p", "a": [{"pull_secret": "s"}, [{"token": "t"}]]}`,
		`{"x": {"y": {"private_key": "k"}}, "configdrive": "c"}`, `{"list": [1, "two", null, {"credential": {"a": 1}}]}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, doc string) {
		var m map[string]any
		if json.Unmarshal([]byte(doc), &m) != nil {
			return
		}
		var walk func(v any, depth int)
		walk = func(v any, depth int) {
			switch x := v.(type) {
			case map[string]any:
				for k, e := range x {
					lk := strings.ToLower(k)
					for _, s := range secretMarkers() {
						if strings.Contains(lk, s) && e != nil {
							assert.Equal(t, "******", e, "key %s at depth %d", k, depth)
						}
					}
					walk(e, depth+1)
				}
			case []any:
				for _, e := range x {
					walk(e, depth+1)
				}
			}
		}
		walk(maskSecrets(m), 0)
	})
}

func TestMaskSecretsInLists(t *testing.T) {
	m := map[string]any{"registries": []any{map[string]any{"host": "quay.io", "pull_secret": "s1"},
		[]any{map[string]any{"auth": map[string]any{"password": "s2"}}}}, "keep": "ok"}
	got, err := json.Marshal(maskSecrets(m))
	require.NoError(t, err)
	assert.NotContains(t, string(got), "s1")
	assert.NotContains(t, string(got), "s2")
	assert.Contains(t, string(got), "quay.io")
	assert.Contains(t, string(got), `"keep":"ok"`)
}
