package engine

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// TestResumeAllocations: an allocation a previous run left in state allocating (stopped between storing it and
// binding a node) is processed by Recover, as Ironic's conductor resumes them on start.
func TestResumeAllocations(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, Config{})
	n := f.node(t, "available")
	r, err := f.st.Reserve(ctx, n.UUID, "setup")
	require.NoError(t, err)
	r.PowerState, r.ResourceClass = "power off", "gold"
	require.NoError(t, f.st.UpdateNode(ctx, r))
	require.NoError(t, f.st.Release(ctx, n.UUID, "setup"))

	tests := []struct {
		name, rc, wantState string
	}{
		{"matching node", "gold", store.AllocationActive},
		{"no node", "bronze", store.AllocationError},
	}
	var ids []string
	for _, tc := range tests {
		a := &store.Allocation{UUID: uuid.NewString(), State: store.AllocationAllocating, ResourceClass: tc.rc,
			CreatedAt: time.Now().UTC()}
		require.NoError(t, f.st.CreateAllocation(ctx, a))
		ids = append(ids, a.UUID)
	}
	require.NoError(t, f.eng.Recover(ctx))
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, err := f.st.GetAllocation(ctx, ids[i])
			require.NoError(t, err)
			assert.Equal(t, tc.wantState, a.State, a.LastError)
		})
	}
	got, err := f.st.GetNode(ctx, n.UUID)
	require.NoError(t, err)
	assert.Equal(t, ids[0], got.AllocationUUID)
}
