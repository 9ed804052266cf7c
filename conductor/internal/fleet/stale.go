package fleet

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sync"
	"time"

	"github.com/ferric-metal/ferric/conductor/internal/driver/agentdeploy"
	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// The images view's stale check: does the tag a host follows resolve, in the registry, to another digest than
// the one it booted? Answers are kept per reference (and per pull secret and platform: two tenants' secrets
// may see different repositories), refreshed after TTL, on demand, and by Run on a schedule. Conductors sharing
// a database share the answers too (Shared): each reference is refreshed on the schedule by the one conductor
// that owns it, and every conductor answers the images view from the same resolution.

// ResolveFunc asks the registry which digest ref names now for node (its pull secret and platform); the error
// is shown to the operator as the reason a check failed, and stored for the other conductors, so it must not
// hold the secret.
type ResolveFunc func(ctx context.Context, node *store.Node, ref string) (string, error)

// Shared is the part of the store that keeps resolutions for every conductor.
type Shared interface {
	PutBootcResolution(ctx context.Context, r *store.BootcResolution) error
	GetBootcResolution(ctx context.Context, key string) (*store.BootcResolution, error)
	PruneBootcResolutions(ctx context.Context, before time.Time) (int64, error)
}

// localFor is how long a resolver answers from its own copy of a shared resolution before reading the store
// again: long enough that a page listing many images costs one read per tag, short enough that an explicit
// refresh on another conductor shows everywhere within seconds.
const localFor = 5 * time.Second

// pruneAfter is the least age at which Run deletes a shared resolution: no host has followed its tag with that
// secret and platform for that long (a followed one is refreshed every period), and no conductor answers with
// one older than its TTL anyway.
const pruneAfter = 24 * time.Hour

// Resolution is one answer: the digest, or why there is none.
type Resolution struct {
	Digest    string
	Err       string
	CheckedAt time.Time
}

// Target is a reference to check with the node whose credentials (pull secret) and platform resolve it.
type Target struct {
	Ref  string
	Node *store.Node
}

// Key names the target's resolutions: the hex of its cache key, which never holds the secret. The ring decides
// which conductor refreshes it.
func (t Target) Key() string {
	k := cacheKey(t)
	return hex.EncodeToString(k[:])
}

// Resolver keeps resolutions: in the shared store when it has one, and a copy in memory. Safe for concurrent use.
type Resolver struct {
	resolve ResolveFunc
	ttl     time.Duration
	shared  Shared
	now     func() time.Time
	mu      sync.Mutex
	cache   map[[32]byte]entry
}

// entry is a resolution held in memory and until when it is answered from there.
type entry struct {
	res   Resolution
	until time.Time
}

// NewResolver returns a resolver that keeps resolve's answers in memory for ttl (one conductor, tests).
func NewResolver(resolve ResolveFunc, ttl time.Duration) *Resolver {
	return NewSharedResolver(resolve, ttl, nil)
}

// NewSharedResolver returns a resolver that keeps resolve's answers for ttl in shared, the database of every
// conductor: a fresh answer another conductor stored is used as it is, and the registry is asked only when
// there is none. shared nil keeps the answers in memory only.
func NewSharedResolver(resolve ResolveFunc, ttl time.Duration, shared Shared) *Resolver {
	return &Resolver{resolve: resolve, ttl: ttl, shared: shared, now: time.Now, cache: map[[32]byte]entry{}}
}

// cacheKey keys an entry by a digest of the reference, the node's pull secret and its platform: nodes whose
// secrets differ may see different repositories, and the key never holds the secret itself.
func cacheKey(t Target) [32]byte {
	return sha256.Sum256([]byte(fmt.Sprintf("%s\x00%s\x00%v", t.Ref, agentdeploy.PullSecret(t.Node), t.Node.Properties["cpu_arch"])))
}

// Resolve answers with a resolution younger than the TTL (from memory, else from the shared store), else (or
// with refresh) asks the registry and stores the answer for the other conductors. Failures are kept too, so a
// registry that is down is not asked on every page view. The shared store failing degrades to a resolver of
// its own: the answer is then kept in memory for the TTL.
func (r *Resolver) Resolve(ctx context.Context, t Target, refresh bool) Resolution {
	k := cacheKey(t)
	if !refresh {
		if res, ok := r.fresh(ctx, k); ok {
			return res
		}
	}
	// Stored times have microseconds: truncating here answers this conductor's view as the others read it.
	res := Resolution{CheckedAt: r.now().UTC().Truncate(time.Microsecond)}
	if d, err := r.resolve(ctx, t.Node, t.Ref); err != nil {
		res.Err = err.Error()
	} else {
		res.Digest = d
	}
	shared := false
	if r.shared != nil {
		err := r.shared.PutBootcResolution(ctx, &store.BootcResolution{Key: hex.EncodeToString(k[:]), Ref: t.Ref,
			Digest: res.Digest, Error: res.Err, CheckedAt: res.CheckedAt})
		shared = err == nil
	}
	r.remember(k, res, shared)
	return res
}

