package engine

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// driveRecorder is a deploy interface that records what a deploy saw of the config drive.
type driveRecorder struct {
	driver.FakeDeploy
	outcome      driver.Outcome
	err          error
	seen         any
	instanceInfo map[string]any
}

func (r *driveRecorder) Deploy(ctx context.Context, t *driver.Task) (driver.Outcome, error) {
	var err error
	if r.seen, err = t.ConfigDrive(ctx); err != nil {
		return driver.Done, err
	}
	r.instanceInfo = map[string]any{}
	for k, v := range t.Node.InstanceInfo {
		r.instanceInfo[k] = v
	}
	return r.outcome, r.err
}

// TestConfigDriveKeptApartUntilTheDeployEnds: the deploy interface reads the drive through its task, the node
// never carries it, and it is gone once the deploy ends (active, deploy failed, abort).
func TestConfigDriveKeptApartUntilTheDeployEnds(t *testing.T) {
	drive := map[string]any{"user_data": "#cloud-config\npassword: s3cret\n"}
	tests := []struct {
		name      string
		outcome   driver.Outcome
		err       error
		abort     bool
		wantState string
	}{
		{"deploy finishes", driver.Done, nil, false, "active"},
		{"deploy fails", driver.Done, errors.New("disk on fire"), false, "deploy failed"},
		{"deploy aborted while waiting", driver.Wait, nil, true, "deploy failed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, Config{})
			rec := &driveRecorder{outcome: tc.outcome, err: tc.err}
			f.eng.reg.AddDeploy("fake", rec)
			ctx := context.Background()
			n := f.node(t, "available")

			require.NoError(t, f.eng.Provision(ctx, n.UUID, ProvisionRequest{Target: "active", ConfigDrive: drive}))
			f.eng.Wait()
			assert.Equal(t, drive, rec.seen, "the deploy interface reads the drive from its task")
			assert.NotContains(t, rec.instanceInfo, "configdrive", "the node never carries the drive")
			if tc.abort {
				got, err := f.st.GetNode(ctx, n.UUID)
				require.NoError(t, err)
				require.Equal(t, "wait call-back", got.ProvisionState)
				_, err = f.st.ConfigDrive(ctx, n.UUID)
				require.NoError(t, err, "kept while the node waits for its agent")
				require.NoError(t, f.eng.Provision(ctx, n.UUID, ProvisionRequest{Target: "abort"}))
			}

			got, err := f.st.GetNode(ctx, n.UUID)
			require.NoError(t, err)
			assert.Equal(t, tc.wantState, got.ProvisionState)
			assert.NotContains(t, got.InstanceInfo, "configdrive")
			_, err = f.st.ConfigDrive(ctx, n.UUID)
			assert.ErrorIs(t, err, store.ErrNotFound, "the drive is deleted when the deploy ends")
		})
	}
}

// TestDeployWithoutConfigDriveForgetsAnOldOne: a deploy without a drive does not install a drive left from an
// earlier request.
func TestDeployWithoutConfigDriveForgetsAnOldOne(t *testing.T) {
	f := newFixture(t, Config{})
	rec := &driveRecorder{outcome: driver.Done}
	f.eng.reg.AddDeploy("fake", rec)
	ctx := context.Background()
	n := f.node(t, "available")
	require.NoError(t, f.st.PutConfigDrive(ctx, n.UUID, "H4sIold"))

	require.NoError(t, f.eng.Provision(ctx, n.UUID, ProvisionRequest{Target: "active"}))
	f.eng.Wait()
	assert.Nil(t, rec.seen)
	got, err := f.st.GetNode(ctx, n.UUID)
	require.NoError(t, err)
	assert.Equal(t, "active", got.ProvisionState)
}
