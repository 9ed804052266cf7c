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

// TestInspectCachesFirmware: a successful inspection caches the node's firmware components again, as Ironic's
// inspection does (node_cache_firmware_components); before, only manage and cleaning did.
func TestInspectCachesFirmware(t *testing.T) {
	f := newFixture(t, Config{})
	f.eng.reg.AddInspect(driver.InspectFake, driver.FakeInspect{})
	driver.AddHardwareInterfaces(f.eng.reg, nil)
	ctx := context.Background()
	n := &store.Node{UUID: uuid.NewString(), Driver: "fake-hardware", ProvisionState: "manageable",
		Interfaces: map[string]string{"inspect": "fake", "firmware": "fake"}}
	require.NoError(t, f.eng.CreateNode(ctx, n))
	comps, err := f.st.FirmwareComponents(ctx, n.UUID)
	require.NoError(t, err)
	require.Empty(t, comps)

	require.NoError(t, f.eng.Provision(ctx, n.UUID, ProvisionRequest{Target: "inspect"}))
	f.eng.Wait()
	got, err := f.st.GetNode(ctx, n.UUID)
	require.NoError(t, err)
	require.Equal(t, "manageable", got.ProvisionState, got.LastError)
	comps, err = f.st.FirmwareComponents(ctx, n.UUID)
	require.NoError(t, err)
	require.Len(t, comps, 2)
	assert.Equal(t, "bios", comps[0].Component)
	assert.Equal(t, "1.0.0", comps[0].CurrentVersion)
}
