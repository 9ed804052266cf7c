package images_test

import (
	"context"
	"encoding/base64"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/images"
	"github.com/ferric-metal/ferric/test/bootcimage"
	"github.com/ferric-metal/ferric/test/registrytest"
)

func TestParsePullSecret(t *testing.T) {
	auth := base64.StdEncoding.EncodeToString([]byte("robot:p@ss:word"))
	tests := []struct {
		in   string
		want *images.Credentials
	}{
		{"", nil},
		{"robot:secret", &images.Credentials{Username: "robot", Password: "secret"}},
		{auth, &images.Credentials{Username: "robot", Password: "p@ss:word"}},
		{"ghp_tokenWithoutColon", &images.Credentials{Password: "ghp_tokenWithoutColon"}},
	}
	for _, tc := range tests {
		got, err := images.ParsePullSecret(tc.in)
		require.NoError(t, err)
		assert.Equal(t, tc.want, got, tc.in)
	}
	// Ironic's transport form is base64 of the secret.
	got, err := images.DecodeTransportSecret(images.EncodeTransportSecret(auth))
	require.NoError(t, err)
	assert.Equal(t, "p@ss:word", got.Password)
	_, err = images.DecodeTransportSecret("not base64!")
	assert.ErrorIs(t, err, images.ErrInvalid)
}

func TestResolve(t *testing.T) {
	reg := registrytest.Start(t, registrytest.WithBasicAuth("u", "p"))
	digest := bootcimage.Push(t, reg.Host, "org/os", "v1", bootcimage.Options{Marker: "x", Username: "u", Password: "p"})
	ref, err := images.Parse("oci://"+reg.Host+"/org/os:v1", true)
	require.NoError(t, err)
	assert.Equal(t, "v1", ref.Tag)
	res, err := images.Resolve(context.Background(), ref, images.ResolveOptions{Creds: &images.Credentials{Username: "u", Password: "p"}})
	require.NoError(t, err)
	assert.Equal(t, digest, res.Digest)
	assert.Equal(t, reg.Host+"/org/os@"+digest, res.Pinned)
	assert.Equal(t, 1, res.Layers)
	assert.Equal(t, res.CompressedBytes*images.UnpackRatio, res.EstimatedUnpackedBytes)

	_, err = images.Resolve(context.Background(), ref, images.ResolveOptions{Creds: &images.Credentials{Username: "u", Password: "wrong"}})
	assert.ErrorIs(t, err, images.ErrUnauthorized)
	assert.Contains(t, err.Error(), "check image_pull_secret")
	missing, _ := images.Parse("oci://"+reg.Host+"/org/none:v1", true)
	_, err = images.Resolve(context.Background(), missing, images.ResolveOptions{Creds: &images.Credentials{Username: "u", Password: "p"}})
	assert.ErrorIs(t, err, images.ErrNotFound)
	_, err = images.Parse("oci://UPPER/Case:bad tag", false)
	assert.ErrorIs(t, err, images.ErrInvalid)
}

