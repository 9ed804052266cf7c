package engine

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// setFields writes fields of a node straight to the store (test setup, not a PATCH: no policy applies).
func (f *fixture) setFields(t *testing.T, uuid string, fn func(n *store.Node)) {
	ctx := context.Background()
	n, err := f.st.Reserve(ctx, uuid, "test-setup")
	require.NoError(t, err)
	fn(n)
	require.NoError(t, f.st.UpdateNode(ctx, n))
	require.NoError(t, f.st.Release(ctx, uuid, "test-setup"))
}

// TestProtectedAndRetiredVerbs: Ironic's NodeProtected (undeploy, rebuild, delete, even in maintenance) and
// NodeIsRetired (provide), refused before anything changes.
func TestProtectedAndRetiredVerbs(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, Config{NoAutomatedClean: true})
	prot := f.node(t, "active")
	f.setFields(t, prot.UUID, func(n *store.Node) { n.Protected = true })
	for _, target := range []string{"deleted", "rebuild"} {
		err := f.eng.Provision(ctx, prot.UUID, ProvisionRequest{Target: target})
		require.Error(t, err, target)
		assert.True(t, errors.Is(err, ErrProtected), "%s: %v", target, err)
		assert.Contains(t, err.Error(), "Node "+prot.UUID+" is protected and cannot be undeployed, rebuilt or deleted")
	}
	f.setFields(t, prot.UUID, func(n *store.Node) { n.Maintenance = true })
	err := f.eng.DeleteNode(ctx, prot.UUID)
	assert.True(t, errors.Is(err, ErrProtected), "delete in maintenance: %v", err)
	got, err := f.st.GetNode(ctx, prot.UUID)
	require.NoError(t, err)
	assert.Equal(t, "active", got.ProvisionState)

	ret := f.node(t, "manageable")
	f.setFields(t, ret.UUID, func(n *store.Node) { n.Retired = true })
	err = f.eng.Provision(ctx, ret.UUID, ProvisionRequest{Target: "provide"})
	require.Error(t, err)
	assert.True(t, errors.Is(err, ErrInvalidInput), "%v", err)
	assert.Contains(t, err.Error(), "The providing operation can't be performed on node "+ret.UUID+" because it is retired.")
}

// TestRetiredUndeployEndsManageable: a retired node's undeploy ends in manageable, not back in the pool.
func TestRetiredUndeployEndsManageable(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, Config{NoAutomatedClean: true})
	for _, tc := range []struct {
		retired bool
		want    string
	}{{false, "available"}, {true, "manageable"}} {
		n := f.node(t, "active")
		f.setFields(t, n.UUID, func(n *store.Node) { n.Retired = tc.retired })
		require.NoError(t, f.eng.Provision(ctx, n.UUID, ProvisionRequest{Target: "deleted"}))
		f.eng.Wait()
		got, err := f.st.GetNode(ctx, n.UUID)
		require.NoError(t, err)
		assert.Equal(t, tc.want, got.ProvisionState, "retired=%v: %s", tc.retired, got.LastError)
	}
}

