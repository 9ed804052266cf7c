package api

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestRescuePasswordMasked: instance_info's hashed_rescue_password (and the clear rescue_password an older
// conductor stored) show as "******", as Ironic's mask_dict_password shows them. A regression guard: the masking
// of every key holding "password" already covered them before agent rescue existed.
func TestRescuePasswordMasked(t *testing.T) {
	got := maskSecrets(map[string]any{"hashed_rescue_password": "$6$salt$hash", "rescue_password": "pw",
		"image_source": "oci://quay.io/org/os:1"})
	assert.Equal(t, map[string]any{"hashed_rescue_password": "******", "rescue_password": "******",
		"image_source": "oci://quay.io/org/os:1"}, got)
}
