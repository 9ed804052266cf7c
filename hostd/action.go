package hostd

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/ferric-metal/ferric/bootchost"
	"github.com/ferric-metal/ferric/hostd/internal/bootc"
	"github.com/ferric-metal/ferric/hostd/internal/pending"
)

// act runs one action the conductor handed out. An action already in flight (the same id, staged or rebooting on
// this boot) is not run again: a staged one only goes on to the reboot once the conductor allows it.
func (r *reporter) act(ctx context.Context, a bootchost.Action) {
	log := r.log.WithFields(logrus.Fields{"action": a.ID, "kind": a.Kind})
	p, err := r.pending.Load()
	if err != nil {
		log.WithError(err).Warn("reading the action in flight")
	}
	if p != nil && p.BootID == r.bootID() {
		switch {
		case p.ID == a.ID && p.State == bootchost.StateStaged && a.RebootAllowed:
			p.Group = rebootGroup(a) // the conductor's word on the group is the latest
			r.reboot(ctx, log, *p)
			return
		case p.ID == a.ID || p.State == bootchost.StateRebooting:
			// Waiting for the conductor's leave to reboot, or for the reboot itself.
			return
		}
	}
	// A new action (or one a crash interrupted before it was staged: bootc's commands are idempotent enough to
	// run again, an upgrade of a staged image stages nothing new).
	r.update(ctx, log, a.ID, bootchost.StateRunning, "")
	expect, err := r.execute(ctx, log, a)
	if err != nil {
		log.WithError(err).Warn("the action failed")
		// The conductor shows bootc's own words (what the operator would have seen at the console), not hostd's
		// wrapping of them.
		msg := err.Error()
		var be *bootc.Error
		if errors.As(err, &be) && be.Stderr != "" {
			msg = be.Stderr
		}
		r.update(ctx, log, a.ID, bootchost.StateFailed, msg)
		return
	}
	if expect == "" {
		// Nothing staged (no update available, the same image, a queued rollback reverted): nothing to reboot into.
		r.update(ctx, log, a.ID, bootchost.StateDone, "")
		return
	}
	// Recorded before staged is reported: if the host reboots for any reason from here on, the next boot can
	// still tell the conductor how the action ended.
	p = &pending.Action{ID: a.ID, Kind: a.Kind, State: bootchost.StateStaged, BootID: r.bootID(), Expect: expect,
		Group: rebootGroup(a)}
	if err := r.pending.Save(*p); err != nil {
		r.update(ctx, log, a.ID, bootchost.StateFailed, fmt.Sprintf("recording the staged action: %v", err))
		return
	}
	r.update(ctx, log, a.ID, bootchost.StateStaged, "")
	if a.RebootAllowed {
		r.reboot(ctx, log, *p)
	}
}

// execute runs bootc for a and returns the digest the next boot will run ("" when nothing was staged). The
// reboot is hostd's, not bootc's --apply, so it happens only when the conductor allows it.
func (r *reporter) execute(ctx context.Context, log *logrus.Entry, a bootchost.Action) (string, error) {
	var args []string
	switch a.Kind {
	case bootchost.ActionUpgrade:
		args = []string{"upgrade"}
	case bootchost.ActionSwitch:
		if a.Image == "" {
			return "", errors.New("switch action without an image")
		}
		// The conductor pins the image by digest when it queues the switch, so what is staged is what was asked
		// for even if the tag moves meanwhile.
		args = []string{"switch", "--transport", "registry", a.Image}
	case bootchost.ActionRollback:
		args = []string{"rollback"}
	default:
		return "", fmt.Errorf("unknown action kind %q (this ferric-hostd knows upgrade, switch, rollback; update it)", a.Kind)
	}
	out, err := r.bootc.Run(ctx, args...)
	if err != nil {
		return "", err
	}
	log.WithField("bootc", strings.TrimSpace(out)).Info("bootc " + args[0])
	_, host, err := r.bootc.Status(ctx)
	if err != nil {
		return "", fmt.Errorf("bootc status after bootc %s: %w", args[0], err)
	}
	// What the next boot must run: for a rollback, the rollback deployment bootc queued (none when the command
	// reverted an earlier queued rollback); otherwise the staged one (none when there was no update).
	if a.Kind == bootchost.ActionRollback {
		if !host.Status.RollbackQueued {
			return "", nil
		}
		_, d := host.RollbackImage()
		return d, nil
	}
	_, d := host.StagedImage()
	return d, nil
}