// fresh returns the resolution of key k if one younger than the TTL is in memory or, past localFor, in the
// shared store.
func (r *Resolver) fresh(ctx context.Context, k [32]byte) (Resolution, bool) {
	now := r.now()
	r.mu.Lock()
	e, ok := r.cache[k]
	r.mu.Unlock()
	if ok && now.Before(e.until) {
		return e.res, true
	}
	if r.shared == nil {
		return Resolution{}, false
	}
	got, err := r.shared.GetBootcResolution(ctx, hex.EncodeToString(k[:]))
	if err != nil { // none yet, or the database is unreachable: resolve here
		return Resolution{}, false
	}
	res := Resolution{Digest: got.Digest, Err: got.Error, CheckedAt: got.CheckedAt}
	if now.Sub(res.CheckedAt) >= r.ttl {
		return Resolution{}, false
	}
	r.remember(k, res, true)
	return res, true
}

// remember keeps res in memory: for the rest of its TTL, or when it is shared for at most localFor, so that
// a newer answer another conductor stores is read soon.
func (r *Resolver) remember(k [32]byte, res Resolution, shared bool) {
	until := res.CheckedAt.Add(r.ttl)
	if local := r.now().Add(localFor); shared && local.Before(until) {
		until = local
	}
	r.mu.Lock()
	r.cache[k] = entry{res: res, until: until}
	r.mu.Unlock()
}

// Run refreshes, every interval until ctx ends, the targets list returns that this conductor owns (owns
// reports it for a target's Key; nil owns them all), so the view answers from warm resolutions and each
// reference is resolved once per period however many conductors share the store. It also prunes the shared
// resolutions no one has refreshed for long.
func (r *Resolver) Run(ctx context.Context, interval time.Duration, list func(ctx context.Context) []Target,
	owns func(key string) bool) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		r.refreshOwned(ctx, list(ctx), owns)
		if r.shared != nil {
			// Errors are left for the next tick: what is not pruned now only takes a little room.
			_, _ = r.shared.PruneBootcResolutions(ctx, r.now().Add(-max(pruneAfter, 2*r.ttl)))
		}
	}
}

// refreshOwned asks the registry again for each target owns reports this conductor owns (nil: all) and returns
// how many it asked for.
func (r *Resolver) refreshOwned(ctx context.Context, targets []Target, owns func(key string) bool) int {
	n := 0
	for _, t := range targets {
		if ctx.Err() != nil {
			break
		}
		if owns != nil && !owns(t.Key()) {
			continue // another conductor refreshes it and stores the answer for this one
		}
		r.Resolve(ctx, t, true)
		n++
	}
	return n
}

// Lister is the part of the store Targets reads.
type Lister interface {
	ListBootcImages(ctx context.Context, digest string) ([]store.BootcImage, error)
	ListBootcNodes(ctx context.Context, digest string, o store.ListOptions) ([]store.BootcNode, error)
	GetNode(ctx context.Context, ident string) (*store.Node, error)
}

// Targets lists what the images view checks: per booted image, each reference its hosts follow with the first
// node following it (whose pull secret and platform resolve it). Read errors end the list early: the next
// scheduled refresh tries again.
func Targets(ctx context.Context, st Lister) []Target {
	imgs, err := st.ListBootcImages(ctx, "")
	if err != nil {
		return nil
	}
	var out []Target
	seen := map[[32]byte]bool{}
	for _, im := range imgs {
		nodes, err := st.ListBootcNodes(ctx, im.Digest, store.ListOptions{})
		if err != nil {
			return out
		}
		for _, bn := range nodes {
			if bn.SpecRef == "" {
				continue
			}
			n, err := st.GetNode(ctx, bn.UUID)
			if err != nil {
				continue
			}
			t := Target{Ref: bn.SpecRef, Node: n}
			if k := cacheKey(t); !seen[k] {
				seen[k] = true
				out = append(out, t)
			}
		}
	}
	return out
}
