package engine

import (
	"context"
	"encoding/json"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// ownerRing is a ring whose owners the test sets per node; self is the conductor asking.
type ownerRing struct {
	self   string
	mu     *sync.Mutex
	owners map[string]string
}

func (r ownerRing) Owns(uuid, _ string) bool { return r.Owner(uuid, "") == r.self }
func (r ownerRing) Dead() []string           { return nil }
func (r ownerRing) Owner(uuid, _ string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.owners[uuid]
}

// TestHandOff: conductor h1 answers API calls for nodes conductor h2 drives. A job queued while h2 was down is
// run once h2 starts (durable); a power request through h1 is done by h2 and answered 202-style; h2's refusals
// reach h1's caller as the same error class and text (invalid state, locked); a request for a conductor that
// never takes it is withdrawn after the hand-off time-out with a retryable error, and nothing changes.
func TestHandOff(t *testing.T) {
	ctx := context.Background()
	owners := map[string]string{}
	mu := &sync.Mutex{}
	f := newFixture(t, Config{Ring: ownerRing{self: "h1", mu: mu, owners: owners}, HandOffTimeout: time.Second})
	l := logrus.New()
	l.SetOutput(io.Discard)
	h2 := New(Config{Host: "h2", Ring: ownerRing{self: "h2", mu: mu, owners: owners}, JobPollInterval: 50 * time.Millisecond},
		f.st, f.eng.reg, logrus.NewEntry(l))
	own := func(n *store.Node, host string) {
		mu.Lock()
		owners[n.UUID] = host
		mu.Unlock()
	}
	powerOf := func(n *store.Node) string {
		ps, err := f.power.PowerState(ctx, n)
		require.NoError(t, err)
		return ps
	}

	// Queued while h2 was down (its requester gone too): h2 takes it when it starts.
	early := f.node(t, "manageable")
	own(early, "h2")
	args, err := json.Marshal(powerArgs{Target: driver.PowerOn})
	require.NoError(t, err)
	require.NoError(t, f.st.CreateJob(ctx, &store.Job{ID: "early", NodeUUID: early.UUID, Kind: jobPower, Args: args, RequestedBy: "gone"}))
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = h2.Run(runCtx) }()
	t.Cleanup(func() { stop(); <-done })
	require.Eventually(t, func() bool { return powerOf(early) == driver.PowerOn }, 10*time.Second, 50*time.Millisecond)
	require.Eventually(t, func() bool {
		j, err := f.st.GetJob(ctx, "early")
		return err == nil && j.ClaimedBy == "h2" && j.State == store.JobAccepted
	}, 10*time.Second, 50*time.Millisecond, "h2 claimed the job and answered it")

	// A power request through h1 is done by h2.
	n := f.node(t, "manageable")
	own(n, "h2")
	require.NoError(t, f.eng.SetPower(ctx, n.UUID, driver.PowerOn, 0))
	require.Eventually(t, func() bool { return powerOf(n) == driver.PowerOn }, 10*time.Second, 50*time.Millisecond)

	// h2's refusals come back as h1's errors.
	enroll := f.node(t, "enroll")
	own(enroll, "h2")
	err = f.eng.Provision(ctx, enroll.UUID, ProvisionRequest{Target: "active"})
	require.ErrorIs(t, err, ErrInvalidState)
	assert.Contains(t, err.Error(), `The requested action "active" can not be performed on node "`+enroll.UUID+`" while it is in state "enroll".`)
	_, err = f.st.Reserve(ctx, n.UUID, "someone")
	require.NoError(t, err)
	err = f.eng.SetPower(ctx, n.UUID, driver.PowerOff, 0)
	var le *store.LockedError
	require.ErrorAs(t, err, &le)
	assert.Equal(t, "someone", le.Holder)
	require.NoError(t, f.st.Release(ctx, n.UUID, "someone"))

	// An owner that never takes the request: withdrawn, retryable, nothing changed.
	lost := f.node(t, "manageable")
	own(lost, "h3")
	start := time.Now()
	err = f.eng.SetPower(ctx, lost.UUID, driver.PowerOn, 0)
	require.ErrorIs(t, err, ErrTemporary)
	assert.Contains(t, err.Error(), "Conductor h3, which drives node "+lost.UUID+", did not take the request within 1s")
	assert.Less(t, time.Since(start), 5*time.Second)
	queued, err := f.st.ListQueuedJobs(ctx)
	require.NoError(t, err)
	assert.Empty(t, queued, "the withdrawn request is not left for h3 to run later")
	got, err := f.st.GetNode(ctx, lost.UUID)
	require.NoError(t, err)
	assert.Empty(t, got.TargetPowerState)
	assert.NotEqual(t, driver.PowerOn, powerOf(lost))

	// The node h1 drives itself never goes through a job.
	mine := f.node(t, "manageable")
	own(mine, "h1")
	require.NoError(t, f.eng.SetPower(ctx, mine.UUID, driver.PowerOn, 0))
	f.eng.Wait()
	assert.Equal(t, driver.PowerOn, powerOf(mine))
}

