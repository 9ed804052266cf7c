package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/ferric-metal/ferric/bootchost"
	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/engine"
	"github.com/ferric-metal/ferric/conductor/internal/fleet"
	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// bootcStores opens an empty store per backend: SQLite, and PostgreSQL when FERRIC_TEST_POSTGRES is set.
func bootcStores(t testing.TB) map[string]func(t testing.TB) store.Store {
	out := map[string]func(t testing.TB) store.Store{"sqlite": func(t testing.TB) store.Store {
		st, err := store.Open(context.Background(), "sqlite://"+filepath.Join(t.TempDir(), "f.db"))
		require.NoError(t, err)
		t.Cleanup(func() { st.Close() })
		return st
	}}
	if dsn := os.Getenv("FERRIC_TEST_POSTGRES"); dsn != "" {
		out["postgres"] = func(t testing.TB) store.Store {
			st, err := store.Open(context.Background(), dsn)
			require.NoError(t, err)
			require.NoError(t, store.ResetForTests(context.Background(), st))
			t.Cleanup(func() { st.Close() })
			return st
		}
	} else {
		t.Log("!!! SKIPPING PostgreSQL: set FERRIC_TEST_POSTGRES to run the bootc API tests on it too")
	}
	return out
}

// bootcServer is the API over a real engine and st, with HTTP Basic auth (user "op", password "pw") so that
// the reporter's endpoints are shown to be public and the operator's not.
func bootcServer(t testing.TB, st store.Store, stale *fleet.Resolver) *Server {
	return bootcServerWith(t, st, BootcConfig{PollInterval: 42 * time.Second, Stale: stale})
}

// bootcServerWith is bootcServer with the image-mode settings given.
func bootcServerWith(t testing.TB, st store.Store, bc BootcConfig) *Server {
	reg := driver.NewRegistry()
	reg.AddHardware(driver.FakeHardware(nil, nil))
	reg.AddPower("fake", driver.NewFakePower())
	reg.AddManagement("fake", driver.NewFakeManagement())
	reg.AddBoot("fake", driver.NewFakeBoot())
	reg.AddDeploy("fake", driver.FakeDeploy{})
	l := logrus.New()
	l.SetOutput(io.Discard)
	eng := engine.New(engine.Config{Host: "bootc"}, st, reg, logrus.NewEntry(l))
	hash, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	require.NoError(t, err)
	pw := filepath.Join(t.TempDir(), "htpasswd")
	require.NoError(t, os.WriteFile(pw, []byte("op:"+string(hash)+"\n"), 0o600))
	auth, err := LoadHTPasswd(pw, logrus.NewEntry(l))
	require.NoError(t, err)
	return New(Config{PublicURL: "http://127.0.0.1:6385", Auth: auth, Bootc: bc}, eng, logrus.NewEntry(l))
}

// bootcNode creates a node with a reporter credential and returns it with the credential.
func bootcNode(t testing.TB, st store.Store, name string) (*store.Node, string) {
	ctx := context.Background()
	n := &store.Node{UUID: uuid.NewString(), Name: name, Driver: "fake-hardware", ProvisionState: "active",
		CreatedAt: time.Now().UTC(), InstanceInfo: map[string]any{}}
	require.NoError(t, st.CreateNode(ctx, n))
	cred, hash, err := fleet.NewCredential()
	require.NoError(t, err)
	require.NoError(t, st.SetBootcCredential(ctx, n.UUID, hash))
	return n, cred
}

// host sends a reporter request with a bearer credential ("" = no Authorization header).
func host(srv http.Handler, method, path, cred, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if cred != "" {
		req.Header.Set("Authorization", "Bearer "+cred)
	}
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, req)
	return rec
}

// operator sends an operator request with the API's credentials.
func operator(srv http.Handler, method, path string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, nil)
	req.SetBasicAuth("op", "pw")
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, req)
	return rec
}

func hostPath(p, node string) string {
	return strings.NewReplacer("{node}", node, "{action}", "a1").Replace(p)
}

