package images_test

import (
	"context"
	"encoding/base64"
	"testing"

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
	res, err := images.Resolve(context.Background(), ref, &images.Credentials{Username: "u", Password: "p"}, 0)
	require.NoError(t, err)
	assert.Equal(t, digest, res.Digest)
	assert.Equal(t, reg.Host+"/org/os@"+digest, res.Pinned)
	assert.Equal(t, 1, res.Layers)
	assert.Equal(t, res.CompressedBytes*images.UnpackRatio, res.EstimatedUnpackedBytes)

	_, err = images.Resolve(context.Background(), ref, &images.Credentials{Username: "u", Password: "wrong"}, 0)
	assert.ErrorIs(t, err, images.ErrUnauthorized)
	assert.Contains(t, err.Error(), "check image_pull_secret")
	missing, _ := images.Parse("oci://"+reg.Host+"/org/none:v1", true)
	_, err = images.Resolve(context.Background(), missing, &images.Credentials{Username: "u", Password: "p"}, 0)
	assert.ErrorIs(t, err, images.ErrNotFound)
	_, err = images.Parse("oci://UPPER/Case:bad tag", false)
	assert.ErrorIs(t, err, images.ErrInvalid)
}
