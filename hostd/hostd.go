// Package hostd is ferric-hostd, the pull-based day-2 reporter inside deployed image-mode (bootc) hosts. It
// reports `bootc status` to the conductor (on start, on change, and at least every ReportInterval), polls the
// conductor for the next action (upgrade, switch, rollback) and runs it with bootc, reporting its progress, and
// rotates its credential on request. It opens no port: every exchange is a call it makes (package bootchost is
// the protocol). Only Config and Run are public; the parts live under internal/.
package hostd

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/ferric-metal/ferric/hostd/internal/bootc"
	"github.com/ferric-metal/ferric/hostd/internal/client"
	"github.com/ferric-metal/ferric/hostd/internal/hostconfig"
	"github.com/ferric-metal/ferric/hostd/internal/pending"
)

// Config is ferric-hostd's configuration; the zero value of each field means its default.
type Config struct {
	// ConfigPath is the reporter's configuration (bootchost.HostConfig), mode 0600 (default /etc/ferric/hostd.json).
	ConfigPath string
	// ByLabelDir is where the config drive is looked up by label on first start (default /dev/disk/by-label).
	ByLabelDir string
	// StateDir keeps the action in flight across a reboot (default /var/lib/ferric-hostd).
	StateDir string
	// BootIDPath is the kernel's boot id (default /proc/sys/kernel/random/boot_id).
	BootIDPath string
	// Bootc is the bootc binary (default "bootc" on PATH); BootcEnv is added to its environment.
	Bootc    string
	BootcEnv []string
	// StatusTimeout bounds `bootc status` (default 2 min); CommandTimeout bounds upgrade, switch and rollback,
	// which pull the image (default 1 h).
	StatusTimeout, CommandTimeout time.Duration
	// RebootCommand reboots the host into the staged deployment (default systemctl reboot).
	RebootCommand []string
	// ReportInterval is the longest time between two reports when nothing changes (default 15 min).
	ReportInterval time.Duration
	// PollInterval is used when the conductor's answer names none (default 60 s).
	PollInterval time.Duration
	// BackoffBase and BackoffMax shape the jittered exponential backoff after failed calls (defaults 2 s, 5 min).
	BackoffBase, BackoffMax time.Duration
	// HTTPTimeout bounds each call to the conductor (default 30 s).
	HTTPTimeout time.Duration
	// Version is the build, reported to the conductor.
	Version string
}

func (c *Config) defaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	str := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	str(&c.ConfigPath, "/etc/ferric/hostd.json")
	str(&c.ByLabelDir, "/dev/disk/by-label")
	str(&c.StateDir, "/var/lib/ferric-hostd")
	str(&c.BootIDPath, "/proc/sys/kernel/random/boot_id")
	str(&c.Bootc, "bootc")
	str(&c.Version, "dev")
	def(&c.StatusTimeout, 2*time.Minute)
	def(&c.CommandTimeout, time.Hour)
	def(&c.ReportInterval, 15*time.Minute)
	def(&c.PollInterval, time.Minute)
	def(&c.BackoffBase, 2*time.Second)
	def(&c.BackoffMax, 5*time.Minute)
	def(&c.HTTPTimeout, 30*time.Second)
	if len(c.RebootCommand) == 0 {
		c.RebootCommand = []string{"systemctl", "reboot"}
	}
}

// Run reads the configuration (copying it from the config drive on first start) and reports and polls until
// ctx ends. A configuration it cannot use is returned at once; conductor and bootc failures are retried.
func Run(ctx context.Context, cfg Config, log *logrus.Entry) error {
	cfg.defaults()
	hc, fromDrive, err := hostconfig.LoadOrInstall(ctx, cfg.ConfigPath, cfg.ByLabelDir)
	if err != nil {
		return err
	}
	if fromDrive {
		log.WithField("path", cfg.ConfigPath).Info("copied the reporter configuration from the config drive")
	}
	cl, err := client.New(hc, cfg.HTTPTimeout)
	if err != nil {
		return fmt.Errorf("%s: %w", cfg.ConfigPath, err)
	}
	r := &reporter{
		cfg: cfg, hc: hc, cl: cl,
		log:     log.WithField("node", hc.NodeUUID),
		bootc:   bootc.Runner{Path: cfg.Bootc, Env: cfg.BootcEnv, StatusTimeout: cfg.StatusTimeout, CommandTimeout: cfg.CommandTimeout},
		pending: pending.File(filepath.Join(cfg.StateDir, "action.json")),
	}
	// The loop ends only with ctx: a stop, not a failure.
	_ = r.loop(ctx)
	return nil
}
