package images_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/images"
	"github.com/ferric-metal/ferric/test/bootcimage"
	"github.com/ferric-metal/ferric/test/certtest"
	"github.com/ferric-metal/ferric/test/diskimagetest"
	"github.com/ferric-metal/ferric/test/registrytest"
)

// identifyRegistry is a TLS registry with basic auth, the options that reach it, and small disk files to push.
type identifyRegistry struct {
	reg                     *registrytest.Registry
	opts                    images.ResolveOptions
	raw, qcow2, zst, second string
}

func newIdentifyRegistry(t *testing.T) *identifyRegistry {
	pair := certtest.SelfSigned(t, certtest.Options{CN: "registry-ca", IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	reg := registrytest.Start(t, registrytest.WithBasicAuth("u", "p"), registrytest.WithTLS(pair.TLS))
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
		return p
	}
	r := &identifyRegistry{reg: reg, opts: images.ResolveOptions{Creds: &images.Credentials{Username: "u", Password: "p"},
		Trust: images.Trust{RegistryCAs: map[string]string{reg.Host: string(pair.CertPEM)}}},
		raw: write("disk.raw", "raw disk bytes"), qcow2: write("disk.qcow2", "QFI\xfb qcow2 bytes"),
		second: write("other.raw", "another raw disk")}
	r.zst = diskimagetest.Compress(t, r.raw, "zstd")
	return r
}

func (r *identifyRegistry) ref(t *testing.T, repo string) images.Ref {
	ref, err := images.Parse("oci://"+r.reg.Host+"/"+repo, false)
	require.NoError(t, err)
	return ref
}

var auth = diskimagetest.Auth("u", "p")

// TestIdentifyBootc: a bootc image is a container image with its labels recorded and Resolve's pin and sizes; a
// plain container image without labels is one too (upstream's rule: labels confirm, their absence does not refuse).
func TestIdentifyBootc(t *testing.T) {
	r := newIdentifyRegistry(t)
	ctx := context.Background()
	digest := bootcimage.Push(t, r.reg.PlainHost, "org/os", "v1", bootcimage.Options{Marker: "id", Username: "u", Password: "p"})
	ref := r.ref(t, "org/os:v1")
	id, err := images.Identify(ctx, ref, images.IdentifyOptions{ResolveOptions: r.opts})
	require.NoError(t, err)
	assert.Equal(t, images.KindBootc, id.Kind)
	assert.Equal(t, map[string]string{"containers.bootc": "1", "ostree.bootable": "1"}, id.Labels)
	res, err := images.Resolve(ctx, ref, r.opts)
	require.NoError(t, err)
	assert.Equal(t, *res, id.Resolved, "the pin, layers and sizes are Resolve's")
	assert.Equal(t, digest, id.Digest)
	assert.Empty(t, id.Blob)

	// A container image with no labels at all.
	img := bootcimage.Image(t, bootcimage.Options{WithoutBootc: true, Marker: "plain"})
	cf, err := img.ConfigFile()
	require.NoError(t, err)
	cf = cf.DeepCopy()
	cf.Config.Labels = nil
	img, err = mutate.ConfigFile(img, cf)
	require.NoError(t, err)
	plain, err := name.ParseReference(r.reg.PlainHost+"/org/plain:v1", name.Insecure)
	require.NoError(t, err)
	require.NoError(t, remote.Write(plain, img, remote.WithAuth(auth)))
	id, err = images.Identify(ctx, r.ref(t, "org/plain:v1"), images.IdentifyOptions{ResolveOptions: r.opts})
	require.NoError(t, err)
	assert.Equal(t, images.KindBootc, id.Kind)
	assert.Empty(t, id.Labels)
	d, _ := img.Digest()
	assert.Equal(t, d.String(), id.Digest)

	// Its platform is checked as Resolve checks it.
	o := r.opts
	o.Platform = "linux/arm64"
	_, err = images.Identify(ctx, ref, images.IdentifyOptions{ResolveOptions: o})
	require.ErrorIs(t, err, images.ErrPlatform)
	assert.Contains(t, err.Error(), "built for linux/amd64 only")
}

// TestIdentifyArtifact: an ORAS-style artifact (one zstd layer, empty config) is a disk image with or without
// disktype and artifactType; without disktype its format is left to the agent.
func TestIdentifyArtifact(t *testing.T) {
	r := newIdentifyRegistry(t)
	tests := []struct {
		name       string
		art        diskimagetest.Artifact
		wantFormat string
	}{
		{"disktype raw and artifactType", diskimagetest.Artifact{File: r.zst, MediaType: diskimagetest.MediaTypeZstd, DiskType: "raw",
			ArtifactType: diskimagetest.ArtifactTypeDisk}, "raw"},
		{"no disktype, empty config only", diskimagetest.Artifact{File: r.zst, MediaType: diskimagetest.MediaTypeZstd}, ""},
		{"applehv is raw", diskimagetest.Artifact{File: r.zst, MediaType: diskimagetest.MediaTypeZstd, DiskType: "applehv"}, "raw"},
		{"qemu is qcow2", diskimagetest.Artifact{File: r.qcow2, DiskType: "qemu"}, "qcow2"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tag := "v" + string(rune('0'+i))
			p := diskimagetest.PushArtifact(t, r.reg.PlainHost, "org/disk", tag, auth, tc.art)
			id, err := images.Identify(context.Background(), r.ref(t, "org/disk:"+tag), images.IdentifyOptions{ResolveOptions: r.opts})
			require.NoError(t, err)
			assert.Equal(t, images.KindDisk, id.Kind)
			assert.Equal(t, tc.wantFormat, id.DiskFormat)
			assert.Equal(t, p.Blob, id.Blob)
			assert.Equal(t, p.BlobSize, id.BlobSize)
			assert.Equal(t, p.Manifest, id.Digest)
			assert.Equal(t, r.reg.Host+"/org/disk@"+p.Manifest, id.Pinned)
			assert.Equal(t, 1, id.Layers)
			assert.Equal(t, filepath.Base(tc.art.File), id.Filename)
			assert.Empty(t, id.Labels)
			if tc.art.MediaType == diskimagetest.MediaTypeZstd {
				assert.Equal(t, "zstd", id.Compression)
				assert.Equal(t, "application/zstd", id.MediaType)
			} else {
				assert.Empty(t, id.Compression)
			}
		})
	}
}

