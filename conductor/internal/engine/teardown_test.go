package engine

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// agentBoot is a boot interface that "boots the agent" by handing out a pre-generated token (as virtual media do)
// and records every clean-up, so the tests can tell whether a path tore the agent boot down.
type agentBoot struct {
	mu       sync.Mutex
	cleanups map[string]int
}

func (b *agentBoot) Validate(context.Context, *store.Node) error { return nil }
func (b *agentBoot) PrepareRamdisk(_ context.Context, t *driver.Task) error {
	t.Node.DriverInternalInfo["agent_secret_token"] = "pregenerated-token"
	t.Node.DriverInternalInfo["agent_secret_token_pregenerated"] = true
	return nil
}
func (b *agentBoot) CleanUpRamdisk(_ context.Context, t *driver.Task) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.cleanups[t.Node.UUID]++
	return nil
}
func (b *agentBoot) PrepareInstance(context.Context, *driver.Task) error { return nil }
func (b *agentBoot) CleanUpInstance(context.Context, *driver.Task) error { return nil }
func (b *agentBoot) count(uuid string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.cleanups[uuid]
}

// agentDeploy boots the agent and then fails where instance_info says: "deploy" in Deploy (after the agent boot
// started), "continue" in Continue, "clean" in Clean.
type agentDeploy struct{}

func (agentDeploy) Validate(context.Context, *store.Node) error { return nil }
func (agentDeploy) boot(ctx context.Context, t *driver.Task) error {
	if err := t.Boot.PrepareRamdisk(ctx, t); err != nil {
		return err
	}
	return t.Power.SetPowerState(ctx, t.Node, driver.PowerOn, 0)
}
func (d agentDeploy) Deploy(ctx context.Context, t *driver.Task) (driver.Outcome, error) {
	if err := d.boot(ctx, t); err != nil {
		return driver.Done, err
	}
	if t.Node.InstanceInfo["fail"] == "deploy" {
		return driver.Done, errors.New("deploy broke after booting the agent")
	}
	return driver.Wait, nil
}
func (agentDeploy) TearDown(context.Context, *driver.Task) error { return nil }
func (d agentDeploy) Clean(ctx context.Context, t *driver.Task) (driver.Outcome, error) {
	if err := d.boot(ctx, t); err != nil {
		return driver.Done, err
	}
	if t.Node.InstanceInfo["fail"] == "clean" {
		return driver.Done, errors.New("clean broke after booting the agent")
	}
	return driver.Wait, nil
}
func (agentDeploy) Continue(_ context.Context, t *driver.Task) (driver.Outcome, error) {
	if t.Node.InstanceInfo["fail"] == "continue" {
		return driver.Done, errors.New("the agent's install failed")
	}
	return driver.Wait, nil
}

type teardownFixture struct {
	eng   *Engine
	st    store.Store
	power *driver.FakePower
	boot  *agentBoot
}

func newTeardownFixture(t *testing.T, cfg Config) *teardownFixture {
	st, err := store.Open(context.Background(), "sqlite://"+filepath.Join(t.TempDir(), "e.db"))
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	reg := driver.NewRegistry()
	reg.AddHardware(driver.FakeHardware([]string{"agent"}, []string{"agent"}))
	p := driver.NewFakePower()
	b := &agentBoot{cleanups: map[string]int{}}
	reg.AddPower("fake", p)
	reg.AddManagement("fake", driver.NewFakeManagement())
	reg.AddBoot("fake", driver.NewFakeBoot())
	reg.AddBoot("agent", b)
	reg.AddDeploy("fake", driver.FakeDeploy{})
	reg.AddDeploy("agent", agentDeploy{})
	l := logrus.New()
	l.SetOutput(io.Discard)
	cfg.Host = "h1"
	return &teardownFixture{eng: New(cfg, st, reg, logrus.NewEntry(l)), st: st, power: p, boot: b}
}

