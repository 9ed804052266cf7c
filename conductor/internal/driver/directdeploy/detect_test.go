package directdeploy

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/driver/autodetect"
)

// TestSupportsDeploy: direct claims http(s) images and oci:// disk artifacts, declines a bootable container image
// (bootc's) and a qcow2 artifact behind credentials the agent cannot hand to qemu-img, and cannot tell when the
// registry refuses the node's credentials.
func TestSupportsDeploy(t *testing.T) {
	r := newOCIRegistry(t)
	d := New(r.cfg)
	oci := func(repo string) string { return "oci://" + r.reg.Host + "/" + repo + ":v1" }
	for _, tc := range []struct {
		name, src, secret string
		supported         bool
		reason, err       string
	}{
		{"https image", "https://images.test/os.qcow2", "", true, "http(s) URL", ""},
		{"zstd disk artifact", oci("org/disk"), "u:p", true, "is a disk image artifact (manifest " + r.zstd.Manifest, ""},
		{"bootable container", oci("org/os"), "u:p", false, "is a bootable container image", ""},
		{"qcow2 behind credentials", oci("org/qcow2"), "u:p", false, "cannot hand registry credentials to qemu-img", ""},
		{"not a URL", "file:///srv/os.raw", "", false, "is neither", ""},
		{"credentials refused", oci("org/disk"), "u:wrong", false, "", "refused credentials"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			det, err := d.SupportsDeploy(context.Background(), r.task(map[string]any{"image_source": tc.src, "image_pull_secret": tc.secret}))
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.supported, det.Supported, det.Reason)
			assert.Contains(t, det.Reason, tc.reason)
			if tc.supported && tc.src != "https://images.test/os.qcow2" {
				assert.Equal(t, r.zstd.Blob, det.Record["blob"])
			}
		})
	}
}

// TestIdentifyUsesDetection: within one autodetect choice (a driver memo) the registry is asked once however many
// times the artifact is identified; the core step then writes the blob autodetect judged without asking again, once,
// and a later deploy asks afresh.
func TestIdentifyUsesDetection(t *testing.T) {
	r := newOCIRegistry(t)
	src := "oci://" + r.reg.Host + "/org/disk:v1"
	task := r.task(map[string]any{"image_source": src, "image_pull_secret": "u:p"})
	n := task.Node

	ctx := driver.WithMemo(context.Background())
	before := r.reg.Requests()
	det, err := d(r).SupportsDeploy(ctx, task)
	require.NoError(t, err)
	require.True(t, det.Supported, det.Reason)
	asked := r.reg.Requests() - before
	require.Positive(t, asked)
	_, err = d(r).cfg.Identify(ctx, n, src, false)
	require.NoError(t, err)
	assert.Equal(t, asked, r.reg.Requests()-before, "a second identification in the same choice is not asked again")

	rec := map[string]any{"interface": "direct", "operation": "deploy"}
	for k, v := range det.Record {
		rec[k] = v
	}
	n.DriverInternalInfo[autodetect.KeyRecord], n.DriverInternalInfo[autodetect.KeyOriginal] = rec, autodetect.Name
	before = r.reg.Requests()
	require.NoError(t, d(r).identifyOCI(context.Background(), task, src))
	assert.Equal(t, before, r.reg.Requests(), "the core step uses autodetect's identification")
	assert.Equal(t, r.zstd.Blob, n.DriverInternalInfo[keyOCI].(map[string]any)["blob"])
	assert.NotContains(t, rec, "oci", "the identification serves one deploy")

	require.NoError(t, d(r).identifyOCI(context.Background(), task, src))
	assert.Greater(t, r.reg.Requests(), before, "a later deploy asks the registry")
	assert.Equal(t, r.zstd.Blob, n.DriverInternalInfo[keyOCI].(map[string]any)["blob"])
}

func d(r *ociRegistry) *Deploy { return New(r.cfg) }
