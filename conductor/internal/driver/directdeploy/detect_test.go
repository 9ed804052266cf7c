package directdeploy

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