// node creates an agent-booted node in state, with an agent that has called back (URL, certificate, token).
func (f *teardownFixture) node(t *testing.T, state, fail string) *store.Node {
	ctx := context.Background()
	n := &store.Node{UUID: uuid.NewString(), Driver: "fake-hardware", ProvisionState: state,
		Interfaces: map[string]string{"boot": "agent", "deploy": "agent"}, InstanceInfo: map[string]any{"fail": fail}}
	require.NoError(t, f.eng.CreateNode(ctx, n))
	writeNode(t, f.st, n.UUID, func(n *store.Node) {
		now := time.Now()
		n.ProvisionUpdatedAt = &now
		for k, v := range map[string]any{"agent_secret_token": "pregenerated-token", "agent_secret_token_pregenerated": true,
			"agent_url": "https://192.0.2.10:9999", "agent_verify_ca": "PEM", "agent_booted_for_steps": true,
			"agent_step_command_id": "cmd-1"} {
			n.DriverInternalInfo[k] = v
		}
	})
	require.NoError(t, f.power.SetPowerState(ctx, n, driver.PowerOn, 0))
	return n
}

// writeNode changes a node as a test set-up, under a reservation as every node write must be.
func writeNode(t *testing.T, st store.Store, uuid string, fn func(n *store.Node)) {
	ctx := context.Background()
	n, err := st.Reserve(ctx, uuid, "test-setup")
	require.NoError(t, err)
	fn(n)
	require.NoError(t, st.UpdateNode(ctx, n))
	require.NoError(t, st.Release(ctx, uuid, "test-setup"))
}

// TestEveryFailurePathTearsTheAgentDown drives a node into each failure state by each path and checks that the
// agent boot was cleaned up, the node powered off, and every agent credential and address forgotten.
func TestEveryFailurePathTearsTheAgentDown(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name, state, fail, want string
		run                     func(t *testing.T, f *teardownFixture, n *store.Node)
	}{
		{"deploy error after the agent boot", "available", "deploy", "deploy failed", func(t *testing.T, f *teardownFixture, n *store.Node) {
			require.NoError(t, f.eng.Provision(ctx, n.UUID, ProvisionRequest{Target: "active"}))
		}},
		{"clean error after the agent boot", "manageable", "clean", "clean failed", func(t *testing.T, f *teardownFixture, n *store.Node) {
			require.NoError(t, f.eng.Provision(ctx, n.UUID, ProvisionRequest{Target: "clean", CleanSteps: []map[string]any{{"step": "x"}}}))
		}},
		{"agent error on continue", "wait call-back", "continue", "deploy failed", func(t *testing.T, f *teardownFixture, n *store.Node) {
			f.eng.PollWaiting(ctx)
		}},
		{"call-back timeout", "wait call-back", "", "deploy failed", func(t *testing.T, f *teardownFixture, n *store.Node) {
			f.age(t, n, time.Hour)
			f.eng.checkTimeouts(ctx)
		}},
		{"silent agent found by the poll", "wait call-back", "", "deploy failed", func(t *testing.T, f *teardownFixture, n *store.Node) {
			f.age(t, n, time.Hour)
			f.eng.PollWaiting(ctx)
		}},
		{"abort in wait call-back", "wait call-back", "", "deploy failed", func(t *testing.T, f *teardownFixture, n *store.Node) {
			require.NoError(t, f.eng.Provision(ctx, n.UUID, ProvisionRequest{Target: "abort"}))
		}},
		{"abort in clean wait", "clean wait", "", "clean failed", func(t *testing.T, f *teardownFixture, n *store.Node) {
			require.NoError(t, f.eng.Provision(ctx, n.UUID, ProvisionRequest{Target: "abort"}))
		}},
		{"restart recovery", "deploying", "", "deploy failed", func(t *testing.T, f *teardownFixture, n *store.Node) {
			require.NoError(t, f.eng.Recover(ctx))
			f.eng.Wait()
		}},
		{"repeated heartbeats moving the agent", "wait call-back", "", "deploy failed", func(t *testing.T, f *teardownFixture, n *store.Node) {
			for i := 0; i < maxPinRefusals; i++ {
				err := f.eng.HeartbeatNode(ctx, n.UUID, Heartbeat{AgentToken: "pregenerated-token", CallbackURL: "https://203.0.113.66:9999"})
				require.ErrorIs(t, err, ErrInvalidInput)
				assert.Equal(t, `Detected change in ramdisk provided "callback_url": invalid input`, err.Error(),
					"the caller learns Ironic's wording only, not the pinned address")
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newTeardownFixture(t, Config{CallbackTimeout: time.Minute})
			n := f.node(t, tc.state, tc.fail)
			tc.run(t, f, n)
			f.eng.Wait()
			got, err := f.st.GetNode(ctx, n.UUID)
			require.NoError(t, err)
			assert.Equal(t, tc.want, got.ProvisionState)
			assert.NotEmpty(t, got.LastError)
			assert.GreaterOrEqual(t, f.boot.count(n.UUID), 1, "the agent boot is cleaned up (media ejected and deleted)")
			assert.Equal(t, driver.PowerOff, got.PowerState, "the node is powered off")
			// Every key the fixture planted (not agentKeys(), which would make the check follow the code).
			for _, k := range []string{"agent_secret_token", "agent_secret_token_pregenerated", "agent_url",
				"agent_verify_ca", "agent_booted_for_steps", "agent_step_command_id"} {
				assert.NotContains(t, got.DriverInternalInfo, k, "agent credentials, addresses and step state are forgotten")
			}
			assert.Empty(t, got.Reservation)
		})
	}
}

