package hostdeploy_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/nodes"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/conductor"
	"github.com/ferric-metal/ferric/test/diskimagetest"
)

// TestDirectDeployLocalSource deploys a whole-disk image with image_download_source=local through a real agent onto
// a loop device. The image server wants an Authorization header (image_request_authorization_secret) and answers
// exactly one request: the conductor's, at the core deploy step. It is then stopped, before the agent boots, so
// the deploy can only succeed if the agent read the image from the conductor's /images/ endpoint. A second node
// then deploys the same image with the server gone: the conductor's master copy is reused.
func TestDirectDeployLocalSource(t *testing.T) {
	cacheDir := t.TempDir()
	r := newRig(t, func(cfg *conductor.Config) {
		cfg.ArtifactAllow = []string{"127.0.0.1"} // the image server is on loopback
		cfg.ImageCacheDir = cacheDir
	})
	img := make([]byte, 8<<20)
	_, err := rand.Read(img)
	require.NoError(t, err)
	s := sha256.Sum256(img)
	sum := hex.EncodeToString(s[:])

	var (
		gets     atomic.Int32
		stopOnce sync.Once
		srv      *httptest.Server
	)
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if gets.Add(1) > 1 {
			http.Error(w, "the image server is gone", http.StatusGone)
			return
		}
		if req.Header.Get("Authorization") != "Bearer img-secret" {
			http.Error(w, "no credentials", http.StatusUnauthorized)
			return
		}
		http.ServeContent(w, req, "disk.raw", time.Time{}, bytes.NewReader(img))
		stopOnce.Do(func() { go srv.Close() }) // returns once this response is done
	}))
	defer stopOnce.Do(srv.Close)

	deployOn := func(name string) (*nodes.Node, string) {
		dev, file := loop(t, 64<<20)
		n := r.enroll(t, name, dev, nil)
		_, err := nodes.Update(context.Background(), r.cl, n.UUID, nodes.UpdateOpts{nodes.UpdateOperation{Op: nodes.ReplaceOp,
			Path: "/deploy_interface", Value: "direct"}}).Extract()
		require.NoError(t, err)
		r.deploy(t, n.UUID, srv.URL+"/os/disk.raw", nodes.TargetActive, map[string]any{"image_checksum": sum,
			"image_download_source": "local", "image_request_authorization_secret": "Bearer img-secret"}, nil)
		got := r.wait(t, n.UUID, "active", 3*time.Minute)
		requireHead(t, file, img)
		return got, r.logText(t, n.UUID)
	}

	got, text := deployOn("local-a")
	assert.Equal(t, int32(1), gets.Load(), "only the conductor asked the image server")
	assert.Contains(t, text, "image_download_source local: the conductor caches "+srv.URL+"/os/disk.raw")
	assert.Contains(t, text, "the agent downloads it from the conductor")
	assert.NotContains(t, text, "img-secret")
	assert.Contains(t, text, "/images/"+got.UUID+"/<token>/disk.raw", "the agent downloaded from the conductor")
	assert.NotRegexp(t, regexp.MustCompile(`/images/[^/]+/[0-9a-f]{64}/`), text, "the token never reaches the deploy log")
	rec, _ := got.DriverInternalInfo["direct_installed"].(map[string]any)
	assert.Equal(t, map[string]any{"algo": "sha256", "value": sum, "field": "image_checksum", "prefixed": false}, rec["checksum"])
	assert.NotContains(t, got.DriverInternalInfo, "direct_image_token", "the download grant ends with the write")
	_, err = os.Stat(filepath.Join(cacheDir, "sha256-"+sum))
	require.NoError(t, err, "the master copy stays cached")

	_, text = deployOn("local-b")
	assert.Contains(t, text, "already cached")
	assert.Equal(t, int32(1), gets.Load(), "the second deploy never asked the image server")
}

// TestDirectDeployLocalQCOW2: a qcow2 image through image_download_source local. The agent's qemu-img reads the
// image from the conductor's /images/ URL itself (HEAD and Range requests through its curl driver), so this
// proves the endpoint serves what qemu-img needs; the device then holds the raw bytes.
func TestDirectDeployLocalQCOW2(t *testing.T) {
	r := newRig(t, func(cfg *conductor.Config) {
		cfg.ArtifactAllow = []string{"127.0.0.1"}
		cfg.ImageCacheDir = t.TempDir()
		cfg.ImageDownloadSource = "local" // the flag's default this time, not instance_info
	})
	dir := t.TempDir()
	raw := make([]byte, 8<<20)
	_, err := rand.Read(raw)
	require.NoError(t, err)
	rawPath := filepath.Join(dir, "disk.raw")
	require.NoError(t, os.WriteFile(rawPath, raw, 0o600))
	qcow := diskimagetest.QCOW2(t, rawPath, "disk.qcow2")
	img, err := os.ReadFile(qcow)
	require.NoError(t, err)
	s := sha256.Sum256(img)
	var gets atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if gets.Add(1) > 1 {
			http.Error(w, "only the conductor may download", http.StatusGone)
			return
		}
		http.ServeContent(w, req, "disk.qcow2", time.Time{}, bytes.NewReader(img))
	}))
	defer srv.Close()

	dev, file := loop(t, 64<<20)
	n := r.enroll(t, "local-q", dev, nil)
	_, err = nodes.Update(context.Background(), r.cl, n.UUID, nodes.UpdateOpts{nodes.UpdateOperation{Op: nodes.ReplaceOp,
		Path: "/deploy_interface", Value: "direct"}}).Extract()
	require.NoError(t, err)
	r.deploy(t, n.UUID, srv.URL+"/disk.qcow2", nodes.TargetActive, map[string]any{"image_checksum": hex.EncodeToString(s[:]),
		"image_disk_format": "qcow2"}, nil)
	got := r.wait(t, n.UUID, "active", 3*time.Minute)
	assert.Equal(t, int32(1), gets.Load(), "only the conductor asked the image server")
	rec, _ := got.DriverInternalInfo["direct_installed"].(map[string]any)
	assert.Equal(t, "qcow2", rec["format"])
	requireHead(t, file, raw)
}
