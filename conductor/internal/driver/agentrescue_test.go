package driver

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// refusingBoot is a boot interface that cannot boot the agent (e.g. missing deploy_kernel).
type refusingBoot struct{ *FakeBoot }

func (refusingBoot) Validate(context.Context, *store.Node) error {
	return errors.New("driver_info.deploy_kernel is missing")
}

func rescueTask(t *testing.T, boot Boot) *Task {
	l := logrus.New()
	l.SetOutput(io.Discard)
	n := &store.Node{UUID: "n1", ProvisionState: "rescue wait", InstanceInfo: map[string]any{KeyHashedRescuePassword: "$6$salt$hash"},
		DriverInternalInfo: map[string]any{}}
	return &Task{Node: n, Power: NewFakePower(), Management: NewFakeManagement(), Boot: boot, Rescue: AgentRescue{},
		Log: logrus.NewEntry(l), Save: func(context.Context) error { return nil }}
}

// TestAgentRescueValidate: the rescue verb needs the stored hash and a boot interface that can boot the agent.
func TestAgentRescueValidate(t *testing.T) {
	ctx := context.Background()
	tk := rescueTask(t, NewFakeBoot())
	assert.NoError(t, AgentRescue{}.ValidateTask(ctx, tk))

	tk = rescueTask(t, refusingBoot{NewFakeBoot()})
	err := AgentRescue{}.ValidateTask(ctx, tk)
	assert.ErrorContains(t, err, "the boot interface cannot boot the rescue agent: driver_info.deploy_kernel is missing")
	_, err = AgentRescue{}.Rescue(ctx, tk)
	assert.Error(t, err, "rescue checks again before it powers anything")
	ps, _ := tk.Power.PowerState(ctx, tk.Node)
	assert.Equal(t, PowerOff, ps)

	tk = rescueTask(t, NewFakeBoot())
	delete(tk.Node.InstanceInfo, KeyHashedRescuePassword)
	err = AgentRescue{}.ValidateTask(ctx, tk)
	assert.ErrorIs(t, err, ErrInvalid)
	assert.ErrorContains(t, err, "is missing 'instance_info/rescue_password'")
}

// TestAgentRescueContinueWaits: before the agent calls back, while it is busy (409) or silent, the node keeps
// waiting and keeps its hash; an agent refusing the token fails the rescue.
func TestAgentRescueContinueWaits(t *testing.T) {
	ctx := context.Background()
	tk := rescueTask(t, NewFakeBoot())
	out, err := AgentRescue{}.Continue(ctx, tk)
	require.NoError(t, err)
	assert.Equal(t, Wait, out, "no call-back yet")

	busy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, `{"faultstring": "busy"}`, http.StatusConflict)
	}))
	defer busy.Close()
	tk.Node.DriverInternalInfo["agent_url"], tk.Node.DriverInternalInfo["agent_secret_token"] = busy.URL, "tok"
	out, err = AgentRescue{}.Continue(ctx, tk)
	require.NoError(t, err)
	assert.Equal(t, Wait, out, "a busy agent is asked again on the next heartbeat")
	assert.Contains(t, tk.Node.InstanceInfo, KeyHashedRescuePassword)

	refusing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "bad token", http.StatusUnauthorized)
	}))
	defer refusing.Close()
	tk.Node.DriverInternalInfo["agent_url"] = refusing.URL
	_, err = AgentRescue{}.Continue(ctx, tk)
	assert.ErrorContains(t, err, "Agent returned error for command finalize_rescue")
}