// status renders a bootc status booted from ref@booted, following ref, with a staged digest.
func bootcStatus(ref, booted, staged string, incompatible bool) string {
	st := "null"
	if staged != "" {
		st = fmt.Sprintf(`{"image":{"image":{"image":%q,"transport":"registry"},"imageDigest":%q},"incompatible":false}`, ref, staged)
	}
	return fmt.Sprintf(`{"apiVersion":"org.containers.bootc/v1","kind":"BootcHost","metadata":{"name":"host"},
	 "spec":{"image":{"image":%q,"transport":"registry"}},
	 "status":{"booted":{"image":{"image":{"image":%q,"transport":"registry"},"version":"1","imageDigest":%q},
	  "incompatible":%v,"pinned":false},"staged":%s,"rollback":null,"rollbackQueued":false,"type":"bootcHost"}}`,
		ref, ref, booted, incompatible, st)
}

func reportBody(status, version string) string {
	return fmt.Sprintf(`{"status":%s,"hostd_version":%q,"boot_id":"b-1"}`, status, version)
}

// TestBootcReporterAuth: every way of being refused gives the same 401 on every reporter endpoint, behind an
// API that needs HTTP Basic credentials elsewhere; the right credential passes.
func TestBootcReporterAuth(t *testing.T) {
	for name, open := range bootcStores(t) {
		t.Run(name, func(t *testing.T) {
			st := open(t)
			srv := bootcServer(t, st, nil)
			n, cred := bootcNode(t, st, "auth-ok")
			revoked, rcred := bootcNode(t, st, "auth-revoked")
			require.NoError(t, st.RevokeBootcCredential(context.Background(), revoked.UUID))
			other, ocred := bootcNode(t, st, "auth-other")
			plain := &store.Node{UUID: uuid.NewString(), Driver: "fake-hardware", ProvisionState: "active", CreatedAt: time.Now()}
			require.NoError(t, st.CreateNode(context.Background(), plain))
			_ = other

			var refusal string
			for _, p := range []string{bootchost.PathReport, bootchost.PathDesired, bootchost.PathAction, bootchost.PathCredential} {
				method := http.MethodPost
				if p == bootchost.PathDesired {
					method = http.MethodGet
				}
				for _, tc := range []struct{ name, node, cred string }{
					{"no credential", n.UUID, ""},
					{"wrong credential", n.UUID, "not-the-credential"},
					{"another node's credential", n.UUID, ocred},
					{"unknown node", uuid.NewString(), cred},
					{"node name instead of UUID", n.Name, cred},
					{"node without a reporter", plain.UUID, cred},
					{"revoked", revoked.UUID, rcred},
				} {
					t.Run(p+"/"+tc.name, func(t *testing.T) {
						rec := host(srv, method, hostPath(p, tc.node), tc.cred, reportBody(bootcStatus("r/x:1", "sha256:a", "", false), "1"))
						require.Equal(t, http.StatusUnauthorized, rec.Code, rec.Body.String())
						assert.Equal(t, `Bearer realm="ferric-hostd"`, rec.Header().Get("WWW-Authenticate"))
						if refusal == "" {
							refusal = rec.Body.String()
						}
						assert.Equal(t, refusal, rec.Body.String(), "one refusal for every case: no enumeration")
					})
				}
			}
			// Basic credentials of the operator are no reporter credential.
			req := httptest.NewRequest(http.MethodGet, hostPath(bootchost.PathDesired, n.UUID), nil)
			req.SetBasicAuth("op", "pw")
			rec := httptest.NewRecorder()
			srv.ServeHTTP(rec, req)
			assert.Equal(t, http.StatusUnauthorized, rec.Code)

			rec = host(srv, http.MethodGet, hostPath(bootchost.PathDesired, n.UUID), cred, "")
			require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
			assert.JSONEq(t, `{"action":null,"poll_interval":42,"rotate_credential":false}`, rec.Body.String())
			rec = host(srv, http.MethodPost, hostPath(bootchost.PathAction, n.UUID), cred, `{"state":"running"}`)
			assert.Equal(t, http.StatusNotFound, rec.Code, "no action is ever queued yet")
			// The operator's endpoints stay behind the API's own authentication.
			// (HTTP Basic refuses another scheme with 400, an unknown user with 401.)
			code := host(srv, http.MethodGet, "/v1/nodes/"+n.UUID+"/bootc", cred, "").Code
			assert.Contains(t, []int{http.StatusBadRequest, http.StatusUnauthorized}, code)
		})
	}
}

