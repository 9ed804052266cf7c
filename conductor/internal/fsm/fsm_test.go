package fsm_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/conductor/internal/fsm"
)

func TestTransitions(t *testing.T) {
	m := fsm.New()
	tests := []struct {
		from fsm.State
		ev   fsm.Event
		to   fsm.State
	}{
		{fsm.Enroll, fsm.EvManage, fsm.Verifying},
		{fsm.Verifying, fsm.EvDone, fsm.Manageable},
		{fsm.Verifying, fsm.EvFail, fsm.Enroll},
		{fsm.Manageable, fsm.EvProvide, fsm.Cleaning},
		{fsm.Cleaning, fsm.EvDone, fsm.Available},
		{fsm.Cleaning, fsm.EvManage, fsm.Manageable},
		{fsm.Available, fsm.EvDeploy, fsm.Deploying},
		{fsm.Available, fsm.EvManage, fsm.Manageable},
		{fsm.Deploying, fsm.EvWait, fsm.DeployWait},
		{fsm.DeployWait, fsm.EvResume, fsm.Deploying},
		{fsm.DeployWait, fsm.EvAbort, fsm.DeployFailed},
		{fsm.DeployWait, fsm.EvFail, fsm.DeployFailed},
		{fsm.DeployWait, fsm.EvDelete, fsm.Deleting},
		{fsm.Deploying, fsm.EvDone, fsm.Active},
		{fsm.Deploying, fsm.EvHold, fsm.DeployHold},
		{fsm.DeployHold, fsm.EvUnhold, fsm.DeployWait},
		{fsm.DeployFailed, fsm.EvDeploy, fsm.Deploying},
		{fsm.DeployFailed, fsm.EvRebuild, fsm.Deploying},
		{fsm.Active, fsm.EvRebuild, fsm.Deploying},
		{fsm.Error, fsm.EvRebuild, fsm.Deploying},
		{fsm.Active, fsm.EvDelete, fsm.Deleting},
		{fsm.Deleting, fsm.EvClean, fsm.Cleaning},
		{fsm.Deleting, fsm.EvFail, fsm.Error},
		{fsm.CleanWait, fsm.EvAbort, fsm.CleanFailed},
		{fsm.CleanFailed, fsm.EvManage, fsm.Manageable},
		{fsm.Manageable, fsm.EvInspect, fsm.Inspecting},
		{fsm.InspectWait, fsm.EvDone, fsm.Manageable},
		{fsm.Manageable, fsm.EvAdopt, fsm.Adopting},
		{fsm.Adopting, fsm.EvDone, fsm.Active},
		{fsm.AdoptFailed, fsm.EvManage, fsm.Manageable},
		{fsm.Active, fsm.EvRescue, fsm.Rescuing},
		{fsm.Rescue, fsm.EvUnrescue, fsm.Unrescuing},
		{fsm.Unrescuing, fsm.EvDone, fsm.Active},
		{fsm.Active, fsm.EvService, fsm.Servicing},
		{fsm.ServiceFailed, fsm.EvAbort, fsm.Active},
		{fsm.ServiceHold, fsm.EvUnhold, fsm.ServiceWait},
	}
	for _, tc := range tests {
		t.Run(string(tc.from)+"/"+string(tc.ev), func(t *testing.T) {
			to, err := m.Next(tc.from, tc.ev)
			require.NoError(t, err)
			assert.Equal(t, tc.to, to)
		})
	}
}

func TestRefused(t *testing.T) {
	m := fsm.New()
	for _, tc := range []struct {
		from fsm.State
		ev   fsm.Event
	}{
		{fsm.Enroll, fsm.EvProvide}, {fsm.Enroll, fsm.EvDeploy}, {fsm.Available, fsm.EvDelete},
		{fsm.Active, fsm.EvDeploy}, {fsm.Manageable, fsm.EvDeploy}, {fsm.Deploying, fsm.EvAbort},
		{fsm.Active, fsm.EvManage}, {fsm.Cleaning, fsm.EvAbort},
	} {
		_, err := m.Next(tc.from, tc.ev)
		var ite *fsm.InvalidTransitionError
		assert.ErrorAs(t, err, &ite, "%s/%s", tc.from, tc.ev)
	}
}

func TestTargets(t *testing.T) {
	tests := []struct {
		s      fsm.State
		manual bool
		want   fsm.State
	}{
		{fsm.Deploying, false, fsm.Active}, {fsm.DeployWait, false, fsm.Active}, {fsm.DeployFailed, false, fsm.Active},
		{fsm.Cleaning, false, fsm.Available}, {fsm.Cleaning, true, fsm.Manageable}, {fsm.CleanFailed, true, fsm.Manageable},
		{fsm.Deleting, false, fsm.Available}, {fsm.Verifying, false, fsm.Manageable}, {fsm.Rescuing, false, fsm.Rescue},
		{fsm.Active, false, fsm.NoState}, {fsm.Available, false, fsm.NoState}, {fsm.Enroll, false, fsm.NoState},
	}
	for _, tc := range tests {
		assert.Equal(t, tc.want, fsm.Target(tc.s, tc.manual), "%s manual=%v", tc.s, tc.manual)
	}
}

// Every state in the table must either be stable or have a target, and every failure state must be reachable.
func TestTableConsistency(t *testing.T) {
	m := fsm.New()
	for _, s := range m.States() {
		if fsm.IsStable(s) {
			assert.Equal(t, fsm.NoState, fsm.Target(s, false), s)
			continue
		}
		assert.NotEqual(t, fsm.NoState, fsm.Target(s, false), "transient state %q has no target", s)
		assert.NotEmpty(t, m.Allowed(s), "state %q is a dead end", s)
	}
	for _, v := range fsm.Verbs() {
		assert.NotEmpty(t, v.Event, v.Name)
	}
	assert.Len(t, m.States(), 30)
}