// TestJobErrorRoundTrip: every error class survives the trip through the job row.
func TestJobErrorRoundTrip(t *testing.T) {
	for _, k := range jobErrorKinds {
		t.Run(k.name, func(t *testing.T) {
			kind, msg := encodeJobError(wrapf("Node x is bad.", k.err))
			got := decodeJobAnswer(&store.Job{NodeUUID: "x", State: store.JobRefused, ErrorKind: kind, ErrorMessage: msg})
			assert.ErrorIs(t, got, k.err)
			assert.Equal(t, "Node x is bad.: "+k.err.Error(), got.Error())
		})
	}
	kind, msg := encodeJobError(&store.LockedError{Node: "x", Holder: "h9"})
	got := decodeJobAnswer(&store.Job{NodeUUID: "x", State: store.JobRefused, ErrorKind: kind, ErrorMessage: msg})
	var le *store.LockedError
	require.ErrorAs(t, got, &le)
	assert.Equal(t, "h9", le.Holder)
	assert.NoError(t, decodeJobAnswer(&store.Job{State: store.JobAccepted}))
	assert.ErrorIs(t, decodeJobAnswer(&store.Job{State: store.JobCancelled}), ErrTemporary)
}

func wrapf(msg string, err error) error { return &wrapped{msg, err} }

type wrapped struct {
	msg string
	err error
}

func (w *wrapped) Error() string { return w.msg + ": " + w.err.Error() }
func (w *wrapped) Unwrap() error { return w.err }

// TestJobHubDeliver: an announcement wakes only the conductor it names, an answer only its waiting request.
func TestJobHubDeliver(t *testing.T) {
	h := newJobHub("h1")
	waiting := h.wait("j9")
	for _, tc := range []struct {
		payload string
		claim   string // the id handed to the runner, "" for none
		answer  bool
	}{
		{payload: "queued:h1:j1", claim: "j1"},
		{payload: "queued:h2:j2"},
		{payload: "queued:j3"},
		{payload: `finished:{"id":"j9","state":"accepted"}`, answer: true},
		{payload: `finished:{"id":"j8"}`},
		{payload: "finished:j9"},
		{payload: "garbage"},
	} {
		t.Run(tc.payload, func(t *testing.T) {
			h.deliver(tc.payload)
			select {
			case id := <-h.claims:
				assert.Equal(t, tc.claim, id)
			default:
				assert.Empty(t, tc.claim, "nothing handed to the runner")
			}
			select {
			case got := <-waiting:
				assert.True(t, tc.answer)
				assert.Equal(t, store.JobAccepted, got.State, "the answer travels in the announcement")
			default:
				assert.False(t, tc.answer, "the waiting request was not woken")
			}
		})
	}
}