// TestBootcReports: two reports with different status update what the node shows and what the filters match;
// bad reports are refused naming the field, and a report beyond the bound is 413.
func TestBootcReports(t *testing.T) {
	for name, open := range bootcStores(t) {
		t.Run(name, func(t *testing.T) {
			st := open(t)
			srv := bootcServer(t, st, nil)
			n, cred := bootcNode(t, st, "reports")
			path := hostPath(bootchost.PathReport, n.UUID)

			rec := operator(srv, http.MethodGet, "/v1/nodes/"+n.Name+"/bootc")
			require.Equal(t, http.StatusNotFound, rec.Code)
			assert.Contains(t, rec.Body.String(), "never reported: check that its image runs ferric-hostd")

			for i, tc := range []struct {
				ref, booted, staged string
				incompatible        bool
			}{
				{"reg.example/os:v1", "sha256:aa", "sha256:bb", true},
				{"reg.example/os:v2", "sha256:cc", "", false},
			} {
				rec := host(srv, http.MethodPost, path, cred, reportBody(bootcStatus(tc.ref, tc.booted, tc.staged, tc.incompatible), fmt.Sprint(i)))
				require.Equal(t, http.StatusNoContent, rec.Code, rec.Body.String())
				rec = operator(srv, http.MethodGet, "/v1/nodes/"+n.Name+"/bootc")
				require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
				var got map[string]any
				require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &got))
				assert.Equal(t, tc.booted, got["booted"].(map[string]any)["digest"])
				assert.Equal(t, tc.ref, got["follows"])
				assert.Equal(t, tc.incompatible, got["incompatible"])
				assert.Equal(t, fmt.Sprint(i), got["hostd_version"])
				if tc.staged != "" {
					assert.Equal(t, tc.staged, got["staged"].(map[string]any)["digest"])
				} else {
					assert.Nil(t, got["staged"])
				}
				assert.Less(t, got["age_seconds"], float64(5))
				assert.Equal(t, "BootcHost", got["status"].(map[string]any)["kind"], "the raw status is kept")
				cs := got["credential"].(map[string]any)
				assert.ElementsMatch(t, []string{"created_at", "rotated_at", "revoked", "rotate_requested"}, mapKeys(cs))
				assert.NotContains(t, rec.Body.String(), cred)
				r, _ := st.BootcReporter(context.Background(), n.UUID)
				assert.NotContains(t, rec.Body.String(), r.CredentialHash)

				list := operator(srv, http.MethodGet, "/v1/nodes?bootc_digest="+tc.booted)
				require.Equal(t, http.StatusOK, list.Code, list.Body.String())
				assert.Contains(t, list.Body.String(), n.UUID)
				list = operator(srv, http.MethodGet, "/v1/nodes?bootc_image="+tc.ref)
				assert.Contains(t, list.Body.String(), n.UUID)
			}
			list := operator(srv, http.MethodGet, "/v1/nodes?bootc_digest=sha256:aa")
			assert.NotContains(t, list.Body.String(), n.UUID, "the first report's digest no longer matches")

			for _, tc := range []struct{ name, body, want string }{
				{"no status", `{"hostd_version":"1"}`, `field "status" is missing`},
				{"wrong kind", `{"status":{"apiVersion":"org.containers.bootc/v1","kind":"Pod"}}`, `field "status": invalid bootc status: kind "Pod"`},
				{"not json", `{"status":`, "Invalid JSON"},
				{"status of the wrong type", `{"status":"text"}`, `field "status": invalid bootc status: not JSON`},
			} {
				t.Run(tc.name, func(t *testing.T) {
					rec := host(srv, http.MethodPost, path, cred, tc.body)
					require.Equal(t, http.StatusBadRequest, rec.Code, rec.Body.String())
					assert.Contains(t, faultString(t, rec), tc.want)
				})
			}
			big := `{"status":{"apiVersion":"org.containers.bootc/v1","kind":"BootcHost","x":"` + strings.Repeat("a", bootchost.MaxReportBytes) + `"}}`
			rec = host(srv, http.MethodPost, path, cred, big)
			assert.Equal(t, http.StatusRequestEntityTooLarge, rec.Code)
		})
	}
}