func (f *teardownFixture) age(t *testing.T, n *store.Node, by time.Duration) {
	writeNode(t, f.st, n.UUID, func(n *store.Node) {
		at := time.Now().Add(-by)
		n.ProvisionUpdatedAt = &at
	})
}

// TestHeartbeatPinsURLAndCertificate: the first heartbeat pins the agent's address and certificate; the same agent
// heartbeats on, another address or certificate is refused and counted in the deploy log, and a refusal never
// replaces the pinned certificate.
func TestHeartbeatPinsURLAndCertificate(t *testing.T) {
	ctx := context.Background()
	f := newTeardownFixture(t, Config{})
	n := f.node(t, "wait call-back", "")
	writeNode(t, f.st, n.UUID, func(n *store.Node) {
		n.DriverInternalInfo["deploy_run"] = "run-1"
		for _, k := range []string{"agent_url", "agent_verify_ca"} {
			delete(n.DriverInternalInfo, k)
		}
	})
	tok := "pregenerated-token"

	require.NoError(t, f.eng.HeartbeatNode(ctx, n.UUID, Heartbeat{AgentToken: tok, CallbackURL: "https://192.0.2.10:9999", AgentVerifyCA: "REAL"}))
	f.eng.Wait()
	require.NoError(t, f.eng.HeartbeatNode(ctx, n.UUID, Heartbeat{AgentToken: tok, CallbackURL: "https://192.0.2.10:9999", AgentVerifyCA: "REAL"}),
		"the pinned agent heartbeats on")
	f.eng.Wait()
	err := f.eng.HeartbeatNode(ctx, n.UUID, Heartbeat{AgentToken: tok, CallbackURL: "https://192.0.2.10:9999", AgentVerifyCA: "ATTACKER"})
	require.Error(t, err)
	assert.Equal(t, `Detected change in ramdisk provided "agent_verify_ca": invalid input`, err.Error())
	err = f.eng.HeartbeatNode(ctx, n.UUID, Heartbeat{AgentToken: "wrong", CallbackURL: "https://203.0.113.66:9999"})
	assert.ErrorContains(t, err, "Invalid or missing agent token", "without the token nothing is counted")
	f.eng.Wait()

	got, err := f.st.GetNode(ctx, n.UUID)
	require.NoError(t, err)
	assert.Equal(t, "wait call-back", got.ProvisionState, "one refusal does not fail the deploy")
	assert.Equal(t, "REAL", got.DriverInternalInfo["agent_verify_ca"])
	assert.Equal(t, "https://192.0.2.10:9999", got.DriverInternalInfo["agent_url"])
	lines, err := f.st.DeployLog(ctx, n.UUID, "run-1")
	require.NoError(t, err)
	require.Len(t, lines, 1)
	assert.Contains(t, lines[0].Message, "refused a heartbeat that changes agent_verify_ca")
	assert.Contains(t, lines[0].Message, "1 of 3")
}
