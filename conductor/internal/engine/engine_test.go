package engine

import (
	"context"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/store"
)

type fixture struct {
	eng   *Engine
	st    store.Store
	power *driver.FakePower
}

func newFixture(t *testing.T, cfg Config) *fixture {
	st, err := store.Open(context.Background(), "sqlite://"+filepath.Join(t.TempDir(), "e.db"))
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	reg := driver.NewRegistry()
	reg.AddHardware(driver.FakeHardware(nil, nil))
	p := driver.NewFakePower()
	reg.AddPower("fake", p)
	reg.AddManagement("fake", driver.NewFakeManagement())
	reg.AddBoot("fake", driver.NewFakeBoot())
	reg.AddDeploy("fake", driver.FakeDeploy{})
	l := logrus.New()
	l.SetOutput(io.Discard)
	cfg.Host = "h1"
	return &fixture{eng: New(cfg, st, reg, logrus.NewEntry(l)), st: st, power: p}
}

func (f *fixture) node(t *testing.T, state string) *store.Node {
	n := &store.Node{UUID: uuid.NewString(), Driver: "fake-hardware", ProvisionState: state}
	require.NoError(t, f.eng.CreateNode(context.Background(), n))
	return n
}

func TestCallbackTimeout(t *testing.T) {
	f := newFixture(t, Config{CallbackTimeout: time.Minute})
	ctx := context.Background()
	old := f.node(t, "wait call-back")
	fresh := f.node(t, "wait call-back")
	for _, tc := range []struct {
		n   *store.Node
		age time.Duration
	}{{old, 2 * time.Minute}, {fresh, 10 * time.Second}} {
		n, err := f.st.Reserve(ctx, tc.n.UUID, "test-setup") // UpdateNode is fenced by the reservation
		require.NoError(t, err)
		at := time.Now().Add(-tc.age)
		n.ProvisionUpdatedAt, n.TargetProvisionState = &at, "active"
		n.DriverInternalInfo["agent_secret_token"] = "tok"
		require.NoError(t, f.st.UpdateNode(ctx, n))
		require.NoError(t, f.st.Release(ctx, n.UUID, "test-setup"))
	}
	require.NoError(t, f.power.SetPowerState(ctx, old, driver.PowerOn, 0))

	f.eng.checkTimeouts(ctx)

	got, err := f.st.GetNode(ctx, old.UUID)
	require.NoError(t, err)
	assert.Equal(t, "deploy failed", got.ProvisionState)
	assert.Equal(t, "active", got.TargetProvisionState, "failure states keep their target")
	assert.Contains(t, got.LastError, "Timeout reached while waiting for callback")
	assert.Equal(t, driver.PowerOff, got.PowerState, "the agent is powered off")
	assert.NotContains(t, got.DriverInternalInfo, "agent_secret_token", "power off wipes the token")
	assert.Empty(t, got.Reservation)
	got, err = f.st.GetNode(ctx, fresh.UUID)
	require.NoError(t, err)
	assert.Equal(t, "wait call-back", got.ProvisionState)
}

func TestPollFailsAgentThatStoppedHeartbeating(t *testing.T) {
	f := newFixture(t, Config{CallbackTimeout: time.Minute})
	ctx := context.Background()
	for _, tc := range []struct {
		name      string
		age       time.Duration
		wantState string
	}{
		{"silent past the timeout", 2 * time.Minute, "deploy failed"},
		{"heartbeat within the timeout", 10 * time.Second, "wait call-back"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := f.node(t, "wait call-back")
			n, err := f.st.Reserve(ctx, n.UUID, "test-setup")
			require.NoError(t, err)
			at := time.Now().Add(-tc.age)
			n.ProvisionUpdatedAt, n.TargetProvisionState = &at, "active"
			n.DriverInternalInfo["agent_url"] = "https://10.0.2.15:9999"
			n.DriverInternalInfo["agent_last_heartbeat"] = at.UTC().Format("2006-01-02T15:04:05.000000")
			require.NoError(t, f.st.UpdateNode(ctx, n))
			require.NoError(t, f.st.Release(ctx, n.UUID, "test-setup"))

			f.eng.PollWaiting(ctx)
			f.eng.Wait()

			got, err := f.st.GetNode(ctx, n.UUID)
			require.NoError(t, err)
			assert.Equal(t, tc.wantState, got.ProvisionState)
			assert.Empty(t, got.Reservation)
			if tc.wantState == "deploy failed" {
				assert.Contains(t, got.LastError, "Timeout reached while waiting for callback for node "+n.UUID)
				assert.Contains(t, got.LastError, "the agent at https://10.0.2.15:9999 stopped heartbeating")
				assert.Equal(t, driver.PowerOff, got.PowerState, "the agent is powered off")
			}
		})
	}
}