func mapKeys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestBootcCredentialLifecycle: the operator asks for a rotation, the reporter sees it at its poll and rotates;
// the old credential works until the new one is used; revocation refuses both and blocks rotation.
func TestBootcCredentialLifecycle(t *testing.T) {
	for name, open := range bootcStores(t) {
		t.Run(name, func(t *testing.T) {
			st := open(t)
			srv := bootcServer(t, st, nil)
			n, old := bootcNode(t, st, "cred")
			desired := hostPath(bootchost.PathDesired, n.UUID)

			assert.Equal(t, http.StatusNotFound, operator(srv, http.MethodPost, "/v1/nodes/"+uuid.NewString()+"/bootc/credential/rotate").Code)
			require.Equal(t, http.StatusAccepted, operator(srv, http.MethodPost, "/v1/nodes/"+n.UUID+"/bootc/credential/rotate").Code)
			rec := host(srv, http.MethodGet, desired, old, "")
			assert.Contains(t, rec.Body.String(), `"rotate_credential": true`)

			rec = host(srv, http.MethodPost, hostPath(bootchost.PathCredential, n.UUID), old, "")
			require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
			assert.Equal(t, "no-store", rec.Header().Get("Cache-Control"))
			var rot bootchost.CredentialRotation
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &rot))
			require.NotEmpty(t, rot.Credential)
			assert.NotEqual(t, old, rot.Credential)

			// The old one still works (the answer might have been lost) until the new one is used.
			assert.Equal(t, http.StatusOK, host(srv, http.MethodGet, desired, old, "").Code)
			rec = host(srv, http.MethodGet, desired, rot.Credential, "")
			require.Equal(t, http.StatusOK, rec.Code)
			assert.Contains(t, rec.Body.String(), `"rotate_credential": false`)
			assert.Equal(t, http.StatusUnauthorized, host(srv, http.MethodGet, desired, old, "").Code, "void once the new one was used")

			rec = operator(srv, http.MethodDelete, "/v1/nodes/"+n.UUID+"/bootc/credential")
			require.Equal(t, http.StatusNoContent, rec.Code, rec.Body.String())
			assert.Equal(t, http.StatusUnauthorized, host(srv, http.MethodGet, desired, rot.Credential, "").Code)
			rec = operator(srv, http.MethodPost, "/v1/nodes/"+n.UUID+"/bootc/credential/rotate")
			assert.Equal(t, http.StatusConflict, rec.Code)
			assert.Contains(t, rec.Body.String(), "deploy the node again")

			plain := &store.Node{UUID: uuid.NewString(), Driver: "fake-hardware", ProvisionState: "active", CreatedAt: time.Now()}
			require.NoError(t, st.CreateNode(context.Background(), plain))
			rec = operator(srv, http.MethodGet, "/v1/nodes/"+plain.UUID+"/bootc")
			require.Equal(t, http.StatusNotFound, rec.Code)
			assert.Contains(t, rec.Body.String(), "has no image-mode reporter: deploy it with the bootc deploy interface")
		})
	}
}

