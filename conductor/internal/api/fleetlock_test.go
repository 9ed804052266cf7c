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

	"github.com/ferric-metal/ferric/conductor/internal/store"
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
	code, body := flOperator(t, ts, http.MethodPut, "/v1/fleetlock/groups/workers", `{"secret":"`+workersSecret+`"}`)
	require.Equal(t, http.StatusOK, code, body)
	return ts
}

// flOperator sends an API request with the operator's credentials and returns the status and body.
func flOperator(t *testing.T, ts *httptest.Server, method, path, body string) (int, string) {
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

// fleetLockCall sends one protocol request as Zincati would, with the given basic-auth password for group.
func fleetLockCall(t *testing.T, ts *httptest.Server, op, group, id, password string) (int, string) {
	req, err := http.NewRequest(http.MethodPost, ts.URL+"/v1/fleetlock/v1/"+op,
		strings.NewReader(`{"client_params":{"group":"`+group+`","id":"`+id+`"}}`))
	require.NoError(t, err)
	req.Header.Set("fleet-lock-protocol", "true")
	req.SetBasicAuth(group, password)
	return do(t, req)
}

// TestFleetLockOperator: the operator lists groups with slots and holders (never the secret), changes slots,
// releases a stuck holder, and is refused without API credentials or with bad input.
func TestFleetLockOperator(t *testing.T) {
	ts := fleetLockServer(t)
	code, body := fleetLockCall(t, ts, "pre-reboot", "workers", "n1", workersSecret)
	require.Equal(t, http.StatusOK, code, body)

	code, body = flOperator(t, ts, http.MethodGet, "/v1/fleetlock/groups", "")
	require.Equal(t, http.StatusOK, code, body)
	assert.NotContains(t, body, workersSecret)
	assert.NotContains(t, body, "sha256$", "the secret's hash stays in the database")
	var list struct {
		Groups []struct {
			Name         string `json:"name"`
			Slots        int    `json:"slots"`
			DefaultSlots bool   `json:"default_slots"`
			BasicAuth    bool   `json:"basic_auth"`
			Holders      []struct {
				ID         string `json:"id"`
				AcquiredAt string `json:"acquired_at"`
			} `json:"holders"`
		} `json:"groups"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &list))
	require.Len(t, list.Groups, 1)
	g := list.Groups[0]
	assert.Equal(t, "workers", g.Name)
	assert.Equal(t, 1, g.Slots)
	assert.True(t, g.DefaultSlots)
	assert.True(t, g.BasicAuth)
	require.Len(t, g.Holders, 1)
	assert.Equal(t, "n1", g.Holders[0].ID)
	assert.NotEmpty(t, g.Holders[0].AcquiredAt)

	// Two slots let n2 in beside n1.
	code, body = flOperator(t, ts, http.MethodPut, "/v1/fleetlock/groups/workers", `{"slots":2}`)
	require.Equal(t, http.StatusOK, code, body)
	assert.Contains(t, body, `"default_slots": false`)
	code, body = fleetLockCall(t, ts, "pre-reboot", "workers", "n2", workersSecret)
	require.Equal(t, http.StatusOK, code, body)
	code, body = fleetLockCall(t, ts, "pre-reboot", "workers", "n3", workersSecret)
	require.Equal(t, http.StatusConflict, code, body)

	// The operator frees n1's slot; n3 gets it. Releasing it again is a 404 naming the holder.
	code, body = flOperator(t, ts, http.MethodDelete, "/v1/fleetlock/groups/workers/holders/n1", "")
	require.Equal(t, http.StatusNoContent, code, body)
	code, body = fleetLockCall(t, ts, "pre-reboot", "workers", "n3", workersSecret)
	require.Equal(t, http.StatusOK, code, body)
	code, body = flOperator(t, ts, http.MethodDelete, "/v1/fleetlock/groups/workers/holders/n1", "")
	require.Equal(t, http.StatusNotFound, code, body)
	assert.Contains(t, body, "Holder n1 of reboot group workers could not be found.")

	// A new secret replaces the old one at once.
	code, body = flOperator(t, ts, http.MethodPut, "/v1/fleetlock/groups/workers", `{"secret":"`+strings.Repeat("n", 24)+`"}`)
	require.Equal(t, http.StatusOK, code, body)
	code, _ = fleetLockCall(t, ts, "steady-state", "workers", "n3", workersSecret)
	assert.Equal(t, http.StatusUnauthorized, code)
	code, _ = fleetLockCall(t, ts, "steady-state", "workers", "n3", strings.Repeat("n", 24))
	assert.Equal(t, http.StatusOK, code)
}

// TestFleetLockOperatorRefusals: bad group settings are refused by field, and the operator routes need API
// credentials like the rest of the API.
func TestFleetLockOperatorRefusals(t *testing.T) {
	ts := fleetLockServer(t)
	bad := []struct{ name, path, body, want string }{
		{"negative slots", "/v1/fleetlock/groups/workers", `{"slots":-1}`, "slots must be an integer"},
		{"slots not a number", "/v1/fleetlock/groups/workers", `{"slots":"2"}`, "slots must be an integer"},
		{"short secret", "/v1/fleetlock/groups/workers", `{"secret":"short"}`, "secret must be a string of 20"},
		{"unknown field", "/v1/fleetlock/groups/workers", `{"slot":2}`, "Unknown fields [slot]"},
		{"bad group name", "/v1/fleetlock/groups/a_b", `{"slots":2}`, "a_b"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			code, body := flOperator(t, ts, http.MethodPut, tc.path, tc.body)
			require.Equal(t, http.StatusBadRequest, code, body)
			assert.Contains(t, body, tc.want)
		})
	}
	// Without API credentials the operator routes are closed, as the rest of the API.
	for _, m := range []string{http.MethodGet, http.MethodPut, http.MethodDelete} {
		req, err := http.NewRequest(m, ts.URL+"/v1/fleetlock/groups/workers/holders/n2", nil)
		require.NoError(t, err)
		if m == http.MethodGet {
			req.URL.Path = "/v1/fleetlock/groups"
		} else if m == http.MethodPut {
			req.URL.Path = "/v1/fleetlock/groups/workers"
		}
		code, _ := do(t, req)
		assert.Equal(t, http.StatusUnauthorized, code, m)
	}
}

// TestFleetLockRefusalsAreLimited: a client that keeps guessing a group's secret is answered 429 with Retry-After
// before its guesses are checked, like API logins.
func TestFleetLockRefusalsAreLimited(t *testing.T) {
	ts := fleetLockServer(t)
	for i := 0; i < failLimit; i++ {
		code, _ := fleetLockCall(t, ts, "pre-reboot", "workers", "n1", strings.Repeat("g", 20+i))
		require.Equal(t, http.StatusUnauthorized, code, "guess %d", i)
	}
	req, err := http.NewRequest(http.MethodPost, ts.URL+"/v1"+fleetLockPreReboot,
		strings.NewReader(`{"client_params":{"group":"workers","id":"n1"}}`))
	require.NoError(t, err)
	req.Header.Set("fleet-lock-protocol", "true")
	req.SetBasicAuth("workers", workersSecret)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, http.StatusTooManyRequests, resp.StatusCode, "even the right secret waits once the budget is spent")
	assert.NotEmpty(t, resp.Header.Get("Retry-After"))
}

// TestGroupSecretHash: a hash verifies its own secret only, and empty or malformed hashes verify nothing.
func TestGroupSecretHash(t *testing.T) {
	h, err := hashGroupSecret(workersSecret)
	require.NoError(t, err)
	h2, err := hashGroupSecret(workersSecret)
	require.NoError(t, err)
	assert.NotEqual(t, h, h2, "salted")
	assert.True(t, verifyGroupSecret(h, workersSecret))
	assert.False(t, verifyGroupSecret(h, workersSecret+"x"))
	for _, bad := range []string{"", "sha256$zz$00", "md5$00$00", h + "$"} {
		assert.False(t, verifyGroupSecret(bad, ""), bad)
		assert.False(t, verifyGroupSecret(bad, workersSecret), bad)
	}
}

// FuzzFleetLock: a hostile client on the provisioning network without the group's secret or a reporter
// credential: whatever it sends, no slot is taken or given back, no answer is a server error, and none carries
// the secret or says who holds a slot.
func FuzzFleetLock(f *testing.F) {
	for _, s := range []string{`{"client_params":{"group":"workers","id":"n9"}}`, `{"client_params":{"group":"workers","id":"n1"}}`,
		`{"client_params":{"group":"default","id":"` + fuzzNodeUUID + `"}}`, `{"client_params":{}}`, `[]`, `{"client_params":{"group":5}}`,
		`{"client_params":{"group":"` + strings.Repeat("g", 70) + `","id":"x"}}`, `{"client_params":{"group":"workers","id":"a\u0000b"}}`} {
		for _, auth := range []string{"", "Basic d29ya2VyczpndWVzcw==", "Bearer guess", "Bearer " + hostdCred[:5], "Basic !!", "Digest x"} {
			f.Add("pre-reboot", auth, s)
			f.Add("steady-state", auth, s)
		}
	}
	base, st := agentServer(f)
	srv := New(Config{PublicURL: "http://127.0.0.1:6385", FleetLock: FleetLockConfig{
		Reporters: reporterCreds{fuzzNodeUUID, hostdCred}}}, base.eng, quietLog())
	ctx := context.Background()
	hash, err := hashGroupSecret(workersSecret)
	require.NoError(f, err)
	_, err = st.PutFleetLockGroup(ctx, "workers", store.FleetLockUpdate{SecretHash: &hash})
	require.NoError(f, err)
	require.NoError(f, st.AcquireFleetLock(ctx, "workers", "n1", 1))
	f.Fuzz(func(t *testing.T, op, auth, body string) {
		if strings.Contains(auth, hostdCred) || strings.Contains(auth, workersSecret) {
			return // a client with the credential is not hostile
		}
		req := httptest.NewRequest(http.MethodPost, "/v1/fleetlock/v1/"+url.PathEscape(op), strings.NewReader(body))
		req.Header.Set("fleet-lock-protocol", "true")
		req.Header.Set("Authorization", auth)
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		assert.Less(t, rec.Code, 500, rec.Body.String())
		assert.NotEqual(t, http.StatusOK, rec.Code, "granted without credentials: %s %s", op, body)
		assert.NotContains(t, rec.Body.String(), "n1", "a refusal names no holder")
		assert.NotContains(t, rec.Body.String(), "sha256$")
		g, err := st.GetFleetLockGroup(ctx, "workers")
		require.NoError(t, err)
		require.Len(t, g.Holders, 1)
		assert.Equal(t, "n1", g.Holders[0].ID)
		_, err = st.GetFleetLockGroup(ctx, "default")
		assert.ErrorIs(t, err, store.ErrNotFound, "no group appears for an unauthenticated client")
	})
}
