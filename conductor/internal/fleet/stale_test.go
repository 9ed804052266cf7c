package fleet

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/conductor/internal/cluster"
	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// counting is a registry that answers digest for every reference (an error for "bad") and counts the questions.
type counting struct {
	mu     sync.Mutex
	digest string
	asked  map[string]int
}

func (c *counting) resolve(_ context.Context, _ *store.Node, ref string) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.asked[ref]++
	if ref == "bad" {
		return "", errors.New("reg.example: unauthorized")
	}
	return c.digest, nil
}

func (c *counting) count(ref string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.asked[ref]
}

func openStore(t *testing.T) *store.SQL {
	st, err := store.Open(context.Background(), "sqlite://"+filepath.Join(t.TempDir(), "f.db"))
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	return st
}

// TestSharedResolver: two conductors' resolvers share one store. The second answers with the first one's
// resolution without asking the registry; a refresh on one shows on the other once its short local copy ends;
// past the TTL whoever is asked first resolves and stores again; failures are shared, without the secret.
func TestSharedResolver(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	reg := map[string]*counting{"a": {asked: map[string]int{}}, "b": {asked: map[string]int{}}}
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	res := map[string]*Resolver{}
	for name, c := range reg {
		res[name] = NewSharedResolver(c.resolve, time.Minute, st)
		res[name].now = func() time.Time { return now }
	}
	secret := "robot:s3cr3t"
	node := &store.Node{InstanceInfo: map[string]any{"image_pull_secret": secret}}
	steps := []struct {
		name      string
		advance   time.Duration
		registry  string // what the tag names from this step on
		on        string // the conductor asked
		refresh   bool
		digest    string        // the answer
		at        time.Duration // its checked_at, from the start
		rowDigest string        // the stored row
		rowAt     time.Duration
		askedA    int
		askedB    int
	}{
		{name: "a resolves and stores", registry: "sha256:1", on: "a", digest: "sha256:1", rowDigest: "sha256:1", askedA: 1},
		{name: "b answers with a's resolution", registry: "sha256:2", on: "b", digest: "sha256:1", rowDigest: "sha256:1",
			askedA: 1},
		{name: "refresh on a asks again", advance: time.Second, on: "a", refresh: true, digest: "sha256:2", at: time.Second,
			rowDigest: "sha256:2", rowAt: time.Second, askedA: 2},
		{name: "b keeps its copy for localFor", on: "b", digest: "sha256:1", rowDigest: "sha256:2", rowAt: time.Second,
			askedA: 2},
		{name: "then reads the store again", advance: localFor, on: "b", digest: "sha256:2", at: time.Second,
			rowDigest: "sha256:2", rowAt: time.Second, askedA: 2},
		{name: "past the TTL b resolves", advance: time.Minute, registry: "sha256:3", on: "b", digest: "sha256:3",
			at: 66 * time.Second, rowDigest: "sha256:3", rowAt: 66 * time.Second, askedA: 2, askedB: 1},
		{name: "a answers with b's", advance: localFor, on: "a", digest: "sha256:3", at: 66 * time.Second,
			rowDigest: "sha256:3", rowAt: 66 * time.Second, askedA: 2, askedB: 1},
		{name: "refresh on b asks again", on: "b", refresh: true, digest: "sha256:3", at: 71 * time.Second,
			rowDigest: "sha256:3", rowAt: 71 * time.Second, askedA: 2, askedB: 2},
	}
	start := now
	target := Target{Ref: "x", Node: node}
	for _, s := range steps {
		now = now.Add(s.advance)
		if s.registry != "" {
			reg["a"].digest, reg["b"].digest = s.registry, s.registry
		}
		got := res[s.on].Resolve(ctx, target, s.refresh)
		assert.Equal(t, Resolution{Digest: s.digest, CheckedAt: start.Add(s.at)}, got, s.name)
		assert.Equal(t, s.askedA, reg["a"].count("x"), s.name+": registry questions of a")
		assert.Equal(t, s.askedB, reg["b"].count("x"), s.name+": registry questions of b")
		row, err := st.GetBootcResolution(ctx, target.Key())
		require.NoError(t, err, s.name)
		assert.Equal(t, store.BootcResolution{Key: target.Key(), Ref: "x", Digest: s.rowDigest, CheckedAt: start.Add(s.rowAt)},
			*row, s.name+": the stored row")
	}

	failed := res["a"].Resolve(ctx, Target{Ref: "bad", Node: node}, false)
	assert.Equal(t, "reg.example: unauthorized", failed.Err)
	assert.Equal(t, failed, res["b"].Resolve(ctx, Target{Ref: "bad", Node: node}, false), "failures are shared")
	assert.Equal(t, 0, reg["b"].count("bad"))
	row, err := st.GetBootcResolution(ctx, Target{Ref: "bad", Node: node}.Key())
	require.NoError(t, err)
	assert.Equal(t, "reg.example: unauthorized", row.Error)
	assert.NotContains(t, row.Key+row.Ref+row.Error, secret)
	assert.NotContains(t, row.Key+row.Ref+row.Error, "s3cr3t")
}

