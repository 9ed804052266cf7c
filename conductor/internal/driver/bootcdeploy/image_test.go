package bootcdeploy

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/driver/agentdeploy"
	"github.com/ferric-metal/ferric/conductor/internal/driver/autodetect"
	"github.com/ferric-metal/ferric/conductor/internal/store"
	"github.com/ferric-metal/ferric/test/bootcimage"
	"github.com/ferric-metal/ferric/test/diskimagetest"
	"github.com/ferric-metal/ferric/test/registrytest"
)

// TestSupportsDeploy: bootc claims an oci:// container image (recording the pin and its labels) and declines a
// disk-image artifact and an http(s) image; a registry that refuses the node's credentials is "cannot tell".
func TestSupportsDeploy(t *testing.T) {
	reg := registrytest.Start(t, registrytest.WithBasicAuth("u", "p"))
	digest := bootcimage.Push(t, reg.Host, "os", "v1", bootcimage.Options{Username: "u", Password: "p"})
	raw := filepath.Join(t.TempDir(), "disk.raw")
	require.NoError(t, os.WriteFile(raw, make([]byte, 1<<20), 0o600))
	art := diskimagetest.PushArtifact(t, reg.Host, "disk", "v1", diskimagetest.Auth("u", "p"), diskimagetest.Artifact{File: raw, DiskType: "raw"})
	d := New(Config{Registry: agentdeploy.Registry{Insecure: []string{reg.Host}}})
	for _, tc := range []struct {
		name, src, secret string
		supported         bool
		reason, err       string
	}{
		{"container image", "oci://" + reg.Host + "/os:v1", "u:p", true, "is a container image", ""},
		{"disk artifact", "oci://" + reg.Host + "/disk:v1", "u:p", false, "is a disk image artifact (blob " + art.Blob, ""},
		{"http image", "http://example.test/os.qcow2", "", false, "image_source is not one", ""},
		{"credentials refused", "oci://" + reg.Host + "/os:v1", "u:wrong", false, "", "refused credentials"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := &store.Node{UUID: "n1", InstanceInfo: map[string]any{"image_source": tc.src, "image_pull_secret": tc.secret}}
			det, err := d.SupportsDeploy(context.Background(), &driver.Task{Node: n, Log: quietLog()})
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.supported, det.Supported)
			assert.Contains(t, det.Reason, tc.reason)
			if tc.supported {
				assert.Equal(t, digest, det.Record["digest"])
				assert.Equal(t, reg.Host+"/os@"+digest, det.Record["pinned"])
				assert.Equal(t, map[string]any{"containers.bootc": "1", "ostree.bootable": "1"}, det.Record["labels"])
			}
		})
	}
}

// TestImageUsesDetection: the core step installs the digest autodetect judged, without asking the registry again,
// once; without autodetect's record (or for another image) it asks, and a disk artifact is refused naming direct.
func TestImageUsesDetection(t *testing.T) {
	reg := registrytest.Start(t)
	digest := bootcimage.Push(t, reg.Host, "os", "v1", bootcimage.Options{})
	raw := filepath.Join(t.TempDir(), "disk.raw")
	require.NoError(t, os.WriteFile(raw, make([]byte, 1<<20), 0o600))
	diskimagetest.PushArtifact(t, reg.Host, "disk", "v1", diskimagetest.Auth("", ""), diskimagetest.Artifact{File: raw, DiskType: "raw"})
	d := New(Config{Registry: agentdeploy.Registry{Insecure: []string{reg.Host}}})
	src := "oci://" + reg.Host + "/os:v1"
	n := &store.Node{UUID: "n1", InstanceInfo: map[string]any{"image_source": src}, DriverInternalInfo: map[string]any{}}
	task := &driver.Task{Node: n, Log: quietLog()}
	det, err := d.SupportsDeploy(context.Background(), task)
	require.NoError(t, err)
	rec := map[string]any{"interface": "bootc", "operation": "deploy"}
	for k, v := range det.Record {
		rec[k] = v
	}
	n.DriverInternalInfo[autodetect.KeyRecord], n.DriverInternalInfo[autodetect.KeyOriginal] = rec, autodetect.Name

	before := reg.Requests()
	im, err := d.image(context.Background(), task, src)
	require.NoError(t, err)
	assert.Equal(t, before, reg.Requests(), "the registry is not asked again")
	assert.Equal(t, digest, im.Digest)
	assert.Equal(t, reg.Host+"/os@"+digest, im.Pinned())
	assert.Equal(t, "1", im.Labels["containers.bootc"])
	assert.NotContains(t, rec, "pinned", "the detection is used once")

	im, err = d.image(context.Background(), task, src)
	require.NoError(t, err)
	assert.Greater(t, reg.Requests(), before, "a second deploy asks the registry")
	assert.Equal(t, digest, im.Digest)

	_, err = d.image(context.Background(), task, "oci://"+reg.Host+"/disk:v1")
	require.ErrorContains(t, err, "is a disk image artifact")
	require.ErrorContains(t, err, "direct deploy interface")
}
