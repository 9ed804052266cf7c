package agent

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/images"
)

// TestStepPlatform: Ironic's deploy step pins no platform; the agent installs for its own architecture unless the
// node's cpu_arch says otherwise, and refuses a cpu_arch it cannot map.
func TestStepPlatform(t *testing.T) {
	tests := []struct {
		name     string
		node     map[string]any
		hostArch string
		want     string
		wantErr  bool
	}{
		{"no node", nil, "arm64", "linux/arm64", false},
		{"no cpu_arch", map[string]any{"properties": map[string]any{}}, "amd64", "linux/amd64", false},
		{"cpu_arch names the platform", map[string]any{"properties": map[string]any{"cpu_arch": "aarch64"}}, "amd64", "linux/arm64", false},
		{"unknown cpu_arch", map[string]any{"properties": map[string]any{"cpu_arch": "mips"}}, "amd64", "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := stepPlatform(tc.node, tc.hostArch)
			if tc.wantErr {
				require.ErrorIs(t, err, images.ErrPlatform)
				assert.Contains(t, err.Error(), "properties.cpu_arch")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}
