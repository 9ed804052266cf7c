package fleet

import (
	"context"
	"crypto/sha256"
	"fmt"
	"sync"
	"time"

	"github.com/ferric-metal/ferric/conductor/internal/driver/agentdeploy"
	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// The images view's stale check: does the tag a host follows resolve, in the registry, to another digest than
// the one it booted? Answers are cached per reference (and per pull secret and platform: two tenants' secrets
// may see different repositories), refreshed after TTL, on demand, and by Run on a schedule.

// ResolveFunc asks the registry which digest ref names now for node (its pull secret and platform); the error
// is shown to the operator as the reason a check failed, so it must not hold the secret.
type ResolveFunc func(ctx context.Context, node *store.Node, ref string) (string, error)

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

// Resolver caches resolutions. Safe for concurrent use.
type Resolver struct {
	resolve ResolveFunc
	ttl     time.Duration
	now     func() time.Time
	mu      sync.Mutex
	cache   map[[32]byte]Resolution
}

// NewResolver returns a cache of resolve's answers kept for ttl.
func NewResolver(resolve ResolveFunc, ttl time.Duration) *Resolver {
	return &Resolver{resolve: resolve, ttl: ttl, now: time.Now, cache: map[[32]byte]Resolution{}}
}

// cacheKey keys an entry by a digest of the reference, the node's pull secret and its platform: nodes whose
// secrets differ may see different repositories, and the key never holds the secret itself.
func cacheKey(t Target) [32]byte {
	return sha256.Sum256([]byte(fmt.Sprintf("%s\x00%s\x00%v", t.Ref, agentdeploy.PullSecret(t.Node), t.Node.Properties["cpu_arch"])))
}

// Resolve answers from the cache while the answer is younger than the TTL, else (or with refresh) asks the
// registry. Failures are cached too, so a registry that is down is not asked on every page view.
func (r *Resolver) Resolve(ctx context.Context, t Target, refresh bool) Resolution {
	k := cacheKey(t)
	r.mu.Lock()
	got, ok := r.cache[k]
	r.mu.Unlock()
	if ok && !refresh && r.now().Sub(got.CheckedAt) < r.ttl {
		return got
	}
	res := Resolution{CheckedAt: r.now().UTC()}
	if d, err := r.resolve(ctx, t.Node, t.Ref); err != nil {
		res.Err = err.Error()
	} else {
		res.Digest = d
	}
	r.mu.Lock()
	r.cache[k] = res
	r.mu.Unlock()
	return res
}

// Run refreshes the targets list returns every interval until ctx ends, so the view answers from a warm cache.
func (r *Resolver) Run(ctx context.Context, interval time.Duration, list func(ctx context.Context) []Target) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		for _, t := range list(ctx) {
			if ctx.Err() != nil {
				return
			}
			r.Resolve(ctx, t, true)
		}
	}
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
