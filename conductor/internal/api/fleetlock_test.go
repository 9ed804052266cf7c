package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// reporterCreds is a stand-in for the node reporter credentials (built elsewhere): one node, one credential.
type reporterCreds struct{ node, cred string }

func (c reporterCreds) VerifyReporter(_ context.Context, node, credential string) error {
	if node == c.node && credential == c.cred {
		return nil
	}
	return errors.New("wrong reporter credential")
}

const (
	workersSecret = "0123456789abcdef0123456789abcdef"
	hostdCred     = "hostd-credential-of-the-fuzz-node"
)

// fleetLockServer serves the API with http_basic (admin:s3cret) on 127.0.0.1 and a group "workers" of one slot
// with workersSecret.
func fleetLockServer(t *testing.T) *httptest.Server {
	base, _ := agentServer(t)
	basic, _, _ := newTestBasic(t)
	srv := New(Config{PublicURL: "http://127.0.0.1:6385", Auth: basic, FleetLock: FleetLockConfig{
		DefaultSlots: 1, Reporters: reporterCreds{fuzzNodeUUID, hostdCred}}}, base.eng, quietLog())
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	code, body := operator(t, ts, http.MethodPut, "/v1/fleetlock/groups/workers", `{"secret":"`+workersSecret+`"}`)
	require.Equal(t, http.StatusOK, code, body)
	return ts
}

// operator sends an API request with the operator's credentials and returns the status and body.
func operator(t *testing.T, ts *httptest.Server, method, path, body string) (int, string) {
	req, err := http.NewRequest(method, ts.URL+path, strings.NewReader(body))
	require.NoError(t, err)
	req.SetBasicAuth("admin", "s3cret")
	return do(t, req)
}

func do(t *testing.T, req *http.Request) (int, string) {
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// TestFleetLockProtocol: requests as Zincati sends them (base_url with the group's secret as userinfo, joined
// with v1/pre-reboot and v1/steady-state) and as ferric-hostd sends them (Bearer), in order, each step starting
// from the slots the previous ones left.
func TestFleetLockProtocol(t *testing.T) {
	ts := fleetLockServer(t)
	host := strings.TrimPrefix(ts.URL, "http://")
	zincati := "http://workers:" + workersSecret + "@" + host + "/v1/fleetlock/"
	body := func(group, id string) string {
		return `{"client_params":{"group":"` + group + `","id":"` + id + `"}}`
	}
	tests := []struct {
		name, base, op, auth, body string
		noHeader                   bool
		wantCode                   int
		wantKind                   string
	}{
		{"no protocol header", zincati, "pre-reboot", "", body("workers", "n1"), true, 400, "invalid_request"},
		{"not JSON", zincati, "pre-reboot", "", `{"client_params":`, false, 400, "invalid_request"},
		{"empty group", zincati, "pre-reboot", "", body("", "n1"), false, 400, "invalid_request"},
		{"bad group", zincati, "pre-reboot", "", body("a b", "n1"), false, 400, "invalid_request"},
		{"empty id", zincati, "pre-reboot", "", body("workers", ""), false, 400, "invalid_request"},
		{"no credentials", "http://" + host + "/v1/fleetlock/", "pre-reboot", "", body("workers", "n1"), false, 401, "unauthorized"},
		{"wrong secret", "http://workers:" + strings.Repeat("x", 32) + "@" + host + "/v1/fleetlock/", "pre-reboot", "", body("workers", "n1"), false, 401, "unauthorized"},
		{"secret of another group", "http://db:" + workersSecret + "@" + host + "/v1/fleetlock/", "pre-reboot", "", body("db", "n1"), false, 401, "unauthorized"},
		{"user is not the group", "http://db:" + workersSecret + "@" + host + "/v1/fleetlock/", "pre-reboot", "", body("workers", "n1"), false, 401, "unauthorized"},
		{"lock", zincati, "pre-reboot", "", body("workers", "n1"), false, 200, ""},
		{"the holder locks again", zincati, "pre-reboot", "", body("workers", "n1"), false, 200, ""},
		{"group full", zincati, "pre-reboot", "", body("workers", "n2"), false, 409, "failed_lock_semaphore_full"},
		{"unlock what is not held", zincati, "steady-state", "", body("workers", "n2"), false, 200, ""},
		{"unlock", zincati, "steady-state", "", body("workers", "n1"), false, 200, ""},
		{"the slot is free again", zincati, "pre-reboot", "", body("workers", "n2"), false, 200, ""},
		{"reporter credential", "http://" + host + "/v1/fleetlock/", "pre-reboot", "Bearer " + hostdCred, body("default", fuzzNodeUUID), false, 200, ""},
		{"reporter credential for another id", "http://" + host + "/v1/fleetlock/", "pre-reboot", "Bearer " + hostdCred, body("default", "n3"), false, 401, "unauthorized"},
		{"wrong reporter credential", "http://" + host + "/v1/fleetlock/", "steady-state", "Bearer nope", body("default", fuzzNodeUUID), false, 401, "unauthorized"},
	}
	var refusals []string
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			base, err := url.Parse(tc.base)
			require.NoError(t, err)
			u, err := base.Parse("v1/" + tc.op) // Zincati joins the path onto base_url the same way
			require.NoError(t, err)
			req, err := http.NewRequest(http.MethodPost, u.String(), strings.NewReader(tc.body))
			require.NoError(t, err)
			if !tc.noHeader {
				req.Header.Set("fleet-lock-protocol", "true")
			}
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			code, got := do(t, req)
			require.Equal(t, tc.wantCode, code, got)
			if tc.wantKind == "" {
				return
			}
			var e fleetLockError
			require.NoError(t, json.Unmarshal([]byte(got), &e), got)
			assert.Equal(t, tc.wantKind, e.Kind)
			assert.NotEmpty(t, e.Value)
			if code == http.StatusUnauthorized {
				refusals = append(refusals, got)
			}
		})
	}
	// Every refusal reads the same, whatever the group or holder, and shows no secret.
	require.NotEmpty(t, refusals)
	for _, r := range refusals {
		assert.Equal(t, refusals[0], r)
		assert.NotContains(t, r, "workers")
		assert.NotContains(t, r, workersSecret)
	}
}
