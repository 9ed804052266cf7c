package bootcdeploy

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/bootchost"
	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/fleet"
	"github.com/ferric-metal/ferric/conductor/internal/store"
	"github.com/ferric-metal/ferric/configdrive"
)

// drivesOf reads the files of a config drive in Ironic's string form.
func drivesOf(t *testing.T, s string) map[string][]byte {
	img, err := configdrive.Decode(context.Background(), s, configdrive.DecodeOptions{})
	require.NoError(t, err)
	p := filepath.Join(t.TempDir(), "cd.iso")
	require.NoError(t, os.WriteFile(p, img, 0o600))
	files, err := configdrive.ReadFiles(p)
	require.NoError(t, err)
	return files
}

// TestReporterDelivery deploys (installParams) with each config drive form and checks that the drive carries a
// fresh credential, the store only its hash, and that neither the node nor the deploy log ever holds it.
func TestReporterDelivery(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "f.db"))
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	plain, err := configdrive.Build(configdrive.Drive{UserData: "#!/bin/sh\necho user\n"}, configdrive.NodeInfo{UUID: "u"})
	require.NoError(t, err)
	iso, err := configdrive.Encode(plain)
	require.NoError(t, err)
	d := New(Config{Reporter: Reporter{URL: "https://conductor.example:6385", CA: func() string { return "PEM" }, Store: st}})

	for name, tc := range map[string]struct {
		drive    any
		reporter bool
		userData string
	}{
		"no drive":       {nil, true, ""},
		"dict":           {map[string]any{"user_data": "#cloud-config\n"}, true, "#cloud-config\n"},
		"gzip+base64":    {iso, true, "#!/bin/sh\necho user\n"},
		"url: untouched": {"http://127.0.0.1:1/cd.iso", false, ""},
	} {
		t.Run(name, func(t *testing.T) {
			n := &store.Node{UUID: uuid.NewString(), Name: "n-" + uuid.NewString()[:8], Driver: "fake-hardware", ProvisionState: "deploying",
				CreatedAt: time.Now(), DriverInternalInfo: map[string]any{keyPinned: "r/x@sha256:aa"}}
			require.NoError(t, st.CreateNode(ctx, n))
			require.NoError(t, st.SetBootcCredential(ctx, n.UUID, "hash-of-an-earlier-deploy"))
			var mu sync.Mutex
			var logged []string
			task := &driver.Task{Node: n, Log: logrus.NewEntry(logrus.New()),
				ConfigDrive: func(context.Context) (any, error) { return tc.drive, nil },
				DeployLog: func(_ context.Context, _ string, lines ...string) {
					mu.Lock()
					logged = append(logged, lines...)
					mu.Unlock()
				}}
			p, err := d.installParams(ctx, task)
			require.NoError(t, err)
			if !tc.reporter {
				require.NotNil(t, p.ConfigDrive)
				assert.Equal(t, tc.drive, *p.ConfigDrive, "a URL drive goes to the agent as given")
				_, err := st.BootcReporter(ctx, n.UUID)
				require.ErrorIs(t, err, store.ErrNotFound, "the earlier deploy's credential is void")
				assert.Contains(t, strings.Join(logged, "\n"), "no image-mode reporter for this deploy: the config drive is given as a URL")
				return
			}
			require.NotNil(t, p.ConfigDrive)
			files := drivesOf(t, *p.ConfigDrive)
			var hc bootchost.HostConfig
			require.NoError(t, json.Unmarshal(files[bootchost.ConfigDrivePath], &hc))
			assert.Equal(t, bootchost.HostConfig{ConductorURL: "https://conductor.example:6385", NodeUUID: n.UUID,
				Credential: hc.Credential, CACert: "PEM"}, hc)
			assert.Len(t, hc.Credential, 43, "32 bytes, base64url")
			assert.Equal(t, tc.userData, string(files["openstack/latest/user_data"]))
			assert.Contains(t, files, "openstack/latest/meta_data.json")

			r, err := st.BootcReporter(ctx, n.UUID)
			require.NoError(t, err)
			assert.Equal(t, fleet.HashCredential(hc.Credential), r.CredentialHash, "the store keeps the hash")
			dii, _ := json.Marshal(n)
			assert.NotContains(t, string(dii), hc.Credential)
			assert.NotContains(t, strings.Join(logged, "\n"), hc.Credential)

			// A redeploy mints another credential; the old one is void.
			p2, err := d.installParams(ctx, task)
			require.NoError(t, err)
			var hc2 bootchost.HostConfig
			require.NoError(t, json.Unmarshal(drivesOf(t, *p2.ConfigDrive)[bootchost.ConfigDrivePath], &hc2))
			assert.NotEqual(t, hc.Credential, hc2.Credential)
			r, _ = st.BootcReporter(ctx, n.UUID)
			assert.Equal(t, fleet.HashCredential(hc2.Credential), r.CredentialHash)
		})
	}
}

// TestTearDownForgetsReporter: undeploying voids the host's reporter credential with the instance.
func TestTearDownForgetsReporter(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "f.db"))
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	n := &store.Node{UUID: uuid.NewString(), Driver: "fake-hardware", ProvisionState: "deleting", CreatedAt: time.Now(),
		DriverInternalInfo: map[string]any{}}
	require.NoError(t, st.CreateNode(ctx, n))
	require.NoError(t, st.SetBootcCredential(ctx, n.UUID, "h"))
	d := New(Config{Reporter: Reporter{URL: "http://c", Store: st}})
	require.NoError(t, d.TearDown(ctx, &driver.Task{Node: n, Power: driver.NewFakePower(), Boot: driver.NewFakeBoot(),
		Log: logrus.NewEntry(logrus.New())}))
	_, err = st.BootcReporter(ctx, n.UUID)
	require.ErrorIs(t, err, store.ErrNotFound)
}
