package hostdeploy_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/nodes"
	"github.com/klauspost/compress/zstd"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/conductor"
)

// TestDirectDeploy deploys whole-disk images with the direct interface through a real agent onto a loop device:
// a raw and a zstd-compressed raw image served over http with their sha256 (the sum of the file served, as
// Ironic's), then the same image with a wrong sum, which fails the deploy naming both sums. It needs the agent's
// write_image deploy step (issue 14): until that lands the agent does not offer the step and the deploy fails
// with the conductor's "the agent does not offer deploy step deploy.write_image" message.
func TestDirectDeploy(t *testing.T) {
	r := newRig(t, func(cfg *conductor.Config) { cfg.ArtifactAllow = []string{"127.0.0.1"} })
	img := make([]byte, 8<<20)
	_, err := rand.Read(img)
	require.NoError(t, err)
	var zst bytes.Buffer
	zw, err := zstd.NewWriter(&zst)
	require.NoError(t, err)
	_, err = zw.Write(img)
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	files := map[string][]byte{"/disk.raw": img, "/disk.raw.zst": zst.Bytes()}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, ok := files[req.URL.Path]
		if !ok {
			http.NotFound(w, req)
			return
		}
		http.ServeContent(w, req, req.URL.Path, time.Time{}, bytes.NewReader(b))
	}))
	defer srv.Close()
	sum := func(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

	for _, tc := range []struct {
		name, path, checksum, wantErr string
	}{
		{"raw", "/disk.raw", sum(img), ""},
		{"zstd raw", "/disk.raw.zst", sum(zst.Bytes()), ""},
		{"bad checksum", "/disk.raw", sum([]byte("not the image")), sum([]byte("not the image"))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dev, file := loop(t, 64<<20)
			n := r.enroll(t, "direct-"+tc.name[:3], dev, nil)
			ctx := context.Background()
			_, err := nodes.Update(ctx, r.cl, n.UUID, nodes.UpdateOpts{nodes.UpdateOperation{Op: nodes.ReplaceOp,
				Path: "/deploy_interface", Value: "direct"}}).Extract()
			require.NoError(t, err)
			r.deploy(t, n.UUID, srv.URL+tc.path, nodes.TargetActive, map[string]any{"image_checksum": tc.checksum}, nil)
			if tc.wantErr != "" {
				got := r.wait(t, n.UUID, "deploy failed", 3*time.Minute)
				assert.Contains(t, got.LastError, tc.wantErr, "last_error names the expected sum")
				assert.Contains(t, got.LastError, sum(img), "last_error names the image's actual sum")
				assert.Equal(t, "power off", got.PowerState)
				return
			}
			got := r.wait(t, n.UUID, "active", 3*time.Minute)
			rec, ok := got.DriverInternalInfo["direct_installed"].(map[string]any)
			require.True(t, ok, "driver_internal_info.direct_installed: %v", got.DriverInternalInfo)
			assert.Equal(t, dev, rec["device"])
			f, err := os.Open(file)
			require.NoError(t, err)
			defer f.Close()
			head := make([]byte, len(img))
			_, err = io.ReadFull(f, head)
			require.NoError(t, err)
			require.True(t, bytes.Equal(img, head), "the device holds the image's bytes (%s)", fmt.Sprint(rec))
		})
	}
}