// TestSharedResolverStaleRow: a stored answer older than the TTL is not used; one resolved with another
// pull secret is another key.
func TestSharedResolverStaleRow(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	c := &counting{digest: "sha256:new", asked: map[string]int{}}
	r := NewSharedResolver(c.resolve, time.Minute, st)
	r.now = func() time.Time { return now }
	alice := Target{Ref: "x", Node: &store.Node{InstanceInfo: map[string]any{"image_pull_secret": "a:1"}}}
	bob := Target{Ref: "x", Node: &store.Node{InstanceInfo: map[string]any{"image_pull_secret": "b:2"}}}
	require.NotEqual(t, alice.Key(), bob.Key())
	require.NoError(t, st.PutBootcResolution(ctx, &store.BootcResolution{Key: alice.Key(), Ref: "x", Digest: "sha256:old",
		CheckedAt: now.Add(-2 * time.Minute)}))
	require.NoError(t, st.PutBootcResolution(ctx, &store.BootcResolution{Key: bob.Key(), Ref: "x", Digest: "sha256:bob",
		CheckedAt: now.Add(-30 * time.Second)}))

	assert.Equal(t, "sha256:new", r.Resolve(ctx, alice, false).Digest, "expired: resolved again")
	assert.Equal(t, "sha256:bob", r.Resolve(ctx, bob, false).Digest, "fresh: used")
	assert.Equal(t, 1, c.count("x"))
	row, err := st.GetBootcResolution(ctx, alice.Key())
	require.NoError(t, err)
	assert.Equal(t, "sha256:new", row.Digest, "written back")
}

// TestRefreshOwned: with two conductors on the ring, the scheduled refresh resolves each reference on exactly
// one of them, both do a share, and the other answers every reference from the store without the registry.
func TestRefreshOwned(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	ring := cluster.NewRing([]string{"cond-a", "cond-b"})
	node := &store.Node{InstanceInfo: map[string]any{"image_pull_secret": "robot:1"}}
	var targets []Target
	for i := range 40 {
		targets = append(targets, Target{Ref: fmt.Sprintf("reg.example/os:%d", i), Node: node})
	}
	hosts := []string{"cond-a", "cond-b"}
	regs := map[string]*counting{}
	res := map[string]*Resolver{}
	done := 0
	for _, h := range hosts {
		regs[h] = &counting{digest: "sha256:1", asked: map[string]int{}}
		res[h] = NewSharedResolver(regs[h].resolve, time.Hour, st)
		n := res[h].refreshOwned(ctx, targets, func(key string) bool { return ring.Owner(key) == h })
		assert.Positive(t, n, "%s owns a share", h)
		assert.Less(t, n, len(targets), "%s owns a share only", h)
		done += n
	}
	assert.Equal(t, len(targets), done)
	for _, tg := range targets {
		assert.Equal(t, 1, regs["cond-a"].count(tg.Ref)+regs["cond-b"].count(tg.Ref), "%s resolved once", tg.Ref)
		owner := ring.Owner(tg.Key())
		assert.Equal(t, 1, regs[owner].count(tg.Ref), "%s resolved by its owner %s", tg.Ref, owner)
		row, err := st.GetBootcResolution(ctx, tg.Key())
		require.NoError(t, err)
		assert.Equal(t, "sha256:1", row.Digest)
	}
	for _, h := range hosts {
		before := len(regs[h].asked)
		for _, tg := range targets {
			assert.Equal(t, "sha256:1", res[h].Resolve(ctx, tg, false).Digest)
		}
		assert.Len(t, regs[h].asked, before, "%s answered from the store", h)
	}

	alone := &counting{digest: "sha256:2", asked: map[string]int{}}
	assert.Equal(t, len(targets), NewSharedResolver(alone.resolve, time.Hour, st).refreshOwned(ctx, targets, nil),
		"no ring (one conductor): it owns everything")
}

// TestRunRefreshesAndPrunes: Run refreshes the owned targets on every tick and deletes resolutions no one has
// refreshed for a day.
func TestRunRefreshesAndPrunes(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st := openStore(t)
	c := &counting{digest: "sha256:1", asked: map[string]int{}}
	r := NewSharedResolver(c.resolve, time.Minute, st)
	require.NoError(t, st.PutBootcResolution(ctx, &store.BootcResolution{Key: "gone", Ref: "reg.example/old:1",
		Digest: "sha256:0", CheckedAt: time.Now().Add(-25 * time.Hour)}))
	node := &store.Node{}
	list := func(context.Context) []Target {
		return []Target{{Ref: "mine", Node: node}, {Ref: "theirs", Node: node}}
	}
	owns := func(key string) bool { return key == Target{Ref: "mine", Node: node}.Key() }
	done := make(chan struct{})
	go func() { r.Run(ctx, 10*time.Millisecond, list, owns); close(done) }()
	require.Eventually(t, func() bool { return c.count("mine") >= 2 }, 10*time.Second, 10*time.Millisecond)
	cancel()
	<-done
	assert.Zero(t, c.count("theirs"), "not owned: never refreshed here")
	_, err := st.GetBootcResolution(context.Background(), "gone")
	require.ErrorIs(t, err, store.ErrNotFound, "pruned")
}
