package directdeploy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/conductor/internal/artifact"
	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/driver/agentdeploy"
	"github.com/ferric-metal/ferric/conductor/internal/fsm"
	"github.com/ferric-metal/ferric/conductor/internal/imagecache"
	"github.com/ferric-metal/ferric/conductor/internal/store"
)

func newCache(t *testing.T, guard imagecache.Guard) *imagecache.Cache {
	c, err := imagecache.New(imagecache.Config{Dir: t.TempDir(), Guard: guard}, quietLog())
	require.NoError(t, err)
	return c
}

// TestValidateDownloadSource: image_download_source comes from instance_info, else driver_info, else the flag
// (an empty value falls through, as in Ironic); swift and unknown values are refused naming the field; local
// needs the cache and an image_source the conductor may fetch.
func TestValidateDownloadSource(t *testing.T) {
	img := "https://images.example.com/disk.raw"
	loop := "http://127.0.0.1:1/disk.raw"
	strict, err := artifact.New(artifact.Config{})
	require.NoError(t, err)
	strictCache := newCache(t, strict)
	tests := []struct {
		name    string
		src     string
		ii, di  map[string]any
		local   LocalConfig
		wantErr string // "" = valid
	}{
		{"default http", img, nil, nil, LocalConfig{}, ""},
		{"flag local", img, nil, nil, LocalConfig{Default: "local", Cache: newCache(t, nil), URL: "http://c"}, ""},
		{"instance_info local", img, map[string]any{"image_download_source": "local"}, nil, LocalConfig{Cache: newCache(t, nil), URL: "http://c"}, ""},
		{"instance_info wins", img, map[string]any{"image_download_source": "http"}, map[string]any{"image_download_source": "swift"}, LocalConfig{}, ""},
		{"empty falls through", img, map[string]any{"image_download_source": ""}, map[string]any{"image_download_source": "swift"}, LocalConfig{},
			"driver_info.image_download_source is swift, but this conductor has no Object Storage"},
		{"flag swift", img, nil, nil, LocalConfig{Default: "swift"}, "--image-download-source is swift"},
		{"unknown", img, map[string]any{"image_download_source": "ftp"}, nil, LocalConfig{},
			`instance_info.image_download_source "ftp" is not an image download source: use http`},
		{"not a string", img, nil, map[string]any{"image_download_source": 3}, LocalConfig{}, `driver_info.image_download_source "3"`},
		{"local without cache", img, map[string]any{"image_download_source": "local"}, nil, LocalConfig{},
			"instance_info.image_download_source is local but this conductor has no image cache"},
		{"local loopback refused", loop, nil, map[string]any{"image_download_source": "local"}, LocalConfig{Cache: strictCache, URL: "http://c"},
			"driver_info.image_download_source is local, so the conductor downloads the image: instance_info.image_source: 127.0.0.1 is an address internal"},
		{"http loopback left to the agent", loop, nil, nil, LocalConfig{Cache: strictCache, URL: "http://c"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ii := map[string]any{"image_source": tc.src, "image_checksum": sha256Disk}
			for k, v := range tc.ii {
				ii[k] = v
			}
			n := node(ii)
			n.DriverInfo = tc.di
			err := New(Config{Local: tc.local}).Validate(context.Background(), n)
			if tc.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, driver.ErrInvalid)
			assert.Contains(t, err.Error(), tc.wantErr)
		})
	}
}

// localTask is a task on the fake interfaces that counts saves (the core step saves before booting the agent).
func localTask(n *store.Node, saves *int) *driver.Task {
	return &driver.Task{Node: n, Power: driver.NewFakePower(), Boot: driver.NewFakeBoot(), Log: quietLog(),
		Save: func(context.Context) error { *saves++; return nil }}
}

