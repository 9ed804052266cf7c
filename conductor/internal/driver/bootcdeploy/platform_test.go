package bootcdeploy

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/driver/agentdeploy"
	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// TestValidateCPUArch: properties.cpu_arch picks the image platform; values Ferric cannot map are refused at
// validation, before any agent boots, with the field and the accepted values named.
func TestValidateCPUArch(t *testing.T) {
	tests := []struct {
		name     string
		cpuArch  any // nil: not set
		platform string
		wantErr  string
	}{
		{"unset means x86_64", nil, "linux/amd64", ""},
		{"empty means x86_64", "", "linux/amd64", ""},
		{"x86_64", "x86_64", "linux/amd64", ""},
		{"amd64", "amd64", "linux/amd64", ""},
		{"aarch64", "aarch64", "linux/arm64", ""},
		{"arm64", "arm64", "linux/arm64", ""},
		{"ppc64le", "ppc64le", "linux/ppc64le", ""},
		{"s390x", "s390x", "linux/s390x", ""},
		{"unknown arch", "sparc64", "", `properties.cpu_arch "sparc64" is not supported: set it to x86_64`},
		{"32-bit x86", "i686", "", `properties.cpu_arch "i686" is not supported`},
		{"not a string", 64.0, "", "properties.cpu_arch must be a string"},
	}
	d := New(Config{})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := &store.Node{UUID: "0862e37f-c229-4fe3-aa45-d637b29e7b5e", Properties: map[string]any{},
				InstanceInfo: map[string]any{"image_source": "oci://registry.example/org/os:1"}, DriverInternalInfo: map[string]any{}}
			if tc.cpuArch != nil {
				n.Properties["cpu_arch"] = tc.cpuArch
			}
			err := d.Validate(context.Background(), n)
			if tc.wantErr != "" {
				require.ErrorIs(t, err, driver.ErrInvalid)
				assert.Contains(t, err.Error(), tc.wantErr)
				return
			}
			require.NoError(t, err)
			got, err := agentdeploy.NodePlatform(n)
			require.NoError(t, err)
			assert.Equal(t, tc.platform, got)
		})
	}
}

// TestInstallParamsPlatform: the agent is told the platform the pinned digest was resolved for.
func TestInstallParamsPlatform(t *testing.T) {
	n := &store.Node{UUID: "0862e37f-c229-4fe3-aa45-d637b29e7b5e", Properties: map[string]any{"cpu_arch": "aarch64"},
		InstanceInfo: map[string]any{"image_source": "oci://registry.example/org/os:1"},
		DriverInternalInfo: map[string]any{keyPinned: "registry.example/org/os@sha256:0",
			keyPlatform: "linux/arm64"}}
	p, err := New(Config{}).installParams(context.Background(), &driver.Task{Node: n})
	require.NoError(t, err)
	assert.Equal(t, "linux/arm64", p.ImagePlatform)
}