// TestUpdatePolicyFields: Ironic's update_node rules for protected, retired, their reasons, maintenance and
// interfaces, by state.
func TestUpdatePolicyFields(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, Config{})
	for _, tc := range []struct {
		name, state string
		setup       func(n *store.Node)
		change      func(n *store.Node)
		wantErr     string
		check       func(t *testing.T, n *store.Node)
	}{
		{name: "protect active", state: "active", change: func(n *store.Node) { n.Protected, n.ProtectedReason = true, "db" }},
		{name: "protect rescue", state: "rescue", change: func(n *store.Node) { n.Protected = true }},
		{name: "protect available", state: "available", change: func(n *store.Node) { n.Protected = true },
			wantErr: "can only be made protected in provision states 'active' or 'rescue', the current state is 'available'"},
		{name: "reason without protected", state: "active", change: func(n *store.Node) { n.ProtectedReason = "x" },
			wantErr: "The protected_reason field can only be set when protected is True"},
		{name: "unprotect clears the reason", state: "active", setup: func(n *store.Node) { n.Protected, n.ProtectedReason = true, "db" },
			change: func(n *store.Node) { n.Protected = false },
			check:  func(t *testing.T, n *store.Node) { assert.Empty(t, n.ProtectedReason) }},
		{name: "retire manageable", state: "manageable", change: func(n *store.Node) { n.Retired, n.RetiredReason = true, "old" }},
		{name: "retire active", state: "active", change: func(n *store.Node) { n.Retired = true }},
		{name: "retire available", state: "available", change: func(n *store.Node) { n.Retired = true },
			wantErr: "can not have 'retired' set in provision state 'available'"},
		{name: "retired reason without retired", state: "manageable", change: func(n *store.Node) { n.RetiredReason = "x" },
			wantErr: "The retired_reason field can only be set when retired is True"},
		{name: "unretire clears the reason", state: "manageable", setup: func(n *store.Node) { n.Retired, n.RetiredReason = true, "old" },
			change: func(n *store.Node) { n.Retired = false },
			check:  func(t *testing.T, n *store.Node) { assert.Empty(t, n.RetiredReason) }},
		{name: "maintenance off clears reason and fault", state: "available",
			setup:  func(n *store.Node) { n.Maintenance, n.MaintenanceReason, n.Fault = true, "bmc", "power failure" },
			change: func(n *store.Node) { n.Maintenance = false },
			check:  func(t *testing.T, n *store.Node) { assert.Empty(t, n.MaintenanceReason); assert.Empty(t, n.Fault) }},
		{name: "interface of an active node", state: "active", change: func(n *store.Node) { n.Interfaces["deploy"] = "fake" },
			wantErr: "can not have deploy_interface updated unless it is in one of allowed"},
		{name: "interface of an active node in maintenance", state: "active", setup: func(n *store.Node) { n.Maintenance = true },
			change: func(n *store.Node) { n.Interfaces["deploy"] = "fake" }},
		{name: "interface of a manageable node", state: "manageable", change: func(n *store.Node) { n.Interfaces["deploy"] = "fake" }},
		{name: "resource_class of an active node", state: "active", setup: func(n *store.Node) { n.ResourceClass = "gold" },
			change:  func(n *store.Node) { n.ResourceClass = "silver" },
			wantErr: "can not have resource_class updated unless it is in one of allowed"},
		{name: "first resource_class of an active node", state: "active", change: func(n *store.Node) { n.ResourceClass = "gold" }},
		{name: "resource_class of an available node", state: "available", setup: func(n *store.Node) { n.ResourceClass = "gold" },
			change: func(n *store.Node) { n.ResourceClass = "silver" }},
		{name: "another instance_uuid", state: "active", setup: func(n *store.Node) { n.InstanceUUID = "0d6e1b5c-8a3f-4c2e-9b7a-6f5e4d3c2b1a" },
			change:  func(n *store.Node) { n.InstanceUUID = "1d6e1b5c-8a3f-4c2e-9b7a-6f5e4d3c2b1a" },
			wantErr: "is associated with instance 0d6e1b5c-8a3f-4c2e-9b7a-6f5e4d3c2b1a"},
		{name: "driver under a console", state: "manageable", setup: func(n *store.Node) { n.ConsoleEnabled = true },
			change:  func(n *store.Node) { n.Driver = "other" },
			wantErr: "can not update the driver while the console is enabled"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := f.node(t, tc.state)
			f.setFields(t, n.UUID, func(n *store.Node) {
				n.Interfaces = map[string]string{}
				if tc.setup != nil {
					tc.setup(n)
				}
			})
			got, err := f.eng.UpdateNode(ctx, n.UUID, func(n *store.Node) error { tc.change(n); return nil })
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.wantErr)
				return
			}
			require.NoError(t, err)
			if tc.check != nil {
				tc.check(t, got)
			}
		})
	}
}

// TestMaintenanceRefusesProvisioning: deploy and rebuild of a node in maintenance are Ironic's NodeInMaintenance
// with the "provisioning" operation, as every other verb's refusal words it.
func TestMaintenanceRefusesProvisioning(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, Config{})
	for _, tc := range []struct{ state, target string }{{"available", "active"}, {"active", "rebuild"}} {
		n := f.node(t, tc.state)
		f.setFields(t, n.UUID, func(n *store.Node) { n.Maintenance = true })
		err := f.eng.Provision(ctx, n.UUID, ProvisionRequest{Target: tc.target})
		require.Error(t, err, tc.target)
		assert.True(t, errors.Is(err, ErrInvalidInput), "%v", err)
		assert.Contains(t, err.Error(), "The provisioning operation can't be performed on node "+n.UUID+" because it's in maintenance mode.")
	}
}
