package conductor

// Membership wiring (issue 17): this conductor's row in the conductors table and its view of the ring.

import (
	"context"
	"fmt"
	"runtime/debug"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/ferric-metal/ferric/conductor/internal/cluster"
	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// joinCluster registers this conductor in the database and returns its view of the membership. SQLite is one
// process's database: there the conductor refuses to start beside another alive one.
func joinCluster(ctx context.Context, cfg Config, host string, st *store.SQL, reg *driver.Registry, log *logrus.Entry) (*cluster.Cluster, error) {
	var drivers []string
	for _, h := range reg.HardwareTypes() {
		drivers = append(drivers, h.Name)
	}
	c, err := cluster.New(cluster.Config{Host: host, Group: cfg.ConductorGroup, Drivers: drivers, Version: buildVersion(),
		HeartbeatInterval: cfg.ConductorHeartbeatInterval, DeadAfter: cfg.ConductorDeadAfter,
		SingleOnly: strings.HasPrefix(cfg.DB, "sqlite://")}, st, log)
	if err != nil {
		return nil, err
	}
	if err := c.Join(ctx); err != nil {
		return nil, fmt.Errorf("join the conductors: %w", err)
	}
	return c, nil
}

// buildVersion names this build for the conductors table: the module version, or the VCS revision it was built
// from (rolling upgrades show which conductors run which release).
func buildVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	rev, dirty := "", false
	for _, kv := range bi.Settings {
		switch kv.Key {
		case "vcs.revision":
			rev = kv.Value
		case "vcs.modified":
			dirty = kv.Value == "true"
		}
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if rev != "" && dirty {
		rev += "-dirty"
	}
	if rev == "" {
		return bi.Main.Version
	}
	return rev
}

// rolloutTick is how often the rollout controller advances the rollouts this conductor owns.
const rolloutTick = 5 * time.Second