// reboot records that the reboot is under way (so the next boot can finish the action), reports it and runs
// the reboot command. The command normally ends this process; if it fails, the action fails.
func (r *reporter) reboot(ctx context.Context, log *logrus.Entry, p pending.Action) {
	// The conductor allowed the reboot; the FleetLock slot is still taken here, as Zincati takes it, so that the
	// group's limit holds for every client of the lock manager. Refused: stay staged and ask at the next poll.
	if err := r.cl.PreReboot(ctx, groupOf(p)); err != nil {
		log.WithError(err).WithField("group", groupOf(p)).Warn("no reboot slot yet; staying staged")
		return
	}
	p.State = bootchost.StateRebooting
	if err := r.pending.Save(p); err != nil {
		r.update(ctx, log, p.ID, bootchost.StateFailed, fmt.Sprintf("recording the reboot: %v", err))
		return
	}
	r.update(ctx, log, p.ID, bootchost.StateRebooting, "")
	log.WithField("command", strings.Join(r.cfg.RebootCommand, " ")).Info("rebooting into the staged deployment")
	// systemctl reboot returns once the job is queued; the shutdown then stops this service. The bound is for a
	// reboot command that hangs.
	cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(cctx, r.cfg.RebootCommand[0], r.cfg.RebootCommand[1:]...).CombinedOutput()
	// A command killed because hostd is stopping (the shutdown itself) is not a failure.
	if err != nil && ctx.Err() == nil {
		_ = r.pending.Clear()
		r.update(ctx, log, p.ID, bootchost.StateFailed, fmt.Sprintf("the reboot command %q failed: %v: %s",
			strings.Join(r.cfg.RebootCommand, " "), err, bootc.Trim(string(out))))
	}
}

// finishAfterReboot ends the action in flight once a boot other than the one it was staged on has reported:
// done when the host booted the expected digest, failed otherwise (the bootloader fell back, or the host was
// rolled back by hand).
func (r *reporter) finishAfterReboot(ctx context.Context, host *bootchost.Host) error {
	p, err := r.pending.Load()
	if err != nil || p == nil {
		return err
	}
	if p.BootID == r.bootID() {
		return nil
	}
	log := r.log.WithFields(logrus.Fields{"action": p.ID, "kind": p.Kind})
	ref, booted := host.BootedImage()
	u := bootchost.ActionUpdate{State: bootchost.StateDone, At: time.Now().UTC()}
	if booted != p.Expect {
		u.State = bootchost.StateFailed
		u.Error = fmt.Sprintf("after the reboot the host runs %s (%s), not the staged %s", ref, booted, p.Expect)
	}
	if err := r.cl.Action(ctx, p.ID, u); err != nil {
		return err
	}
	log.WithFields(logrus.Fields{"state": u.State, "digest": booted}).Info("the action's reboot is over")
	// The slot goes back once the new boot runs (Zincati's steady-state). A failure is only logged: the conductor
	// frees the slot of an action that ended anyway.
	if err := r.cl.SteadyState(ctx, groupOf(*p)); err != nil {
		log.WithError(err).Warn("could not give the reboot slot back (the conductor frees it as the action ended)")
	}
	return r.pending.Clear()
}

// rebootGroup is the FleetLock group of action a.
func rebootGroup(a bootchost.Action) string {
	if a.RebootGroup == "" {
		return bootchost.DefaultRebootGroup
	}
	return a.RebootGroup
}

// groupOf is the FleetLock group of an action in flight (one recorded before the group was, the default).
func groupOf(p pending.Action) string {
	if p.Group == "" {
		return bootchost.DefaultRebootGroup
	}
	return p.Group
}

// update reports an action's progress, retrying a few times: the conductor must learn of staged and rebooting
// before the reboot cuts the host off. A report that still fails is logged; the next boot's report and the
// final state tell the conductor the rest.
func (r *reporter) update(ctx context.Context, log *logrus.Entry, id, state, msg string) {
	u := bootchost.ActionUpdate{State: state, Error: msg, At: time.Now().UTC()}
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		if err = r.cl.Action(ctx, id, u); err == nil {
			log.WithField("state", state).Info("reported the action's progress")
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(r.cfg.BackoffBase << attempt):
		}
	}
	log.WithError(err).WithField("state", state).Warn("reporting the action's progress")
}