// TestLocalDeploy: with local, the core step caches the image (sending image_request_authorization_secret to the
// image server), grants the deploy a token, and write_image sends the agent the conductor's URL without the
// image server's credentials or proxies; the grant is served only while deploying and is gone once the image is
// written. A checksum mismatch fails the core step before the agent boots, leaving no grant.
func TestLocalDeploy(t *testing.T) {
	img := bytes.Repeat([]byte("disk"), 4096)
	s := sha256.Sum256(img)
	sum := hex.EncodeToString(s[:])
	var auth []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth = append(auth, r.Header.Get("Authorization"))
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(img))
	}))
	defer srv.Close()
	cache := newCache(t, nil)
	d := New(Config{Local: LocalConfig{Default: SourceLocal, Cache: cache, URL: "https://conductor.example:6385/"}})

	n := node(map[string]any{"image_source": srv.URL + "/os/disk%20image.raw", "image_checksum": sum,
		"image_request_authorization_secret": "Bearer s3cret"})
	n.DriverInfo = map[string]any{"image_http_proxy": "http://proxy:3128"}
	n.ProvisionState = string(fsm.Deploying)
	saves := 0
	task := localTask(n, &saves)
	out, err := d.Deploy(context.Background(), task)
	require.NoError(t, err)
	assert.Equal(t, driver.Wait, out)
	assert.Equal(t, []string{"Bearer s3cret"}, auth, "the conductor downloads with the image's Authorization")

	tok, _ := n.DriverInternalInfo[keyImageToken].(string)
	require.Regexp(t, regexp.MustCompile(`^[0-9a-f]{64}$`), tok)
	args, err := d.writeImageArgs(context.Background(), task)
	require.NoError(t, err)
	info := args["image_info"].(map[string]any)
	assert.Equal(t, []any{"https://conductor.example:6385/images/" + n.UUID + "/" + tok + "/disk_image.raw"}, info["urls"])
	for _, k := range []string{"image_request_authorization", "proxies", "no_proxy"} {
		assert.NotContains(t, info, k, "the agent needs no image server credentials or proxies")
	}
	assert.Equal(t, sum, info["checksum"], "the agent still verifies the checksum")

	g, ok := ServedImage(n)
	require.True(t, ok)
	assert.Equal(t, imagecache.Grant{Token: tok, Key: "sha256-" + sum, Name: "disk_image.raw"}, g)
	n.ProvisionState = string(fsm.DeployFailed)
	_, ok = ServedImage(n)
	assert.False(t, ok, "a node that is not deploying is served nothing")
	n.ProvisionState = string(fsm.DeployWait)
	run := n.DriverInternalInfo[agentdeploy.KeyRun]
	n.DriverInternalInfo[agentdeploy.KeyRun] = "a-later-deploy"
	_, ok = ServedImage(n)
	assert.False(t, ok, "a later deploy run never inherits the grant")
	n.DriverInternalInfo[agentdeploy.KeyRun] = run

	// A second deploy reuses the cached copy and gets a new token; the end of the write drops the grant.
	out, err = d.Deploy(context.Background(), task)
	require.NoError(t, err)
	assert.Equal(t, driver.Wait, out)
	assert.Len(t, auth, 1, "the master copy is reused")
	assert.NotEqual(t, tok, n.DriverInternalInfo[keyImageToken])
	d.endLocal(n)
	_, ok = ServedImage(n)
	assert.False(t, ok)

	// A wrong checksum fails the core step before the agent boots.
	n.InstanceInfo["image_checksum"] = sha256Disk
	saves = 0
	_, err = d.Deploy(context.Background(), task)
	require.ErrorIs(t, err, imagecache.ErrVerify)
	assert.Contains(t, err.Error(), "image_download_source local: the conductor could not cache the image")
	assert.Contains(t, err.Error(), sum, "the message names the image's actual sum")
	assert.Zero(t, saves, "the agent was not booted")
	assert.NotContains(t, n.DriverInternalInfo, keyImageToken)
}

// TestHTTPSourceKeepsURL: with http (the default) nothing is cached and the agent gets image_source.
func TestHTTPSourceKeepsURL(t *testing.T) {
	cache := newCache(t, nil)
	d := New(Config{Local: LocalConfig{Cache: cache, URL: "http://c"}})
	n := node(map[string]any{"image_source": "http://127.0.0.1:1/disk.raw", "image_checksum": sha256Disk})
	n.ProvisionState = string(fsm.Deploying)
	saves := 0
	task := localTask(n, &saves)
	_, err := d.Deploy(context.Background(), task)
	require.NoError(t, err)
	args, err := d.writeImageArgs(context.Background(), task)
	require.NoError(t, err)
	assert.Equal(t, []any{"http://127.0.0.1:1/disk.raw"}, args["image_info"].(map[string]any)["urls"])
	_, ok := ServedImage(n)
	assert.False(t, ok)
}