func TestPlatformForCPUArch(t *testing.T) {
	tests := []struct {
		cpuArch string
		want    string
		wantErr bool
	}{
		{"", "linux/amd64", false}, // no cpu_arch: x86_64, as before Ferric read it
		{"x86_64", "linux/amd64", false},
		{"amd64", "linux/amd64", false},
		{"aarch64", "linux/arm64", false},
		{"arm64", "linux/arm64", false},
		{"ppc64le", "linux/ppc64le", false},
		{"s390x", "linux/s390x", false},
		{" AARCH64 ", "linux/arm64", false},
		{"i686", "", true},
		{"ppc64", "", true},
		{"riscv64", "", true},
		{"linux/arm64", "", true},
	}
	for _, tc := range tests {
		t.Run(tc.cpuArch, func(t *testing.T) {
			got, err := images.PlatformForCPUArch(tc.cpuArch)
			if tc.wantErr {
				require.ErrorIs(t, err, images.ErrPlatform)
				assert.Contains(t, err.Error(), "properties.cpu_arch")
				assert.Contains(t, err.Error(), "aarch64")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
	assert.Equal(t, "arm64", images.PlatformArch("linux/arm64/v8"))
	assert.Equal(t, "amd64", images.PlatformArch(images.DefaultPlatform))
}

// pushIndex pushes a multi-platform index of the test image (one manifest per platform, each with its own config
// architecture and marker) plus an attestation-style unknown/unknown entry, and returns each platform's digest.
func pushIndex(t *testing.T, host, repo, tag string, platforms ...v1.Platform) map[string]string {
	t.Helper()
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	digests := map[string]string{}
	for _, p := range platforms {
		img := bootcimage.Image(t, bootcimage.Options{WithoutBootc: true, Marker: p.String()})
		cf, err := img.ConfigFile()
		require.NoError(t, err)
		cf = cf.DeepCopy()
		cf.OS, cf.Architecture, cf.Variant = p.OS, p.Architecture, p.Variant
		img, err = mutate.ConfigFile(img, cf)
		require.NoError(t, err)
		d, err := img.Digest()
		require.NoError(t, err)
		digests[p.String()] = d.String()
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &p}})
	}
	att := bootcimage.Image(t, bootcimage.Options{WithoutBootc: true, Marker: "attestation"})
	idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: att, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "unknown", Architecture: "unknown"}}})
	ref, err := name.ParseReference(host+"/"+repo+":"+tag, name.Insecure)
	require.NoError(t, err)
	require.NoError(t, remote.WriteIndex(ref, idx, remote.WithAuth(authn.Anonymous)))
	return digests
}

func TestResolvePlatform(t *testing.T) {
	reg := registrytest.Start(t)
	digests := pushIndex(t, reg.Host, "org/multi", "v1",
		v1.Platform{OS: "linux", Architecture: "amd64"}, v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"})
	require.NotEqual(t, digests["linux/amd64"], digests["linux/arm64/v8"])
	ref, err := images.Parse("oci://"+reg.Host+"/org/multi:v1", true)
	require.NoError(t, err)
	ctx := context.Background()

	tests := []struct {
		platform   string
		wantDigest string
		wantErr    string
	}{
		{"linux/amd64", digests["linux/amd64"], ""},
		{"", digests["linux/amd64"], ""}, // no platform: DefaultPlatform, today's behaviour
		{"linux/arm64", digests["linux/arm64/v8"], ""},
		{"linux/arm64/v8", digests["linux/arm64/v8"], ""},
		{"linux/s390x", "", "has no linux/s390x manifest (it has: linux/amd64, linux/arm64/v8)"},
		{"linux/arm64/v7", "", "has no linux/arm64/v7 manifest"},
		{"arm64", "", "is not os/arch"},
	}
	for _, tc := range tests {
		t.Run(tc.platform, func(t *testing.T) {
			res, err := images.Resolve(ctx, ref, images.ResolveOptions{Platform: tc.platform})
			if tc.wantErr != "" {
				require.ErrorIs(t, err, images.ErrPlatform)
				assert.Contains(t, err.Error(), tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.wantDigest, res.Digest)
			assert.Equal(t, reg.Host+"/org/multi@"+tc.wantDigest, res.Pinned, "the pinned digest is the platform's manifest")
			assert.Equal(t, 1, res.Layers)
		})
	}

	// A single-platform image is only accepted for its own platform.
	single := bootcimage.Push(t, reg.Host, "org/single", "v1", bootcimage.Options{WithoutBootc: true})
	sref, err := images.Parse("oci://"+reg.Host+"/org/single:v1", true)
	require.NoError(t, err)
	res, err := images.Resolve(ctx, sref, images.ResolveOptions{Platform: "linux/amd64"})
	require.NoError(t, err)
	assert.Equal(t, single, res.Digest)
	_, err = images.Resolve(ctx, sref, images.ResolveOptions{Platform: "linux/arm64"})
	require.ErrorIs(t, err, images.ErrPlatform)
	assert.Contains(t, err.Error(), "built for linux/amd64 only but the node needs linux/arm64")
}
