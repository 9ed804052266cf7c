package ui_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/ferric-metal/ferric/bootchost"
	"github.com/ferric-metal/ferric/conductor/internal/api"
	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/driver/agentdeploy"
	"github.com/ferric-metal/ferric/conductor/internal/engine"
	"github.com/ferric-metal/ferric/conductor/internal/fleet"
	"github.com/ferric-metal/ferric/conductor/internal/store"
	"github.com/ferric-metal/ferric/conductor/internal/ui"
	"github.com/ferric-metal/ferric/test/registrytest"
)

// hostile is a node name a page must show as text.
const hostile = `<script>alert("x")</script>`

// fixture is an API server with the pages, over a real SQLite store, with HTTP Basic auth (op / pw), a real
// registry behind the stale check, and its nodes.
type fixture struct {
	srv        http.Handler
	st         store.Store
	reads      *countingStore // the store as the pages see it, counting their per-node and batched reads
	reg        *registrytest.Registry
	ref        string // the tag the image-mode host follows
	first      string // the digest it booted
	image      *store.Node
	deploying  *store.Node
	availables []*store.Node
}

func newFixture(t *testing.T) *fixture {
	ctx := context.Background()
	st, err := store.Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "f.db"))
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	f := &fixture{st: st, reg: registrytest.Start(t, registrytest.WithBasicAuth("u", "p"))}
	f.ref = f.reg.Host + "/os:v1"
	f.first = pushImage(t, f.reg.Host, "os", "v1")
	registries := agentdeploy.Registry{Insecure: []string{f.reg.Host}}
	// TTL 0: every page view asks the registry again, so a pushed image shows at once.
	stale := fleet.NewResolver(func(ctx context.Context, n *store.Node, ref string) (string, error) {
		im, err := registries.Identify(ctx, n, "oci://"+ref, false)
		if err != nil {
			return "", err
		}
		return im.Digest, nil
	}, 0)
	l := logrus.New()
	l.SetOutput(io.Discard)
	f.reads = &countingStore{Store: st}
	pages, err := ui.New(ui.Config{Store: f.reads, Stale: stale, DefaultSlots: 2}, logrus.NewEntry(l))
	require.NoError(t, err)
	reg := driver.NewRegistry()
	reg.AddHardware(driver.FakeHardware(nil, nil))
	eng := engine.New(engine.Config{Host: "ui"}, st, reg, logrus.NewEntry(l))
	hash, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	require.NoError(t, err)
	pw := filepath.Join(t.TempDir(), "htpasswd")
	require.NoError(t, os.WriteFile(pw, []byte("op:"+string(hash)+"\n"), 0o600))
	auth, err := api.LoadHTPasswd(pw, logrus.NewEntry(l))
	require.NoError(t, err)
	f.srv = api.New(api.Config{PublicURL: "http://127.0.0.1:6385", Auth: auth, Pages: pages.Register}, eng, logrus.NewEntry(l))
	f.seed(t)
	return f
}

// seed creates an image-mode node named hostile (reported, with a queued action and a reboot slot), a node in
// the middle of a deploy with its progress, and three available nodes.
func (f *fixture) seed(t *testing.T) {
	ctx := context.Background()
	f.image = newNode(t, f.st, hostile, "active", map[string]any{"image_source": "oci://" + f.ref, "image_pull_secret": "u:p"}, nil)
	_, hash, err := fleet.NewCredential()
	require.NoError(t, err)
	require.NoError(t, f.st.SetBootcCredential(ctx, f.image.UUID, hash))
	require.NoError(t, f.st.PutBootcReport(ctx, f.image.UUID, store.BootcReport{Status: []byte(`{}`), HostdVersion: "1.0",
		SpecRef: f.ref, BootedRef: f.ref, BootedDigest: f.first, RollbackRef: f.ref, RollbackDigest: "sha256:0123"}))
	require.NoError(t, f.st.CreateBootcAction(ctx, &store.BootcAction{ID: uuid.NewString(), NodeUUID: f.image.UUID,
		Kind: bootchost.ActionUpgrade, Reboot: true, RebootGroup: "workers"}))
	require.NoError(t, f.st.AcquireFleetLock(ctx, "workers", f.image.UUID, 2))
	f.deploying = newNode(t, f.st, "deploying-node", "wait call-back", nil, map[string]any{agentdeploy.KeyProgress: map[string]any{
		"phase": "pull", "percent": 42.0, "bytes_done": 512 << 20, "bytes_total": 1 << 30, "updated_at": "2026-12-02T18:00:00Z"}})
	for i := 0; i < 3; i++ {
		f.availables = append(f.availables, newNode(t, f.st, fmt.Sprintf("spare-%d", i), "available", nil, nil))
	}
}

// countingStore is the store with the pages' node-by-node reads and their batched forms counted, so a test can
// tell a page that reads once from one that reads once per node.
type countingStore struct {
	store.Store
	reporter, reporters, names atomic.Int64
}

func (c *countingStore) BootcReporter(ctx context.Context, nodeUUID string) (*store.BootcReporter, error) {
	c.reporter.Add(1)
	return c.Store.BootcReporter(ctx, nodeUUID)
}

func (c *countingStore) BootcReporters(ctx context.Context, uuids []string) (map[string]*store.BootcReporter, error) {
	c.reporters.Add(1)
	return c.Store.BootcReporters(ctx, uuids)
}

func (c *countingStore) NodeNames(ctx context.Context, uuids []string) (map[string]string, error) {
	c.names.Add(1)
	return c.Store.NodeNames(ctx, uuids)
}

// reset zeroes the counts (before the page a test counts).
func (c *countingStore) reset() {
	c.reporter.Store(0)
	c.reporters.Store(0)
	c.names.Store(0)
}

func newNode(t *testing.T, st store.Store, name, state string, ii, dii map[string]any) *store.Node {
	n := &store.Node{UUID: uuid.NewString(), Name: name, Driver: "fake-hardware", ProvisionState: state,
		PowerState: "power on", CreatedAt: time.Now().UTC(), InstanceInfo: ii, DriverInternalInfo: dii,
		// BMC credentials: no page may show them.
		DriverInfo: map[string]any{"redfish_username": "bmc-admin", "redfish_password": "hunter2"}}
	require.NoError(t, st.CreateNode(context.Background(), n))
	return n
}

// pushImage pushes a fresh linux/amd64 image to host/repo:tag with the registry's credentials and returns its
// digest.
func pushImage(t *testing.T, host, repo, tag string) string {
	return registrytest.PushRandom(t, host, repo, tag, "u", "p")
}

// get sends a GET with the operator's credentials (user "" = none) and returns the answer and its body.
func (f *fixture) get(t *testing.T, path, user, pass string) (*http.Response, string) {
	req := httptest.NewRequest(http.MethodGet, path, nil)
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	rec := httptest.NewRecorder()
	f.srv.ServeHTTP(rec, req)
	return rec.Result(), rec.Body.String()
}

// page is get as the operator, requiring code.
func (f *fixture) page(t *testing.T, path string, code int) string {
	t.Helper()
	res, body := f.get(t, path, "op", "pw")
	require.Equal(t, code, res.StatusCode, body)
	return body
}
