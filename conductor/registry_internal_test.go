package conductor

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRescueInterfacesPerHardware: the conductor's registry offers agent rescue on every hardware type, with
// Ironic's defaults (enabled_rescue_interfaces defaults to no-rescue; fake-hardware's fake comes first).
func TestRescueInterfacesPerHardware(t *testing.T) {
	reg := buildRegistry(Config{}, nil, nil, nil, nil, nil, nil, nil, "", nil)
	for _, tc := range []struct {
		hw, def string
		enabled []string
	}{
		{"fake-hardware", "fake", []string{"fake", "no-rescue", "agent"}},
		{"redfish", "no-rescue", []string{"no-rescue", "agent"}},
		{"ipmi", "no-rescue", []string{"no-rescue", "agent"}},
	} {
		h, err := reg.Hardware(tc.hw)
		require.NoError(t, err)
		assert.Equal(t, tc.def, h.Defaults["rescue"], tc.hw)
		assert.Equal(t, tc.enabled, h.Enabled["rescue"], tc.hw)
	}
}
