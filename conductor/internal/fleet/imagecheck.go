package fleet

import (
	"context"
	"time"

	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// FollowedCheck is the stale check of one reference an image's hosts follow.
type FollowedCheck struct {
	Ref string
	// Digest is what Ref resolves to now ("" when it could not be resolved; Err says why).
	Digest    string
	Err       string
	CheckedAt time.Time
	// Stale is nil when Ref could not be resolved, else whether it now names another digest than the booted one.
	Stale *bool
}

// ImageCheck is the stale verdict of one booted image: Stale is true when a followed tag moved, nil (with Reason)
// when none moved but one could not be resolved or the hosts follow no registry image, else false.
type ImageCheck struct {
	Followed []FollowedCheck
	Stale    *bool
	Reason   string
}

// CheckImage resolves each reference the image's hosts follow (once per reference, with the pull secret and
// platform of the first node following it) and compares it with the booted digest. res nil: nothing is resolved
// and every reference is unknown. The API's images view and the web page both answer with it, so they agree.
func CheckImage(ctx context.Context, st Lister, res *Resolver, digest string, nodes []store.BootcNode, refresh bool) ImageCheck {
	var out ImageCheck
	seen := map[string]bool{}
	moved, unknown := false, ""
	for _, bn := range nodes {
		if bn.SpecRef == "" || seen[bn.SpecRef] {
			continue
		}
		seen[bn.SpecRef] = true
		r := resolveFollowed(ctx, st, res, bn, refresh)
		fc := FollowedCheck{Ref: bn.SpecRef, Digest: r.Digest, Err: r.Err, CheckedAt: r.CheckedAt}
		if r.Err != "" {
			if unknown == "" {
				unknown = bn.SpecRef + ": " + r.Err
			}
		} else {
			s := r.Digest != digest
			fc.Stale = &s
			moved = moved || s
		}
		out.Followed = append(out.Followed, fc)
	}
	switch {
	case moved:
		t := true
		out.Stale = &t
	case len(seen) == 0:
		out.Reason = "its hosts follow no registry image (bootc status shows no spec.image of transport registry)"
	case unknown != "":
		out.Reason = unknown
	default:
		f := false
		out.Stale = &f
	}
	return out
}

// resolveFollowed asks res for the node's followed reference with the node's credentials; the node is read whole
// for its pull secret and platform, which only the body holds.
func resolveFollowed(ctx context.Context, st Lister, res *Resolver, bn store.BootcNode, refresh bool) Resolution {
	if res == nil {
		return Resolution{Err: "this conductor resolves no image tags", CheckedAt: time.Now().UTC()}
	}
	n, err := st.GetNode(ctx, bn.UUID)
	if err != nil {
		return Resolution{Err: "node " + bn.UUID + " is gone", CheckedAt: time.Now().UTC()}
	}
	return res.Resolve(ctx, Target{Ref: bn.SpecRef, Node: n}, refresh)
}
