package conductor_test

import (
	"context"
	"encoding/base64"
	"image/png"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/nodes"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/ferric-metal/ferric/conductor"
	"github.com/ferric-metal/ferric/conductor/internal/store"
	"github.com/ferric-metal/ferric/test/conductortest"
	"github.com/ferric-metal/ferric/test/testenv"
)

// hostile is a value a page must show as text.
const hostile = "<script>alert(1)</script>"

// browserPage is one page the headless browser loads: what its DOM must hold, and its screenshot's name.
type browserPage struct {
	name, path string
	want       []string
}

// TestWebPageInChromium: a real conductor (noauth: a headless browser cannot answer a Basic challenge; the
// handler tests cover auth) with nodes in three provision states; Debian's Chromium loads every page, its DOM
// holds the node names and states (a hostile name as text, never as an element), and the screenshot shows the
// page's stylesheet applied under the CSP. Screenshots go to $FERRIC_TEST_ARTIFACTS when set.
func TestWebPageInChromium(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		testenv.Missing(t, "chromium is not installed (apt-get install -y chromium)")
	}
	c := conductortest.Start(t)
	cl := c.Client("1.89")
	ctx := context.Background()
	mk := func(name string) *nodes.Node {
		n, err := nodes.Create(ctx, cl, nodes.CreateOpts{Name: name, Driver: "fake-hardware"}).Extract()
		require.NoError(t, err)
		return n
	}
	enrolled, manageable, active := mk("web-enrolled"), mk("web-manageable"), mk("web-active")
	// Names are restricted by the API; a maintenance reason is free text, the hostile value a page must escape.
	require.NoError(t, nodes.SetMaintenance(ctx, cl, enrolled.UUID, nodes.MaintenanceOpts{Reason: hostile}).ExtractErr())
	for _, n := range []*nodes.Node{manageable, active} {
		provision(t, cl, n.UUID, nodes.ProvisionStateOpts{Target: nodes.TargetManage})
		waitState(t, cl, n.UUID, "manageable")
	}
	provision(t, cl, active.UUID, nodes.ProvisionStateOpts{Target: nodes.TargetProvide})
	waitState(t, cl, active.UUID, "available")
	provision(t, cl, active.UUID, nodes.ProvisionStateOpts{Target: nodes.TargetActive})
	waitState(t, cl, active.UUID, "active")

	digest := reportHost(t, c, active.UUID)

	dir := os.Getenv("FERRIC_TEST_ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	}
	require.NoError(t, os.MkdirAll(dir, 0o755))
	for _, p := range []browserPage{
		{"nodes", "/ui/", []string{"web-enrolled", "web-manageable", "web-active", "manageable", "active", "enroll",
			"power on", enrolled.UUID, "maintenance"}},
		{"nodes-filtered", "/ui/?provision_state=manageable", []string{"web-manageable", "manageable"}},
		{"node-maintenance", "/ui/nodes/" + enrolled.UUID, []string{"web-enrolled", "enroll", "&lt;script&gt;alert(1)&lt;/script&gt;",
			"No image-mode reporter"}},
		{"node", "/ui/nodes/" + active.UUID, []string{"web-active", active.UUID, "active", digest, "upgrade", "queued"}},
		{"images", "/ui/images", []string{digest[:len("sha256:")+12], "registry.example/os:1", "web-active", "unknown"}},
		{"fleetlock", "/ui/fleetlock", []string{"workers", "1 of 1", "web-active", active.UUID}},
		{"rollouts", "/ui/rollouts", []string{"ro-web", "paused", "registry.example/os@" + digest}},
		{"rollout", "/ui/rollouts/ro-web", []string{"Wave 0", "web-active", active.UUID, "failed", "bootc said no"}},
	} {
		t.Run(p.name, func(t *testing.T) {
			dom := runChromium(t, chromium, "--dump-dom", c.URL+p.path)
			for _, w := range p.want {
				assert.Contains(t, dom, w)
			}
			// The hostile name is text: the DOM has no script element at all.
			assert.NotContains(t, strings.ToLower(dom), "<script")
			if p.name == "nodes-filtered" {
				assert.NotContains(t, dom, "web-active", "the filter leaves other states out")
			}
			shot := filepath.Join(dir, "ui-"+p.name+".png")
			runChromium(t, chromium, "--screenshot="+shot, c.URL+p.path)
			t.Logf("screenshot of %s: %s", p.path, shot)
			checkScreenshot(t, shot)
		})
	}
}