// FuzzBootcReport: whatever a client sends to the reporter's endpoints, with or without the right credential,
// the answer is never a server error and never holds the credential's hash.
func FuzzBootcReport(f *testing.F) {
	for _, s := range []string{reportBody(bootcStatus("r/x:1", "sha256:a", "sha256:b", true), "1"), `{"status":null}`,
		`{"status":{"apiVersion":"org.containers.bootc/v1","kind":"BootcHost","status":{"booted":{"image":null}}}}`,
		`{"status":{"apiVersion":"org.containers.bootc/v1","kind":"BootcHost","spec":{"image":{"image":1}}}}`, `[]`, ``, `{`} {
		f.Add(s, true)
		f.Add(s, false)
	}
	st, err := store.Open(context.Background(), "sqlite://"+filepath.Join(f.TempDir(), "f.db"))
	require.NoError(f, err)
	f.Cleanup(func() { st.Close() })
	var srv *Server
	var n *store.Node
	var cred string
	f.Fuzz(func(t *testing.T, body string, withCred bool) {
		if srv == nil {
			srv = bootcServer(t, st, nil)
			n, cred = bootcNode(t, st, "fuzz")
		}
		c := "wrong"
		if withCred {
			c = cred
		}
		for _, p := range []string{bootchost.PathReport, bootchost.PathAction, bootchost.PathCredential} {
			rec := host(srv, http.MethodPost, hostPath(p, n.UUID), c, body)
			assert.Less(t, rec.Code, 500, rec.Body.String())
			r, err := st.BootcReporter(context.Background(), n.UUID)
			require.NoError(t, err)
			assert.NotContains(t, rec.Body.String(), r.CredentialHash)
			if p == bootchost.PathCredential && rec.Code == http.StatusOK {
				var rot bootchost.CredentialRotation
				require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &rot))
				cred = rot.Credential
			}
		}
	})
}

// TestFleetLockWithReporterCredential: ferric-hostd takes a reboot slot with its own node's reporter credential
// (the store's, the default verifier); another node's id, a wrong or a revoked credential are refused alike.
func TestFleetLockWithReporterCredential(t *testing.T) {
	st := bootcStores(t)["sqlite"](t)
	srv := bootcServer(t, st, nil)
	n, cred := bootcNode(t, st, "rebooter")
	other, _ := bootcNode(t, st, "other")
	lock := func(id, cred, step string) int {
		req := httptest.NewRequest(http.MethodPost, "/v1/fleetlock/v1/"+step,
			strings.NewReader(`{"client_params":{"id":"`+id+`","group":"default"}}`))
		req.Header.Set("fleet-lock-protocol", "true")
		req.Header.Set("Authorization", "Bearer "+cred)
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		return rec.Code
	}
	assert.Equal(t, http.StatusUnauthorized, lock(other.UUID, cred, "pre-reboot"), "a credential is its node's only")
	assert.Equal(t, http.StatusUnauthorized, lock(n.UUID, cred+"x", "pre-reboot"))
	assert.Equal(t, http.StatusOK, lock(n.UUID, cred, "pre-reboot"))
	assert.Equal(t, http.StatusOK, lock(n.UUID, cred, "steady-state"))
	require.NoError(t, st.RevokeBootcCredential(context.Background(), n.UUID))
	assert.Equal(t, http.StatusUnauthorized, lock(n.UUID, cred, "pre-reboot"), "a revoked credential is refused")
}

// TestServeHostd: the binary cloud-init installs is served without API credentials, byte for byte; a conductor
// without one says how to configure it.
func TestServeHostd(t *testing.T) {
	st := bootcStores(t)["sqlite"](t)
	bin := filepath.Join(t.TempDir(), "ferric-hostd")
	require.NoError(t, os.WriteFile(bin, []byte("\x7fELF not really"), 0o755))
	srv := bootcServerWith(t, st, BootcConfig{Hostd: bin})
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, HostdPath, nil))
	require.Equal(t, http.StatusOK, rec.Code, "public: hosts have no API login")
	assert.Equal(t, "\x7fELF not really", rec.Body.String())
	assert.Equal(t, "application/octet-stream", rec.Header().Get("Content-Type"))

	none := bootcServer(t, st, nil)
	rec = httptest.NewRecorder()
	none.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, HostdPath, nil))
	assert.Equal(t, http.StatusNotFound, rec.Code)
	assert.Contains(t, rec.Body.String(), "--hostd-binary")
}