func TestHeartbeatWhileLockedKeepsTheAgentAlive(t *testing.T) {
	f := newFixture(t, Config{CallbackTimeout: time.Minute})
	ctx := context.Background()
	n := f.node(t, "wait call-back")
	n, err := f.st.Reserve(ctx, n.UUID, "test-setup")
	require.NoError(t, err)
	old := time.Now().Add(-50 * time.Second)
	n.ProvisionUpdatedAt, n.TargetProvisionState = &old, "active"
	n.DriverInternalInfo["agent_url"] = "https://10.0.2.15:9999"
	n.DriverInternalInfo["agent_secret_token"] = "tok"
	require.NoError(t, f.st.UpdateNode(ctx, n))
	require.NoError(t, f.st.Release(ctx, n.UUID, "test-setup"))

	// A poll holds the lock when the heartbeat comes; the holder saves the node when it is done.
	locked, err := f.eng.reserve(ctx, n.UUID, false)
	require.NoError(t, err)
	require.NoError(t, f.eng.HeartbeatNode(ctx, n.UUID, Heartbeat{AgentToken: "tok", CallbackURL: "https://10.0.2.15:9999"}))
	f.eng.async(locked, "poll", func(context.Context, *store.Node) {})
	f.eng.Wait()

	got, err := f.st.GetNode(ctx, n.UUID)
	require.NoError(t, err)
	require.NotNil(t, got.ProvisionUpdatedAt)
	assert.WithinDuration(t, time.Now(), *got.ProvisionUpdatedAt, 5*time.Second, "the heartbeat restarted the call-back timeout")
	assert.NotEmpty(t, got.DriverInternalInfo["agent_last_heartbeat"])

	// 50 s after the old mark, the node would have timed out at 60 s; it is alive instead.
	f.eng.now = func() time.Time { return old.Add(70 * time.Second) }
	f.eng.PollWaiting(ctx)
	f.eng.Wait()
	got, err = f.st.GetNode(ctx, n.UUID)
	require.NoError(t, err)
	assert.Equal(t, "wait call-back", got.ProvisionState)
}

func TestPowerSync(t *testing.T) {
	f := newFixture(t, Config{})
	ctx := context.Background()
	n := f.node(t, "manageable")
	skipped := f.node(t, "wait call-back")
	require.NoError(t, f.power.SetPowerState(ctx, n, driver.PowerOn, 0))
	require.NoError(t, f.power.SetPowerState(ctx, skipped, driver.PowerOn, 0))
	f.eng.syncPower(ctx)
	f.eng.Wait() // the reads run on the worker pool
	got, err := f.st.GetNode(ctx, n.UUID)
	require.NoError(t, err)
	assert.Equal(t, driver.PowerOn, got.PowerState)
	got, err = f.st.GetNode(ctx, skipped.UUID)
	require.NoError(t, err)
	assert.Empty(t, got.PowerState, "nodes waiting for their agent are not synced")

	// Power as recorded: the sync reads it without a lock and writes nothing.
	before, err := f.st.GetNode(ctx, n.UUID)
	require.NoError(t, err)
	f.eng.syncPower(ctx)
	f.eng.Wait()
	after, err := f.st.GetNode(ctx, n.UUID)
	require.NoError(t, err)
	assert.Equal(t, before.UpdatedAt, after.UpdatedAt, "no write when nothing changed")
}

func TestShutdownReleasesAndFinishes(t *testing.T) {
	f := newFixture(t, Config{ShutdownGrace: 5 * time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.eng.Run(ctx) }()
	n := f.node(t, "enroll")
	require.NoError(t, f.eng.Provision(context.Background(), n.UUID, ProvisionRequest{Target: "manage"}))
	cancel()
	require.NoError(t, <-done)
	got, err := f.st.GetNode(context.Background(), n.UUID)
	require.NoError(t, err)
	assert.Equal(t, "manageable", got.ProvisionState, "in-flight work finished")
	assert.Empty(t, got.Reservation)
}

func TestLockedNodeAnswersLocked(t *testing.T) {
	f := newFixture(t, Config{LockRetries: 2, LockRetryInterval: time.Millisecond})
	n := f.node(t, "enroll")
	_, err := f.st.Reserve(context.Background(), n.UUID, "other")
	require.NoError(t, err)
	err = f.eng.Provision(context.Background(), n.UUID, ProvisionRequest{Target: "manage"})
	var le *store.LockedError
	require.ErrorAs(t, err, &le)
	assert.Equal(t, "other", le.Holder)
}