// reportHost gives the node an image-mode report, a queued upgrade and a reboot slot of group "workers", written
// to the conductor's own database as the reporter's endpoints and FleetLock would; it returns the booted digest.
func reportHost(t *testing.T, c *conductortest.Conductor, node string) string {
	ctx := context.Background()
	st, err := store.Open(ctx, c.Config.DB)
	require.NoError(t, err)
	defer st.Close()
	const ref = "registry.example/os:1"
	digest := "sha256:" + strings.Repeat("ab", 32)
	require.NoError(t, st.SetBootcCredential(ctx, node, strings.Repeat("0", 64)))
	require.NoError(t, st.PutBootcReport(ctx, node, store.BootcReport{Status: []byte(`{}`), HostdVersion: "test",
		SpecRef: ref, BootedRef: ref, BootedDigest: digest}))
	require.NoError(t, st.CreateBootcAction(ctx, &store.BootcAction{ID: "a1", NodeUUID: node, Kind: "upgrade",
		Reboot: true, RebootGroup: "workers"}))
	require.NoError(t, st.AcquireFleetLock(ctx, "workers", node, 1))
	// A paused rollout (its controller leaves it alone) with the node in its only wave.
	require.NoError(t, st.CreateBootcRollout(ctx, &store.BootcRollout{ID: "ro-web", Image: "registry.example/os@" + digest,
		Spec: []byte(`{}`), State: "paused", Waves: 1, PauseReason: "wave 0: " + node + " failed"},
		[]store.BootcRolloutNode{{NodeUUID: node, State: "failed", Reason: "bootc said no"}}))
	return digest
}

// runChromium runs headless Chromium on url with a throwaway profile and returns its standard output.
func runChromium(t *testing.T, chromium, mode, url string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
		"--user-data-dir="+t.TempDir(), "--window-size=1280,900", mode, url)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "chromium %s %s: %s", mode, url, stderr.String())
	return string(out)
}

// checkScreenshot asserts the screenshot is the window's size and that the header has the stylesheet's colour
// (#24323f): the page's own CSS loaded under its Content-Security-Policy.
func checkScreenshot(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	img, err := png.Decode(f)
	require.NoError(t, err)
	assert.Equal(t, 1280, img.Bounds().Dx())
	assert.Equal(t, 900, img.Bounds().Dy())
	r, g, b, _ := img.At(4, 4).RGBA()
	assert.Equal(t, [3]uint32{0x24, 0x32, 0x3f}, [3]uint32{r >> 8, g >> 8, b >> 8}, "the header's background from ui.css")
}

// TestWebPageNeedsAPILogin: the conductor as wired serves the page behind the API's http_basic authentication:
// a browser without credentials gets the Basic challenge, the API's user gets the page.
func TestWebPageNeedsAPILogin(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	require.NoError(t, err)
	ht := filepath.Join(t.TempDir(), "htpasswd")
	require.NoError(t, os.WriteFile(ht, []byte("admin:"+string(hash)+"\n"), 0o600))
	c := conductortest.Start(t, func(cfg *conductor.Config) { cfg.Auth = "http_basic"; cfg.HTPasswd = ht })
	for _, p := range []string{"/ui/", "/ui/images", "/ui/fleetlock", "/ui/rollouts", "/ui/static/ui.css"} {
		code, h, _ := rawRequest(t, http.MethodGet, c.URL+p, "", nil)
		assert.Equal(t, http.StatusUnauthorized, code, p)
		assert.Contains(t, h.Get("WWW-Authenticate"), "Basic", p)
		code, h, body := rawRequest(t, http.MethodGet, c.URL+p, "", map[string]string{
			"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte("admin:s3cret"))})
		assert.Equal(t, http.StatusOK, code, p)
		assert.Contains(t, h.Get("Content-Security-Policy"), "frame-ancestors 'none'", p)
		assert.NotEmpty(t, body, p)
	}
}
