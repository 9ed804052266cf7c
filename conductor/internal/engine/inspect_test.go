package engine

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// TestInspectAndRescueInterfaces: the inspect verb runs the node's inspect interface, or is refused (400) when the
// interface cannot inspect; rescue with no-rescue is refused the same way.
func TestInspectAndRescueInterfaces(t *testing.T) {
	tests := []struct {
		name, from, target string
		ifaces             map[string]string
		wantErr            string // a refusal of the request (ErrInvalidInput: 400)
		wantState          string
		wantLastError      string
	}{
		{"fake inspect -> manageable", "manageable", "inspect", map[string]string{"inspect": "fake"}, "", "manageable", ""},
		{"no-inspect refused", "manageable", "inspect", map[string]string{"inspect": "no-inspect"},
			"Driver fake-hardware does not support inspect (disabled or not implemented).", "manageable", ""},
		{"agent inspect without a store accepted, then fails clearly", "manageable", "inspect", map[string]string{"inspect": "agent"}, "",
			"inspect failed", "in-band inspection is not configured in this conductor; use the redfish inspect interface or set inspect_interface"},
		{"no-rescue refused", "active", "rescue", map[string]string{"rescue": "no-rescue"},
			"Driver fake-hardware does not support rescue (disabled or not implemented).", "active", ""},
		{"fake rescue -> rescue", "active", "rescue", map[string]string{"rescue": "fake"}, "", "rescue", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, Config{})
			driver.AddInspectRescue(f.eng.reg)
			ctx := context.Background()
			n := &store.Node{UUID: uuid.NewString(), Driver: "fake-hardware", ProvisionState: tc.from, Interfaces: tc.ifaces}
			require.NoError(t, f.eng.CreateNode(ctx, n), "every interface above is enabled on fake-hardware")

			err := f.eng.Provision(ctx, n.UUID, ProvisionRequest{Target: tc.target, RescuePassword: "pw"})
			f.eng.Wait()
			if tc.wantErr != "" {
				require.ErrorIs(t, err, ErrInvalidInput)
				assert.Contains(t, err.Error(), tc.wantErr)
			} else {
				require.NoError(t, err)
			}
			got, err := f.st.GetNode(ctx, n.UUID)
			require.NoError(t, err)
			assert.Equal(t, tc.wantState, got.ProvisionState)
			assert.Contains(t, got.LastError, tc.wantLastError)
			assert.Empty(t, got.Reservation)
			if tc.target == "inspect" && tc.wantErr == "" {
				assert.NotNil(t, got.InspectionStartedAt)
			}
			if tc.wantState == "manageable" && tc.wantErr == "" {
				assert.NotNil(t, got.InspectionFinishedAt)
			}
		})
	}
}

// TestCreateAcceptsAgentInspect: Metal3's baremetal-operator creates every node with inspect_interface=agent; an
// interface a hardware type does not offer is still refused, naming the valid ones.
func TestCreateAcceptsAgentInspect(t *testing.T) {
	f := newFixture(t, Config{})
	ctx := context.Background()
	for _, tc := range []struct {
		inspect, wantErr string
	}{
		{"agent", ""}, {"fake", ""}, {"no-inspect", ""},
		{"idrac", "inspect_interface \"idrac\" is not enabled for driver fake-hardware; valid interfaces are: fake, agent, no-inspect"},
	} {
		n := &store.Node{UUID: uuid.NewString(), Driver: "fake-hardware", Interfaces: map[string]string{"inspect": tc.inspect}}
		err := f.eng.CreateNode(ctx, n)
		if tc.wantErr == "" {
			assert.NoError(t, err, tc.inspect)
		} else {
			assert.ErrorContains(t, err, tc.wantErr)
		}
	}
}
