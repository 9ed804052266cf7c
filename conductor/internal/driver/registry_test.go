package driver

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// TestResolveInterfaces: unset interfaces take the hardware type's defaults; a set one must be enabled for the
// type, except on fake-hardware, which (as Ironic's driver factory special-cases it) takes any interface another
// hardware type enables, so a fake node can use redfish power against a simulated BMC. An interface no type
// enables is refused on both, naming the field and the valid choices.
func TestResolveInterfaces(t *testing.T) {
	r := NewRegistry()
	r.AddHardware(FakeHardware([]string{"bootc"}, nil))
	r.AddHardware(NewHardwareType("redfish", []string{"bootc"}, []string{"ipxe"}))
	tests := []struct {
		name    string
		driver  string
		set     map[string]string
		want    map[string]string
		wantErr string
	}{
		{name: "defaults", driver: "fake-hardware", want: map[string]string{"power": "fake", "boot": "fake", "network": "noop"}},
		{name: "fake-hardware with another type's power and management", driver: "fake-hardware",
			set:  map[string]string{"power": "redfish", "management": "redfish", "deploy": "bootc"},
			want: map[string]string{"power": "redfish", "management": "redfish", "boot": "fake", "deploy": "bootc"}},
		{name: "fake-hardware with an interface nobody enables", driver: "fake-hardware",
			set: map[string]string{"power": "ipmi"}, wantErr: `power_interface "ipmi" is not enabled for driver fake-hardware; valid interfaces are: fake, redfish`},
		{name: "a real type stays strict", driver: "redfish", set: map[string]string{"power": "fake"},
			wantErr: `power_interface "fake" is not enabled for driver redfish; valid interfaces are: redfish`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := &store.Node{Driver: tc.driver, Interfaces: map[string]string{}}
			for k, v := range tc.set {
				n.Interfaces[k] = v
			}
			err := r.ResolveInterfaces(n)
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.wantErr)
				assert.ErrorIs(t, err, ErrInvalid)
				return
			}
			require.NoError(t, err)
			for k, v := range tc.want {
				assert.Equal(t, v, n.Interfaces[k], k)
			}
		})
	}
}
