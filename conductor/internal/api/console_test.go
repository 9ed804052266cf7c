package api

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/engine"
	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// plainManagement hides the optional capabilities of the fake management: a BMC that sets boot devices only.
type plainManagement struct{ driver.Management }

// extrasServer is the fixture of the node sub-resource tests: a fake-hardware node ("fake", every capability) and
// a node of a hardware type "bare-hardware" whose console is no-console, vendor no-vendor and management without
// indicators or boot modes, as a redfish node without those features.
func extrasServer(t *testing.T) (srv *Server, st store.Store, fake, bare *store.Node) {
	ctx := context.Background()
	st, err := store.Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "s.db"))
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	reg := driver.NewRegistry()
	driver.AddInspectRescue(reg)
	reg.AddHardware(driver.FakeHardware(nil, nil))
	b := driver.FakeHardware(nil, nil)
	b.Name = "bare-hardware"
	for k, name := range map[string]string{"console": "no-console", "vendor": "no-vendor", "management": "plain"} {
		b.Defaults[k], b.Enabled[k] = name, []string{name}
	}
	reg.AddHardware(b)
	reg.AddPower("fake", driver.NewFakePower())
	reg.AddManagement("fake", driver.NewFakeManagement())
	reg.AddManagement("plain", plainManagement{driver.NewFakeManagement()})
	reg.AddBoot("fake", driver.NewFakeBoot())
	reg.AddDeploy("fake", driver.FakeDeploy{})
	l := logrus.New()
	l.SetOutput(io.Discard)
	eng := engine.New(engine.Config{Host: "t"}, st, reg, logrus.NewEntry(l))
	srv = New(Config{PublicURL: "http://127.0.0.1:6385"}, eng, logrus.NewEntry(l))
	fake = &store.Node{UUID: "6a9a5a36-1c1e-4a8f-9a43-0d6f7f4b2c11", Name: "fake-1", Driver: "fake-hardware",
		ProvisionState: "manageable"}
	require.NoError(t, eng.CreateNode(ctx, fake))
	bare = &store.Node{UUID: "0b6f3c8e-3f6e-4c59-8f0e-5d9f3b1e7a22", Name: "bare-1", Driver: "bare-hardware",
		ProvisionState: "manageable"}
	require.NoError(t, eng.CreateNode(ctx, bare))
	return srv, st, fake, bare
}

// extrasCase is one request of the node sub-resource tables, checked for its status and (for errors) message or
// (for 200) JSON body.
type extrasCase struct {
	name, method, path, version, body string
	code                              int
	want                              string
}

// runExtras runs the cases in order (later cases see what earlier ones changed). A want of "-" leaves a success's
// body unchecked.
func runExtras(t *testing.T, srv *Server, cases []extrasCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := call(srv, tc.method, tc.path, tc.version, tc.body)
			require.Equal(t, tc.code, rec.Code, rec.Body.String())
			switch {
			case tc.code >= 400:
				assert.Contains(t, faultString(t, rec), tc.want)
			case tc.want == "-": // the body is not checked
			case tc.want != "":
				assert.JSONEq(t, tc.want, rec.Body.String())
			default:
				assert.Empty(t, rec.Body.String())
			}
		})
	}
}

// TestNodeConsole: a no-console node answers GET with the console disabled and refuses PUT with Ironic's
// UnsupportedDriverExtension, its console_enabled staying false; a fake console records the state.
func TestNodeConsole(t *testing.T) {
	srv, st, fake, bare := extrasServer(t)
	fc, bc := "/v1/nodes/"+fake.UUID+"/states/console", "/v1/nodes/bare-1/states/console"
	runExtras(t, srv, []extrasCase{
		{"GET no-console", "GET", bc, "", "", 200, `{"console_enabled": false, "console_info": null}`},
		{"PUT no-console enable", "PUT", bc, "1.95", `{"enabled": true}`, 400,
			"Driver bare-hardware does not support console (disabled or not implemented)."},
		{"PUT no-console disable", "PUT", bc, "1.95", `{"enabled": false}`, 400, "does not support console"},
		{"PUT without enabled", "PUT", fc, "", `{}`, 400, `Missing argument: "enabled"`},
		{"PUT enabled not a boolean", "PUT", fc, "", `{"enabled": "maybe"}`, 400, "enabled"},
		{"PUT unknown node", "PUT", "/v1/nodes/nope/states/console", "", `{"enabled": true}`, 404, "Node nope could not be found."},
		{"GET unknown node", "GET", "/v1/nodes/nope/states/console", "", "", 404, "Node nope could not be found."},
		{"GET fake disabled", "GET", fc, "", "", 200, `{"console_enabled": false, "console_info": null}`},
		{"PUT fake enable", "PUT", fc, "", `{"enabled": "true"}`, 202, ""},
		{"GET fake enabled", "GET", fc, "", "", 200, `{"console_enabled": true, "console_info": {}}`},
		{"PUT fake disable", "PUT", fc, "", `{"enabled": false}`, 202, ""},
		{"GET fake disabled again", "GET", fc, "", "", 200, `{"console_enabled": false, "console_info": null}`},
	})
	got, err := st.GetNode(context.Background(), bare.UUID)
	require.NoError(t, err)
	assert.False(t, got.ConsoleEnabled, "a no-console node's console_enabled stays false")
	rec := call(srv, "PUT", fc, "", `{"enabled": true}`)
	assert.Equal(t, "http://127.0.0.1:6385/v1/nodes/"+fake.UUID+"/states/console", rec.Header().Get("Location"))
	got, err = st.GetNode(context.Background(), fake.UUID)
	require.NoError(t, err)
	assert.True(t, got.ConsoleEnabled, "the fake console's state is the node's console_enabled")
}

// startTestServer serves h on a test server whose URL is written into cfg.PublicURL before it starts: a write
// after Start races the handlers that read it, and when the client is another process (the baremetal CLI) the
// race detector sees no synchronisation at all.
func startTestServer(t *testing.T, cfg *Config, h http.Handler) *httptest.Server {
	ts := httptest.NewUnstartedServer(h)
	cfg.PublicURL = "http://" + ts.Listener.Addr().String()
	ts.Start()
	t.Cleanup(ts.Close)
	return ts
}
