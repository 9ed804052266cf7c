package engine

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/conductor/internal/driver"
)

// recObserver records the engine's observations.
type recObserver struct {
	mu       sync.Mutex
	started  []string
	finished []finished
	phases   map[string]time.Duration
	polls    []error
	beats    []error
}

type finished struct {
	iface string
	ok    bool
	d     time.Duration
}

func (o *recObserver) DeployStarted(iface string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.started = append(o.started, iface)
}

func (o *recObserver) DeployFinished(iface string, ok bool, d time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.finished = append(o.finished, finished{iface, ok, d})
}

func (o *recObserver) Phase(name string, d time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.phases[name] = d
}

func (o *recObserver) AgentPoll(_ time.Duration, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.polls = append(o.polls, err)
}

func (o *recObserver) Heartbeat(_ time.Duration, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.beats = append(o.beats, err)
}

// phasedDeploy waits for a (pretend) agent on Deploy; Continue finishes with the phases an agent-driven interface
// records under <interface>_installed, or fails with err.
type phasedDeploy struct {
	driver.FakeDeploy
	err error
}

func (phasedDeploy) Deploy(_ context.Context, t *driver.Task) (driver.Outcome, error) {
	t.Node.DriverInternalInfo["agent_url"] = "https://192.0.2.10:9999"
	return driver.Wait, nil
}

func (d phasedDeploy) Continue(_ context.Context, t *driver.Task) (driver.Outcome, error) {
	if d.err != nil {
		return driver.Done, d.err
	}
	t.Node.DriverInternalInfo["fake_installed"] = map[string]any{"phases": map[string]float64{"pull": 12.5, "install": 30}}
	return driver.Done, nil
}

// TestObserverSeesDeploys: every way into and out of a deploy reaches the Observer once: started on the request,
// succeeded with the agent's phases and a duration, failed by the agent or by an abort, and failed without a
// duration when this engine never saw the start (restart recovery). Each agent poll is observed with its error.
func TestObserverSeesDeploys(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		agent   error
		abort   bool
		wantOK  bool
		wantPol int
	}{
		{"agent finishes", nil, false, true, 1},
		{"agent fails", errors.New("disk on fire"), false, false, 1},
		{"aborted while waiting", nil, true, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			obs := &recObserver{phases: map[string]time.Duration{}}
			f := newFixture(t, Config{Observer: obs})
			f.eng.reg.AddDeploy("fake", phasedDeploy{err: tc.agent})
			n := f.node(t, "available")
			require.NoError(t, f.eng.Provision(ctx, n.UUID, ProvisionRequest{Target: "active"}))
			f.eng.Wait()
			if tc.abort {
				require.NoError(t, f.eng.Provision(ctx, n.UUID, ProvisionRequest{Target: "abort"}))
			} else {
				f.eng.PollWaiting(ctx)
			}
			f.eng.Wait()

			got, err := f.st.GetNode(ctx, n.UUID)
			require.NoError(t, err)
			assert.Equal(t, map[bool]string{true: "active", false: "deploy failed"}[tc.wantOK], got.ProvisionState)
			assert.Equal(t, []string{"fake"}, obs.started)
			require.Len(t, obs.finished, 1)
			assert.Equal(t, "fake", obs.finished[0].iface)
			assert.Equal(t, tc.wantOK, obs.finished[0].ok)
			assert.Positive(t, obs.finished[0].d, "the start was seen: a duration")
			require.Len(t, obs.polls, tc.wantPol)
			if tc.wantPol > 0 {
				assert.Equal(t, tc.agent, obs.polls[0])
			}
			if tc.wantOK {
				assert.Equal(t, map[string]time.Duration{"pull": 12500 * time.Millisecond, "install": 30 * time.Second}, obs.phases)
			} else {
				assert.Empty(t, obs.phases, "phases are observed for successful deploys only")
			}
		})
	}
}

// TestObserverUnknownStart: a deploy this engine did not start (left in deploying by a previous run) is counted
// as failed with no duration when recovery fails it.
func TestObserverUnknownStart(t *testing.T) {
	obs := &recObserver{phases: map[string]time.Duration{}}
	f := newFixture(t, Config{Observer: obs})
	f.node(t, "deploying")
	require.NoError(t, f.eng.Recover(context.Background()))
	f.eng.Wait() // Recover settles the nodes in the background
	assert.Empty(t, obs.started)
	assert.Equal(t, []finished{{"fake", false, 0}}, obs.finished)
}

// TestObserverHeartbeats: a heartbeat is observed with its refusal (here a wrong token).
func TestObserverHeartbeats(t *testing.T) {
	obs := &recObserver{phases: map[string]time.Duration{}}
	f := newFixture(t, Config{Observer: obs})
	n := f.node(t, "wait call-back")
	err := f.eng.HeartbeatNode(context.Background(), n.UUID, Heartbeat{AgentToken: "wrong"})
	require.ErrorIs(t, err, ErrInvalidInput)
	require.Len(t, obs.beats, 1)
	assert.ErrorIs(t, obs.beats[0], ErrInvalidInput)
}

// TestNoObserver: an engine without an Observer deploys as before (NoObserver).
func TestNoObserver(t *testing.T) {
	f := newFixture(t, Config{})
	n := f.node(t, "available")
	require.NoError(t, f.eng.Provision(context.Background(), n.UUID, ProvisionRequest{Target: "active"}))
	f.eng.Wait()
	got, err := f.st.GetNode(context.Background(), n.UUID)
	require.NoError(t, err)
	assert.Equal(t, "active", got.ProvisionState)
	assert.IsType(t, NoObserver{}, f.eng.obs())
}
