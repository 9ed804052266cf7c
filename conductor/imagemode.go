package conductor

// Image-mode host wiring (issue 18): the stale check of the images view, and the ferric-hostd binary a conductor
// serves to hosts that install it through cloud-init (instance_info.bootc_install_hostd, --hostd-binary).

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/ferric-metal/ferric/conductor/internal/driver/agentdeploy"
	"github.com/ferric-metal/ferric/conductor/internal/fleet"
	"github.com/ferric-metal/ferric/conductor/internal/store"
	"github.com/ferric-metal/ferric/images"
)

// hostdChecksum reads the ferric-hostd binary the conductor serves (--hostd-binary) and returns its SHA-256, the
// pin deploys put in the vendor data; "" when none is configured. An unreadable file stops the start.
func hostdChecksum(path string) (string, error) {
	if path == "" {
		return "", nil
	}
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("--hostd-binary: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("--hostd-binary %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// startStaleCheck builds the images view's tag resolver (the deploy's registry rules: pull secret, platform,
// aliases, trust, policy), whose answers every conductor of the database shares, and refreshes in the background
// until ctx ends the followed tags this conductor owns (owns: the ring's owner of a resolution's key), so the
// fleet asks the registry once per tag and period, not once per conductor.
func startStaleCheck(ctx context.Context, cfg Config, st store.Store, policy *images.Policy,
	owns func(key string) bool) *fleet.Resolver {
	registries := agentdeploy.Registry{Insecure: cfg.InsecureRegistries, Aliases: cfg.RegistryAliases, Trust: cfg.Registries.Trust,
		Policy: policy}
	ttl := cfg.BootcStaleTTL
	if ttl <= 0 {
		ttl = 10 * time.Minute
	}
	r := fleet.NewSharedResolver(func(ctx context.Context, n *store.Node, ref string) (string, error) {
		im, err := registries.Identify(ctx, n, "oci://"+ref, false)
		if err != nil {
			return "", err
		}
		return im.Digest, nil
	}, ttl, st)
	every := cfg.BootcStaleRefresh
	if every == 0 {
		every = ttl
	}
	if every > 0 {
		go r.Run(ctx, every, func(ctx context.Context) []fleet.Target { return fleet.Targets(ctx, st) }, owns)
	}
	return r
}