// TestIdentifyIndex: an index of raw and qcow2 disks for two architectures (x86_64 spelled as quay.io artifacts
// do): raw first for an agent download, qcow2 first with PreferQcow2, the node's architecture's entry always.
func TestIdentifyIndex(t *testing.T) {
	r := newIdentifyRegistry(t)
	x86 := &v1.Platform{OS: "linux", Architecture: "x86_64"}
	arm := &v1.Platform{OS: "linux", Architecture: "arm64"}
	pushed := diskimagetest.PushArtifactIndex(t, r.reg.PlainHost, "org/multi", "v1", auth,
		diskimagetest.Artifact{File: r.qcow2, DiskType: "qcow2", Platform: arm, Title: "arm.qcow2"},
		diskimagetest.Artifact{File: r.qcow2, DiskType: "qcow2", Platform: x86, Title: "x86.qcow2"},
		diskimagetest.Artifact{File: r.raw, DiskType: "raw", Platform: arm, Title: "arm.raw"},
		diskimagetest.Artifact{File: r.zst, MediaType: diskimagetest.MediaTypeZstd, DiskType: "raw", Platform: x86, Title: "x86.raw.zst"},
	)
	tests := []struct {
		platform  string
		qcow2     bool
		wantIndex int
		wantFmt   string
	}{
		{"linux/amd64", false, 3, "raw"},
		{"", false, 3, "raw"}, // DefaultPlatform
		{"linux/amd64", true, 1, "qcow2"},
		{"linux/arm64", false, 2, "raw"},
		{"linux/arm64", true, 0, "qcow2"},
	}
	for _, tc := range tests {
		t.Run(tc.platform+map[bool]string{true: " qcow2", false: ""}[tc.qcow2], func(t *testing.T) {
			o := r.opts
			o.Platform = tc.platform
			id, err := images.Identify(context.Background(), r.ref(t, "org/multi:v1"), images.IdentifyOptions{ResolveOptions: o, PreferQcow2: tc.qcow2})
			require.NoError(t, err)
			want := pushed[tc.wantIndex]
			assert.Equal(t, want.Manifest, id.Digest)
			assert.Equal(t, want.Blob, id.Blob)
			assert.Equal(t, tc.wantFmt, id.DiskFormat)
			assert.Equal(t, images.KindDisk, id.Kind)
		})
	}
	_, err := images.Identify(context.Background(), r.ref(t, "org/multi:v1"),
		images.IdentifyOptions{ResolveOptions: images.ResolveOptions{Creds: r.opts.Creds, Trust: r.opts.Trust, Platform: "linux/s390x"}})
	require.ErrorIs(t, err, images.ErrNotFound)
	require.ErrorIs(t, err, images.ErrPlatform, "every entry is for another architecture")
	assert.Contains(t, err.Error(), "for x86_64")
}

