package hostd

import (
	"context"
	"crypto/sha256"
	"math/rand/v2"
	"os"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/ferric-metal/ferric/bootchost"
	"github.com/ferric-metal/ferric/hostd/internal/bootc"
	"github.com/ferric-metal/ferric/hostd/internal/client"
	"github.com/ferric-metal/ferric/hostd/internal/hostconfig"
	"github.com/ferric-metal/ferric/hostd/internal/pending"
)

// reporter is one run of the loop. Only the loop's goroutine touches it.
type reporter struct {
	cfg     Config
	hc      bootchost.HostConfig
	cl      *client.Client
	log     *logrus.Entry
	bootc   bootc.Runner
	pending pending.File

	// lastHash and lastReport are the last status the conductor accepted and when.
	lastHash   [32]byte
	lastReport time.Time
	// failures counts consecutive failed polls, for the backoff.
	failures int
}

// loop reports on start, then once per poll: the status when it changed (or ReportInterval passed), the end of
// an action that a reboot completed, and the conductor's desired state. It returns only when ctx ends.
func (r *reporter) loop(ctx context.Context) error {
	r.log.WithField("conductor", r.hc.ConductorURL).Info("ferric-hostd started")
	for {
		wait := r.tick(ctx)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// tick is one round; it returns how long to wait before the next.
func (r *reporter) tick(ctx context.Context) time.Duration {
	// Report first: the conductor must see the new boot's status before it hears that the action is done, so
	// that done and the booted digest it shows agree.
	host, err := r.report(ctx)
	if err == nil && host != nil {
		err = r.finishAfterReboot(ctx, host)
	}
	if err != nil {
		r.log.WithError(err).Warn("reporting to the conductor")
		return r.backoff()
	}
	d, err := r.cl.Desired(ctx)
	if err != nil {
		r.log.WithError(err).Warn("asking the conductor for the desired state")
		return r.backoff()
	}
	// The conductor answered: the next failure backs off from the start again.
	r.failures = 0
	if d.RotateCredential {
		if err := r.rotate(ctx); err != nil {
			r.log.WithError(err).Warn("rotating the reporter credential")
		}
	}
	if d.Action != nil {
		r.act(ctx, *d.Action)
		// The action changed the status: report it now rather than a poll later.
		if _, err := r.report(ctx); err != nil {
			r.log.WithError(err).Warn("reporting to the conductor")
		}
	}
	wait := r.cfg.PollInterval
	if d.PollInterval > 0 {
		wait = time.Duration(d.PollInterval) * time.Second
	}
	return jitter(wait)
}

// report runs `bootc status` and posts it when it changed since the last accepted report or ReportInterval has
// passed. It returns the parsed status (nil when bootc failed: then there is nothing to report, which is logged).
func (r *reporter) report(ctx context.Context) (*bootchost.Host, error) {
	raw, host, err := r.bootc.Status(ctx)
	if err != nil {
		r.log.WithError(err).Warn("bootc status failed; nothing to report")
		return nil, nil
	}
	// The hash of bootc's verbatim output: any change the conductor could show (a staged entry, a cached update,
	// a queued rollback) changes it.
	h := sha256.Sum256(raw)
	if h == r.lastHash && time.Since(r.lastReport) < r.cfg.ReportInterval {
		return host, nil
	}
	rep := bootchost.Report{Status: raw, HostdVersion: r.cfg.Version, BootID: r.bootID()}
	if err := r.cl.Report(ctx, rep); err != nil {
		return host, err
	}
	ref, digest := host.BootedImage()
	r.log.WithFields(logrus.Fields{"booted": ref, "digest": digest, "changed": h != r.lastHash}).Info("reported the bootc status")
	// Only an accepted report counts: a failed one is sent again on the next tick.
	r.lastHash, r.lastReport = h, time.Now()
	return host, nil
}

// rotate fetches a new credential, stores it (atomically, before any use: the conductor keeps the old one valid
// until the new one is first used, so a lost answer or a failed write costs nothing), then switches to it.
func (r *reporter) rotate(ctx context.Context) error {
	cred, err := r.cl.Rotate(ctx)
	if err != nil {
		return err
	}
	hc := r.hc
	hc.Credential = cred
	if err := hostconfig.Save(r.cfg.ConfigPath, hc); err != nil {
		return err
	}
	r.hc = hc
	r.cl.SetCredential(cred)
	r.log.Info("rotated the reporter credential")
	return nil
}

// bootID is the kernel's id of this boot; "" when unreadable (the conductor then cannot tell a reboot).
func (r *reporter) bootID() string {
	b, err := os.ReadFile(r.cfg.BootIDPath)
	if err != nil {
		r.log.WithError(err).Warn("reading the boot id")
		return ""
	}
	return strings.TrimSpace(string(b))
}

// backoff is the wait after the failures-th consecutive failure: exponential from BackoffBase, capped at
// BackoffMax, jittered so a fleet that lost its conductor does not come back in step.
func (r *reporter) backoff() time.Duration {
	r.failures++
	d := r.cfg.BackoffBase
	for i := 1; i < r.failures && d < r.cfg.BackoffMax; i++ {
		d *= 2
	}
	return min(jitter(d), r.cfg.BackoffMax)
}

// jitter spreads d over [0.8 d, 1.2 d).
func jitter(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}
