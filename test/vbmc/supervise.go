package vbmc

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/ferric-metal/ferric/hostsweep"
)

// This file makes the BMC behave like one when things go wrong: it finds again the QEMU it started after being
// killed (a PID record with the process's start time and executable, so that a recycled PID is never taken for
// it), and it acts on a VM's exit as a machine would: a guest reboot restarts the VM (QEMU runs with -no-reboot,
// so that each boot honours the current boot override and media), a guest power-off records the intent Off.

// pidFile, in the VM's state directory, records the running QEMU.
const pidFile = "qemu.pid.json"

// pidRecord identifies a process beyond its PID, which the kernel recycles.
type pidRecord struct {
	PID       int    `json:"pid"`
	StartTime string `json:"start_time"` // field 22 of /proc/PID/stat: clock ticks after boot
	Exe       string `json:"exe"`
}

// Exit reasons a Process may report (ExitReasoner), after QEMU's SHUTDOWN event reasons.
const (
	ExitGuestReset    = "guest-reset"    // the guest rebooted (QEMU exits on it with -no-reboot)
	ExitGuestShutdown = "guest-shutdown" // the guest powered off (ACPI off)
)

// ExitReasoner is implemented by processes that know why they exited (ExitGuestReset, ExitGuestShutdown, or
// another QEMU ShutdownCause); "" means unknown (a crash, a kill from outside).
type ExitReasoner interface {
	ExitReason() string
}

// PIDer is implemented by processes the BMC can find again after a restart of its own.
type PIDer interface {
	PID() int
}

// procIdentity is a process's start time and executable (hostsweep.ProcIdentity); a zombie (exited, not yet
// reaped) counts as gone, since a QEMU that has exited is no VM to adopt.
func procIdentity(pid int) (start, exe string, err error) {
	start, exe, state, err := hostsweep.ProcIdentity(pid)
	if err == nil && (state == "Z" || state == "X") {
		return "", "", fmt.Errorf("pid %d has exited", pid)
	}
	return start, exe, err
}

// recordPID writes the started process's identity into the VM's directory. Called with m.mu held.
func (b *BMC) recordPID(m *vm, p Process) {
	pp, ok := p.(PIDer)
	if !ok {
		return
	}
	rec := pidRecord{PID: pp.PID()}
	var err error
	if rec.StartTime, rec.Exe, err = procIdentity(rec.PID); err == nil {
		data, _ := json.Marshal(rec)
		err = os.WriteFile(filepath.Join(m.dir, pidFile), data, 0o600)
	}
	if err != nil {
		b.log.WithError(err).WithField("vm", m.cfg.Name).Warn("could not record the QEMU PID: a restarted BMC will not find this VM")
	}
}

// forgetPID removes the record of a process that has ended.
func forgetPID(dir string) { os.Remove(filepath.Join(dir, pidFile)) }

// errStale says the recorded PID is no longer the process that was started.
var errStale = errors.New("not the QEMU started for this VM")

// recorded returns the process in dir's PID record if it still runs (same start time and executable).
func recorded(dir string) (pidRecord, error) {
	var rec pidRecord
	data, err := os.ReadFile(filepath.Join(dir, pidFile))
	if err != nil {
		return rec, err
	}
	if err := json.Unmarshal(data, &rec); err != nil || rec.PID <= 1 || rec.StartTime == "" || rec.Exe == "" {
		return rec, fmt.Errorf("%s is malformed: %w", pidFile, errStale)
	}
	start, exe, err := procIdentity(rec.PID)
	if err != nil {
		return rec, fmt.Errorf("pid %d: %v: %w", rec.PID, err, errStale)
	}
	if start != rec.StartTime || exe != rec.Exe {
		return rec, fmt.Errorf("pid %d is %s started at tick %s, QEMU was %s started at tick %s: %w", rec.PID, exe, start, rec.Exe, rec.StartTime, errStale)
	}
	return rec, nil
}

// adopt takes over a QEMU a previous BMC started and left running (it was killed), and forgets a stale record.
// Called with m.mu held, before serving.
func (b *BMC) adopt(m *vm) {
	rec, err := recorded(m.dir)
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	log := b.log.WithField("vm", m.cfg.Name)
	if err != nil {
		log.WithError(err).Info("forgetting a QEMU that no longer runs")
		forgetPID(m.dir)
		return
	}
	p := &adoptedProc{rec: rec, qmp: filepath.Join(m.dir, "qmp.sock"), done: make(chan struct{})}
	p.events = watchEvents(eventsSocket(m.dir))
	go p.poll()
	m.proc, m.stopping = p, false
	if !m.state.PowerOn {
		log.Warn("adopted a running QEMU whose recorded power intent was Off: showing it On, as it is")
	}
	log.WithField("pid", rec.PID).Info("adopted the QEMU a previous ferric-vbmc started")
	go b.supervise(m, p)
}

// supervise acts on p's exit as a machine would. An exit the BMC caused (stopping) or its own shutdown changes
// nothing. A guest reboot restarts the VM while the intent is On (honouring a pending one-time boot override);
// a guest power-off, or an exit for an unknown reason (a crash, a kill from outside), records the intent Off so
// that the BMC tells the truth and does not power the VM on again at its next start.
func (b *BMC) supervise(m *vm, p Process) {
	<-p.Done()
	reason := ""
	if r, ok := p.(ExitReasoner); ok {
		reason = r.ExitReason()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.proc != p || m.stopping || b.ctx.Err() != nil {
		return
	}
	forgetPID(m.dir)
	log := b.log.WithField("vm", m.cfg.Name).WithField("reason", reason)
	if reason == ExitGuestReset && m.state.PowerOn {
		log.Info("guest rebooted: starting the VM again")
		if err := b.start(m); err != nil {
			log.WithError(err).Error("could not restart the VM after a guest reboot: it stays off")
			m.state.PowerOn = false
			b.save(m)
		}
		return
	}
	if reason != ExitGuestShutdown {
		log.Warn("VM exited without a power-off by the guest or the BMC (crash or external kill): showing it Off; see qemu.log")
	} else {
		log.Info("guest powered off")
	}
	m.state.PowerOn = false
	b.save(m)
}

// adoptedProc is a QEMU started by an earlier BMC: not a child, so it is watched through /proc.
type adoptedProc struct {
	rec    pidRecord
	qmp    string
	events *qmpEvents
	done   chan struct{}
}

func (p *adoptedProc) Done() <-chan struct{} { return p.done }
func (p *adoptedProc) PID() int              { return p.rec.PID }
func (p *adoptedProc) Powerdown() error      { return qmpCommand(p.qmp, "system_powerdown") }
func (p *adoptedProc) ExitReason() string    { return p.events.reason(2 * time.Second) }

// poll closes done when the process is gone (or is another one), checking every 200 ms. It ends with the
// process, which the BMC kills when it shuts down.
func (p *adoptedProc) poll() {
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for range t.C {
		if start, exe, err := procIdentity(p.rec.PID); err != nil || start != p.rec.StartTime || exe != p.rec.Exe {
			close(p.done)
			return
		}
	}
}

// Kill signals the process only while it is still the one recorded, and waits (10 s at most) for it to go.
func (p *adoptedProc) Kill() error {
	if start, exe, err := procIdentity(p.rec.PID); err != nil || start != p.rec.StartTime || exe != p.rec.Exe {
		return nil
	}
	if err := syscall.Kill(p.rec.PID, syscall.SIGKILL); err != nil {
		return fmt.Errorf("kill QEMU pid %d: %w", p.rec.PID, err)
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("QEMU pid %d still runs 10 s after SIGKILL", p.rec.PID)
	}
}