// TestIdentifyPassedOver: a multi-layer artifact is no disk image (the next candidate wins, or nothing does), an
// unknown disktype is skipped, and nothing suitable says what was found.
func TestIdentifyPassedOver(t *testing.T) {
	r := newIdentifyRegistry(t)
	ctx := context.Background()
	pushed := diskimagetest.PushArtifactIndex(t, r.reg.PlainHost, "org/mixed", "v1", auth,
		diskimagetest.Artifact{File: r.raw, DiskType: "raw", ExtraLayers: 1},
		diskimagetest.Artifact{File: r.second, DiskType: "qcow2"})
	id, err := images.Identify(ctx, r.ref(t, "org/mixed:v1"), images.IdentifyOptions{ResolveOptions: r.opts})
	require.NoError(t, err)
	assert.Equal(t, pushed[1].Manifest, id.Digest, "the raw entry has two layers: skipped")

	diskimagetest.PushArtifact(t, r.reg.PlainHost, "org/layers", "v1", auth, diskimagetest.Artifact{File: r.raw, ExtraLayers: 2})
	_, err = images.Identify(ctx, r.ref(t, "org/layers:v1"), images.IdentifyOptions{ResolveOptions: r.opts})
	require.ErrorIs(t, err, images.ErrNotFound)
	assert.NotErrorIs(t, err, images.ErrPlatform)
	assert.Contains(t, err.Error(), "3 layers (a disk image artifact has one)")

	diskimagetest.PushArtifactIndex(t, r.reg.PlainHost, "org/none", "v1", auth,
		diskimagetest.Artifact{File: r.raw, DiskType: "vmdk"},
		diskimagetest.Artifact{File: r.raw, DiskType: "raw", Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}})
	_, err = images.Identify(ctx, r.ref(t, "org/none:v1"), images.IdentifyOptions{ResolveOptions: r.opts})
	require.ErrorIs(t, err, images.ErrNotFound)
	assert.NotErrorIs(t, err, images.ErrPlatform)
	assert.Contains(t, err.Error(), `disktype "vmdk"`)
	assert.Contains(t, err.Error(), "(disktype raw): for arm64")
	assert.Contains(t, err.Error(), "holds no disk image or container image for amd64")

	_, err = images.Identify(ctx, r.ref(t, "org/absent:v1"), images.IdentifyOptions{ResolveOptions: r.opts})
	require.ErrorIs(t, err, images.ErrNotFound)
	bad := r.opts
	bad.Creds = &images.Credentials{Username: "u", Password: "wrong"}
	_, err = images.Identify(ctx, r.ref(t, "org/mixed:v1"), images.IdentifyOptions{ResolveOptions: bad})
	require.ErrorIs(t, err, images.ErrUnauthorized)
}

