package bootchost

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// booted is a status as bootc 1.16 prints it for a host booted from quay.io/x/y:v1 with v2 staged.
const booted = `{"apiVersion":"org.containers.bootc/v1","kind":"BootcHost","metadata":{"name":"host"},
 "spec":{"image":{"image":"quay.io/x/y:v1","transport":"registry"},"bootOrder":"default"},
 "status":{"staged":{"image":{"image":{"image":"quay.io/x/y:v1","transport":"registry"},"version":"2",
   "timestamp":null,"imageDigest":"sha256:bb","architecture":"amd64"},"cachedUpdate":null,"incompatible":false,
   "pinned":false,"softRebootCapable":false,"downloadOnly":false,"store":"ostreeContainer",
   "ostree":{"stateroot":"default","checksum":"c2","deploySerial":0}},
  "booted":{"image":{"image":{"image":"quay.io/x/y:v1","transport":"registry","signature":"insecure"},"version":"1",
   "timestamp":"2026-11-30T10:00:00Z","imageDigest":"sha256:aa","architecture":"amd64"},"cachedUpdate":null,
   "incompatible":true,"pinned":false,"softRebootCapable":false,"downloadOnly":false,"store":"ostreeContainer",
   "ostree":{"stateroot":"default","checksum":"c1","deploySerial":0}},
  "rollback":null,"rollbackQueued":false,"type":"bootcHost"}}`

func TestParse(t *testing.T) {
	h, err := Parse([]byte(booted))
	require.NoError(t, err)
	assert.True(t, h.IsBootc())
	ref, dig := h.BootedImage()
	assert.Equal(t, "quay.io/x/y:v1", ref)
	assert.Equal(t, "sha256:aa", dig)
	_, dig = h.StagedImage()
	assert.Equal(t, "sha256:bb", dig)
	ref, dig = h.RollbackImage()
	assert.Empty(t, ref+dig)
	assert.True(t, h.Status.Booted.Incompatible)
	assert.JSONEq(t, `"insecure"`, string(h.Status.Booted.Image.Image.Signature))

	for name, tc := range map[string]struct{ doc, want string }{
		"v1alpha1 is read": {`{"apiVersion":"org.containers.bootc/v1alpha1","kind":"BootcHost","status":{"booted":null}}`, ""},
		"not json":         {`apiVersion: org.containers.bootc/v1`, "not JSON"},
		"wrong apiVersion": {`{"apiVersion":"v2","kind":"BootcHost"}`, `apiVersion "v2"`},
		"wrong kind":       {`{"apiVersion":"org.containers.bootc/v1","kind":"Pod"}`, `kind "Pod"`},
	} {
		t.Run(name, func(t *testing.T) {
			h, err := Parse([]byte(tc.doc))
			if tc.want == "" {
				require.NoError(t, err)
				assert.False(t, h.IsBootc())
				return
			}
			require.ErrorIs(t, err, ErrInvalid)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}