func TestImageName(t *testing.T) {
	for src, want := range map[string]string{
		"http://h/os/disk.qcow2?sig=x": "disk.qcow2",
		"http://h/":                    "image",
		"http://h":                     "image",
		"http://h/a/..":                "image",
		"http://h/d%2Fx y.raw":         "x_y.raw", // the decoded path: %2F is a separator
	} {
		assert.Equal(t, want, imageName(src), src)
	}
}

// TestHideToken: the agent's lines copied into the deploy log, and messages, never show the deploy's token.
func TestHideToken(t *testing.T) {
	tok := strings.Repeat("5e", 32)
	n := node(map[string]any{})
	var logged []string
	task := &driver.Task{Node: n, DeployLog: func(_ context.Context, _ string, lines ...string) { logged = append(logged, lines...) }}
	assert.Equal(t, "x/"+tok, hideToken(task)("x/"+tok), "no grant: nothing to hide")
	n.DriverInternalInfo[keyImageToken] = tok
	scrub := hideToken(task)
	task.DeployLog(context.Background(), "agent", "downloading http://c/images/u/"+tok+"/disk.raw", "done")
	assert.Equal(t, []string{"downloading http://c/images/u/<token>/disk.raw", "done"}, logged)
	assert.Equal(t, "failed at http://c/images/u/<token>/d", scrub("failed at http://c/images/u/"+tok+"/d"))
}

// TestRestoreHolds: after a restart, the image of a deploy in progress is held again (so eviction spares it);
// grants of nodes that are not deploying are not.
func TestRestoreHolds(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "f.db"))
	require.NoError(t, err)
	defer st.Close()
	imgs := [][]byte{bytes.Repeat([]byte("a"), 1000), bytes.Repeat([]byte("b"), 1000)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write(imgs[r.URL.Path[1]-'0'])
	}))
	defer srv.Close()
	dir := t.TempDir()
	before, err := imagecache.New(imagecache.Config{Dir: dir}, quietLog())
	require.NoError(t, err)
	var keys []string
	for i, b := range imgs {
		s := sha256.Sum256(b)
		e, err := before.Fetch(ctx, imagecache.Request{URL: fmt.Sprintf("%s/%d", srv.URL, i), Want: imagecache.Digest{Algo: "sha256", Hex: hex.EncodeToString(s[:])}})
		require.NoError(t, err)
		keys = append(keys, e.Key)
	}
	for i, state := range []fsm.State{fsm.DeployWait, fsm.Active} {
		n := &store.Node{UUID: uuid.NewString(), Driver: "fake-hardware", CreatedAt: time.Now(), ProvisionState: string(state), DriverInternalInfo: map[string]any{
			keyImageToken: strings.Repeat("0", 64), keyImageCache: map[string]any{"key": keys[i], "name": "d", "run": "r1"}, agentdeploy.KeyRun: "r1"}}
		n.Normalize()
		require.NoError(t, st.CreateNode(ctx, n))
	}
	after, err := imagecache.New(imagecache.Config{Dir: dir, MaxBytes: 2000}, quietLog())
	require.NoError(t, err)
	k, err := RestoreHolds(ctx, st, after)
	require.NoError(t, err)
	assert.Equal(t, 1, k, "only the deploying node's image is held")
	// A third image needs room: the free one (of the active node) goes, the held one stays.
	c := bytes.Repeat([]byte("c"), 1000)
	imgs = append(imgs, c)
	s := sha256.Sum256(c)
	_, err = after.Fetch(ctx, imagecache.Request{URL: srv.URL + "/2", Want: imagecache.Digest{Algo: "sha256", Hex: hex.EncodeToString(s[:])}})
	require.NoError(t, err)
	_, err = os.Stat(filepath.Join(dir, keys[0]))
	assert.NoError(t, err, "the held image stays")
	_, err = os.Stat(filepath.Join(dir, keys[1]))
	assert.ErrorIs(t, err, os.ErrNotExist, "the free image was evicted")
}