// TestBlobDownload: what a node does with Identify's answer — GET BlobURL with Authorization's header over TLS —
// returns the blob whose sha256 is its digest.
func TestBlobDownload(t *testing.T) {
	r := newIdentifyRegistry(t)
	p := diskimagetest.PushArtifact(t, r.reg.PlainHost, "org/disk", "v1", auth,
		diskimagetest.Artifact{File: r.zst, MediaType: diskimagetest.MediaTypeZstd, DiskType: "raw"})
	ref := r.ref(t, "org/disk:v1")
	ctx := context.Background()
	id, err := images.Identify(ctx, ref, images.IdentifyOptions{ResolveOptions: r.opts})
	require.NoError(t, err)
	url := images.BlobURL(ref, id.Blob)
	assert.Equal(t, "https://"+r.reg.Host+"/v2/org/disk/blobs/"+p.Blob, url)
	header, err := images.Authorization(ctx, ref, r.opts)
	require.NoError(t, err)
	assert.Equal(t, "Basic "+base64.StdEncoding.EncodeToString([]byte("u:p")), header)

	tr, err := r.opts.Trust.Transport(r.reg.Host)
	require.NoError(t, err)
	get := func(header string) *http.Response {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		require.NoError(t, err)
		if header != "" {
			req.Header.Set("Authorization", header)
		}
		resp, err := (&http.Client{Transport: tr}).Do(req)
		require.NoError(t, err)
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	require.Equal(t, http.StatusUnauthorized, get("").StatusCode, "the blob needs the header")
	resp := get(header)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	h := sha256.New()
	_, err = io.Copy(h, resp.Body)
	require.NoError(t, err)
	assert.Equal(t, "sha256:"+hex.EncodeToString(h.Sum(nil)), id.Blob)

	_, err = images.Authorization(ctx, ref, images.ResolveOptions{Trust: r.opts.Trust, Creds: &images.Credentials{Username: "u", Password: "no"}})
	require.ErrorIs(t, err, images.ErrUnauthorized)
	insecure, err := images.Parse("oci://"+r.reg.PlainHost+"/org/disk:v1", true)
	require.NoError(t, err)
	assert.Equal(t, "http://"+r.reg.PlainHost+"/v2/org/disk/blobs/"+p.Blob, images.BlobURL(insecure, p.Blob))
}

// TestAuthorizationBearer: a registry with a token service (as quay.io and Docker Hub) gets "Bearer <token>" after
// go-containerregistry's exchange, which sends the pull secret to the token service only; an anonymous registry
// needs no header.
func TestAuthorizationBearer(t *testing.T) {
	inner := registry.New()
	var tokenAuth string
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path == "/token" {
			tokenAuth = req.Header.Get("Authorization")
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"token":"tok-123"}`)
			return
		}
		if req.Header.Get("Authorization") != "Bearer tok-123" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="`+srv.URL+`/token",service="test"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		inner.ServeHTTP(w, req)
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	plain := httptest.NewServer(inner)
	defer plain.Close()
	bootcimage.Push(t, strings.TrimPrefix(plain.URL, "http://"), "org/os", "v1", bootcimage.Options{Marker: "bearer"})
	ref, err := images.Parse("oci://"+host+"/org/os:v1", true)
	require.NoError(t, err)
	header, err := images.Authorization(context.Background(), ref, images.ResolveOptions{Creds: &images.Credentials{Username: "u", Password: "p"}})
	require.NoError(t, err)
	assert.Equal(t, "Bearer tok-123", header)
	assert.Equal(t, "Basic "+base64.StdEncoding.EncodeToString([]byte("u:p")), tokenAuth, "the secret went to the token service")

	pref, err := images.Parse("oci://"+strings.TrimPrefix(plain.URL, "http://")+"/org/os:v1", true)
	require.NoError(t, err)
	header, err = images.Authorization(context.Background(), pref, images.ResolveOptions{})
	require.NoError(t, err)
	assert.Empty(t, header, "anonymous works: no header")
}
