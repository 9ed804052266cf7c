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

// TestValidateInspectRescue: GET /validate reports what the node's inspect and rescue interfaces say, so that a
// node with no-inspect / no-rescue shows false with Ironic's reason instead of a blanket true.
func TestValidateInspectRescue(t *testing.T) {
	tests := []struct {
		name            string
		ifaces          map[string]string
		inspect, rescue bool
	}{
		{"fake interfaces", map[string]string{"inspect": "fake", "rescue": "fake"}, true, true},
		{"disabled interfaces", map[string]string{"inspect": "no-inspect", "rescue": "no-rescue"}, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, Config{})
			driver.AddInspectRescue(f.eng.reg)
			ctx := context.Background()
			n := &store.Node{UUID: uuid.NewString(), Driver: "fake-hardware", ProvisionState: "manageable", Interfaces: tc.ifaces}
			require.NoError(t, f.eng.CreateNode(ctx, n))
			res, err := f.eng.Validate(ctx, n.UUID)
			require.NoError(t, err)
			assert.Equal(t, tc.inspect, res["inspect"].Result)
			assert.Equal(t, tc.rescue, res["rescue"].Result)
			if !tc.inspect {
				assert.Equal(t, "Driver fake-hardware does not support inspect (disabled or not implemented).", res["inspect"].Reason)
				assert.Equal(t, "Driver fake-hardware does not support rescue (disabled or not implemented).", res["rescue"].Reason)
			}
		})
	}
}

// TestMaintenanceRefusesVerbs: clean, provide and service are refused on a node in maintenance with Ironic's
// NodeInMaintenance wording, and the node does not move.
func TestMaintenanceRefusesVerbs(t *testing.T) {
	for _, tc := range []struct{ from, target, op string }{
		{"manageable", "clean", "cleaning"},
		{"manageable", "provide", "providing"},
		{"active", "service", "service"},
	} {
		t.Run(tc.target, func(t *testing.T) {
			f := newFixture(t, Config{})
			ctx := context.Background()
			n := &store.Node{UUID: uuid.NewString(), Driver: "fake-hardware", ProvisionState: tc.from, Maintenance: true}
			require.NoError(t, f.eng.CreateNode(ctx, n))
			err := f.eng.Provision(ctx, n.UUID, ProvisionRequest{Target: tc.target,
				CleanSteps: []map[string]any{{"interface": "deploy", "step": "erase_devices_metadata"}}})
			require.ErrorIs(t, err, ErrInvalidInput)
			assert.Contains(t, err.Error(), "The "+tc.op+" operation can't be performed on node "+n.UUID+" because it's in maintenance mode.")
			got, err := f.st.GetNode(ctx, n.UUID)
			require.NoError(t, err)
			assert.Equal(t, tc.from, got.ProvisionState)
		})
	}
}

// TestDeleteAssociatedNode: a node bound to an instance is not deleted (Ironic's NodeAssociated, 409) unless it
// is in maintenance.
func TestDeleteAssociatedNode(t *testing.T) {
	f := newFixture(t, Config{})
	ctx := context.Background()
	n := &store.Node{UUID: uuid.NewString(), Driver: "fake-hardware", ProvisionState: "manageable", InstanceUUID: uuid.NewString()}
	require.NoError(t, f.eng.CreateNode(ctx, n))
	err := f.eng.DeleteNode(ctx, n.UUID)
	require.ErrorIs(t, err, ErrConflict)
	assert.Contains(t, err.Error(), "Node "+n.UUID+" is associated with instance "+n.InstanceUUID+".")
	require.NoError(t, f.eng.SetMaintenance(ctx, n.UUID, true, "broken"))
	require.NoError(t, f.eng.DeleteNode(ctx, n.UUID))
}
