package fleetsim

// The fleet's BMCs (issue 17: "M simulated BMCs in one process"). One ferric-vbmc (test/vbmc) serves a Redfish
// System per node on one listener; the conductors power the nodes through it with their redfish power and
// management interfaces, and its Runner, instead of starting QEMU, switches the node's simulated machine: a power
// on boots the agent (the fake boot interface prepares nothing, so the firmware's own order, network first,
// applies), unless the boot override says disk and the node has been installed, when the installed OS runs
// (nothing of it talks to the conductors). A power off, or the agent's standby.power_off, stops the machine, and
// the BMC shows it off. So an agent boots when a conductor boots it and only then, which is what a take-over
// that boots an agent again needs to be tested against.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/ferric-metal/ferric/test/vbmc"
)

// BMC is the running virtual BMC of the fleet.
type BMC struct {
	URL      string // http://127.0.0.1:PORT
	Username string
	Password string
	client   *http.Client
	stop     context.CancelFunc
	done     chan error
}

// Machine is one node as its BMC knows it.
type Machine struct {
	Name string // the Redfish System's id: /redfish/v1/Systems/<Name>
	UUID string
	MAC  string
}

// StartBMC serves one Redfish System per machine, their state under dir, until Close.
func StartBMC(ctx context.Context, f *Fleet, dir string, machines []Machine, log *logrus.Entry) (*BMC, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("fleetsim: BMC listener: %w", err)
	}
	b := &BMC{URL: "http://" + ln.Addr().String(), Username: "fleet", Password: NewSecret(),
		client: &http.Client{Timeout: 30 * time.Second}, done: make(chan error, 1)}
	var vms []vbmc.VMConfig
	for _, m := range machines {
		// A 1 GiB sparse file per System: the BMC describes a disk; nothing writes it.
		vms = append(vms, vbmc.VMConfig{Name: m.Name, UUID: m.UUID, MAC: m.MAC, DiskGiB: 1})
	}
	ready := make(chan struct{})
	var bctx context.Context
	bctx, b.stop = context.WithCancel(context.Background())
	go func() {
		b.done <- vbmc.Run(bctx, vbmc.Config{StateDir: dir, Username: b.Username, Password: b.Password, VMs: vms,
			Runner: &runner{fleet: f}, Listener: ln, Ready: func(string) { close(ready) }}, log.WithField("component", "bmc"))
	}()
	select {
	case <-ready:
		return b, nil
	case err := <-b.done:
		b.stop()
		return nil, fmt.Errorf("fleetsim: BMC did not start: %w", err)
	case <-ctx.Done():
		b.Close()
		return nil, ctx.Err()
	}
}

// Close stops the BMC and every machine it runs.
func (b *BMC) Close() {
	b.stop()
	<-b.done
	b.done <- nil // a second Close returns at once
}

// DriverInfo is the driver_info of a node whose System is name.
func (b *BMC) DriverInfo(name string) map[string]any {
	return map[string]any{"redfish_address": b.URL, "redfish_system_id": "/redfish/v1/Systems/" + name,
		"redfish_username": b.Username, "redfish_password": b.Password}
}

// PowerOn presses the power button of the machine name (a Redfish Reset On), as an operator powering a rack on
// does, without the conductors.
func (b *BMC) PowerOn(ctx context.Context, name string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.URL+"/redfish/v1/Systems/"+name+
		"/Actions/ComputerSystem.Reset", strings.NewReader(`{"ResetType": "On"}`))
	if err != nil {
		return err
	}
	req.SetBasicAuth(b.Username, b.Password)
	req.Header.Set("Content-Type", "application/json")
	resp, err := b.client.Do(req)
	if err != nil {
		return fmt.Errorf("power on %s: %w", name, err)
	}
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		return fmt.Errorf("power on %s: the BMC answered %d", name, resp.StatusCode)
	}
	return nil
}

// runner is the BMC's Runner: a power on starts the node's simulated machine.
type runner struct{ fleet *Fleet }

// Start boots the agent of spec's node, or the installed OS when the boot override says disk and the node was
// installed.
func (r *runner) Start(ctx context.Context, spec vbmc.StartSpec) (vbmc.Process, error) {
	// The BMC holds only this machine's lock meanwhile: other machines power on in parallel.
	if d := r.fleet.cfg.Timing.PowerOn; d > 0 {
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	p := &machine{done: make(chan struct{})}
	if spec.BootFrom == "Hdd" && r.fleet.Installed(spec.VM.UUID) {
		p.off = func() {}
		return p, nil
	}
	a := r.fleet.boot(spec.VM.UUID, []string{spec.VM.MAC}, 0, p.exit)
	p.off = func() { r.fleet.powerOffAgent(a) }
	return p, nil
}

// machine is a powered-on node, as the BMC follows it (vbmc.Process).
type machine struct {
	done   chan struct{}
	once   sync.Once
	off    func()
	reason string
}

func (m *machine) Done() <-chan struct{} { return m.done }

// Powerdown is the ACPI button: the simulated machine stops at once.
func (m *machine) Powerdown() error { return m.Kill() }

// Kill stops the machine (its agent, if it runs one).
func (m *machine) Kill() error {
	m.off()
	m.exit(false)
	return nil
}

// ExitReason tells the BMC a power off by the agent from a cut (vbmc.ExitReasoner).
func (m *machine) ExitReason() string { return m.reason }

// exit ends the machine once; byGuest when its agent powered it off (standby.power_off).
func (m *machine) exit(byGuest bool) {
	m.once.Do(func() {
		if byGuest {
			m.reason = vbmc.ExitGuestShutdown
		}
		close(m.done)
	})
}

// NewSecret returns a random password (32 hex digits).
func NewSecret() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return hex.EncodeToString(b)
}
