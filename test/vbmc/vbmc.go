// Package vbmc is ferric-vbmc: a Redfish virtual BMC for QEMU/OVMF VMs. It serves ServiceRoot, Systems (power,
// boot override, and the hardware a VM's configuration gives it: Processors, Memory, Storage, SimpleStorage,
// EthernetInterfaces), Managers with VirtualMedia (insert/eject a CD image by URL), a minimal Chassis and a
// SessionService, with HTTP Basic or session (X-Auth-Token) auth. It keeps each VM's power intent, boot override
// and media across restarts, and finds the QEMU it started again after being killed (supervise.go).
package vbmc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	"gopkg.in/yaml.v3"
)

// Config configures the BMC.
// StateDir (required) holds one directory per VM: state.json, disk, OVMF variables, media copies, logs, sockets.
type Config struct {
	Listen string `yaml:"listen"` // default 127.0.0.1:8000
	// Username and the password guard every resource but the service root with HTTP Basic auth. An empty
	// username turns auth off, which Run refuses unless Listen (or Listener) is a loopback address.
	Username string `yaml:"username"`
	// Password is kept for compatibility (the YAML file is not argv); prefer PasswordFile or the
	// FERRIC_VBMC_PASSWORD environment variable (read by cmd/vbmc). Setting both Password and PasswordFile is
	// refused as ambiguous.
	Password string `yaml:"password"`
	// PasswordFile holds the password (one line; a trailing newline is dropped), read once by Run.
	PasswordFile string     `yaml:"password_file"`
	StateDir     string     `yaml:"state_dir"`
	VMs          []VMConfig `yaml:"vms"`
	// MaxMediaBytes caps an InsertMedia download (default DefaultMaxMediaBytes, 4 GiB: a DVD-sized installer
	// ISO fits, a runaway or hostile URL cannot fill the state directory's disk). Larger images are refused with
	// a Redfish error naming max_media_bytes, and the partial file is removed.
	MaxMediaBytes int64 `yaml:"max_media_bytes"`
	// MediaTimeout bounds one InsertMedia download (default DefaultMediaTimeout, 10m; YAML "30m" style).
	MediaTimeout time.Duration `yaml:"media_timeout"`
	// GracefulRestartTimeout bounds the wait for a guest to power off on GracefulRestart before it is cut
	// (default DefaultGracefulRestartTimeout, 60s).
	GracefulRestartTimeout time.Duration `yaml:"graceful_restart_timeout"`
	// SessionTimeout ends a Redfish session idle for this long (default DefaultSessionTimeout, 30m).
	SessionTimeout time.Duration `yaml:"session_timeout"`
	// Runner starts VMs (default: QEMU).
	Runner Runner `yaml:"-"`
	// Listener, when set, is used instead of Listen (tests).
	Listener net.Listener `yaml:"-"`
	// IPMIConns, when set, gives VMs (by name) a bound UDP socket for their IPMI endpoint instead of ipmi_port
	// (tests: bind 127.0.0.1:0 for a free port, and the socket's address is the VM's IPMI address). Run closes
	// them when it stops serving.
	IPMIConns map[string]*net.UDPConn `yaml:"-"`
	// Ready is called with the base URL once serving.
	Ready func(url string) `yaml:"-"`
}

// LoadConfig reads a YAML file (listen, username, password(_file), state_dir, max_media_bytes, media_timeout,
// session_timeout, graceful_restart_timeout, vms with their ipmi_port).
// It only parses: defaults, the password file and the auth and IPMI checks are applied by Run.
func LoadConfig(path string) (Config, error) {
	var c Config
	b, err := os.ReadFile(path)
	if err != nil {
		return c, err
	}
	if err := yaml.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// vm is one virtual machine. Its own mutex guards everything below it: a slow action on one VM (a graceful
// restart, a download) never holds another one up.
type vm struct {
	mu    sync.Mutex
	cfg   VMConfig
	dir   string
	state State
	proc  Process
	// stopping is set when the BMC itself ends proc (ForceOff, a restart, GracefulShutdown/Restart, BMC shutdown):
	// its exit is then no guest action, and the supervisor leaves the power intent alone.
	stopping bool
	// actions counts power actions (start, kill, GracefulShutdown): a GracefulRestart that finds it changed after
	// its wait leaves the VM as the later action did.
	actions int
	// downloading is set (under mu) while an InsertMedia download runs: a second one is refused.
	downloading bool
}

// BMC is a running virtual BMC.
type BMC struct {
	cfg Config
	log *logrus.Entry
	// vms is filled before serving and never changed after: reading it needs no lock.
	vms      map[string]*vm
	ctx      context.Context
	sessions *sessions
	// downloads counts running InsertMedia downloads; Run waits for them (cancelled with ctx) before returning,
	// so that no partial file is left behind.
	downloads sync.WaitGroup
	// router serves the Redfish API (routes.go); built once in Run.
	router http.Handler
}

// Run serves until ctx ends; running VMs are stopped then (their power intent is kept). A VM whose QEMU an
// earlier, killed BMC left running is adopted (see supervise.go); one whose intent is On is started.
func Run(ctx context.Context, cfg Config, log *logrus.Entry) error {
	if cfg.StateDir == "" {
		return errors.New("vbmc: state_dir is required")
	}
	if cfg.Runner == nil {
		cfg.Runner = &QEMU{}
	}
	if err := cfg.resolvePassword(log); err != nil {
		return err
	}
	if err := cfg.setDefaults(); err != nil {
		return err
	}
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:8000"
	}
	addr := cfg.Listen
	if cfg.Listener != nil {
		addr = cfg.Listener.Addr().String()
	}
	if err := checkAuth(cfg.Username, cfg.Password, addr); err != nil {
		return err
	}
	if err := cfg.checkIPMI(); err != nil {
		return err
	}
	// The router is built before the VMs are added; every VM is set up (and powered on as its saved intent says)
	// before the listener serves, so that no request sees a half-filled b.vms.
	b := &BMC{cfg: cfg, log: log, vms: map[string]*vm{}, ctx: ctx, sessions: newSessions(cfg.SessionTimeout)}
	b.router = b.newRouter()
	for _, v := range cfg.VMs {
		if err := b.addVM(v); err != nil {
			return err
		}
	}
	ln := cfg.Listener
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", cfg.Listen); err != nil {
			return fmt.Errorf("vbmc: listen %s: %w", cfg.Listen, err)
		}
	}
	ipmis, err := b.startIPMI(ctx, ln.Addr().String())
	if err != nil {
		ln.Close()
		return err
	}
	srv := &http.Server{Handler: b, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	url := "http://" + ln.Addr().String()
	log.WithField("url", url).WithField("vms", len(b.vms)).Info("virtual BMC serving")
	if cfg.Ready != nil {
		cfg.Ready(url)
	}
	// Shutdown order: stop taking requests, close IPMI, wait for downloads, then kill the VMs. The VMs' intent is
	// not changed (m.stopping), so that the next Run powers on again the ones that were on.
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(sctx)
	stopIPMI(ipmis)    // sockets closed before the VMs are stopped (a late command finds ctx done and acts not)
	b.downloads.Wait() // cancelled with ctx: each removes its partial file
	for _, m := range b.vms {
		m.mu.Lock()
		if m.proc != nil {
			m.stopping = true
			m.proc.Kill()
			forgetPID(m.dir)
		}
		m.mu.Unlock()
	}
	return nil
}

// setDefaults fills the limits and timeouts left unset and refuses a negative max_media_bytes.
func (c *Config) setDefaults() error {
	if c.MaxMediaBytes == 0 {
		c.MaxMediaBytes = DefaultMaxMediaBytes
	}
	if c.MaxMediaBytes < 0 {
		return fmt.Errorf("vbmc: max_media_bytes %d is negative: give a size in bytes (default %d)", c.MaxMediaBytes, int64(DefaultMaxMediaBytes))
	}
	if c.MediaTimeout <= 0 {
		c.MediaTimeout = DefaultMediaTimeout
	}
	if c.GracefulRestartTimeout <= 0 {
		c.GracefulRestartTimeout = DefaultGracefulRestartTimeout
	}
	if c.SessionTimeout <= 0 {
		c.SessionTimeout = DefaultSessionTimeout
	}
	return nil
}

// save writes the VM's State to state.json (0600). A failed write is logged, not returned:
// the running state stays right and the next save tries again. Called with m.mu held.
func (b *BMC) save(m *vm) {
	data, _ := json.MarshalIndent(m.state, "", "  ")
	if err := os.WriteFile(filepath.Join(m.dir, "state.json"), data, 0o600); err != nil {
		b.log.WithError(err).Warn("could not save vm state")
	}
}

// running reports whether the VM's process exists and has not exited. Called with m.mu held.
func (m *vm) running() bool {
	if m.proc == nil {
		return false
	}
	select {
	case <-m.proc.Done():
		return false
	default:
		return true
	}
}

// start powers a VM on, honouring the boot override once or continuously. The one-time override is used up only
// by a VM that did start. Called with m.mu held.
func (b *BMC) start(m *vm) error {
	if m.running() {
		return nil
	}
	// BIOS settings PATCHed since the last start take effect now, as a real BMC applies them at the next reset.
	applyPendingBIOS(m)
	boot := ""
	// Disabled leaves the choice to the firmware's own order (disk first, see Argv).
	if m.state.BootEnabled == "Once" || m.state.BootEnabled == "Continuous" {
		boot = m.state.BootTarget
	}
	media := ""
	if m.state.MediaPresent {
		media = m.state.MediaFile
	}
	usb := ""
	if m.state.UsbPresent {
		usb = m.state.UsbFile
	}
	p, err := b.cfg.Runner.Start(b.ctx, StartSpec{VM: m.cfg, Dir: m.dir, Disk: m.cfg.Disk, BootFrom: boot, MediaFile: media, UsbFile: usb,
		SerialLog: filepath.Join(m.dir, "serial.log"), QMP: filepath.Join(m.dir, "qmp.sock")})
	if err != nil {
		return fmt.Errorf("vm %s did not start: %w", m.cfg.Name, err)
	}
	m.proc, m.stopping = p, false
	m.actions++
	m.state.PowerOn = true
	if m.state.BootEnabled == "Once" {
		// A one-time override is used up by this start, as Redfish's Once means (and as Ironic's persistent=False asks).
		m.state.BootEnabled = "Disabled"
	}
	b.save(m)
	b.recordPID(m, p)
	// The supervisor follows this process to its end: a guest reboot restarts it, a guest power-off records Off.
	go b.supervise(m, p)
	b.log.WithField("vm", m.cfg.Name).WithField("boot", boot).Info("vm powered on")
	return nil
}

// kill ends the VM at once and records the intent Off. Called with m.mu held.
func (b *BMC) kill(m *vm) {
	m.actions++
	if m.proc != nil {
		m.stopping = true
		m.proc.Kill()
		forgetPID(m.dir)
	}
	m.state.PowerOn = false
	b.save(m)
}

// DefaultGracefulRestartTimeout is the default graceful_restart_timeout.
// A guest that ignores the ACPI button (no acpid, a hung kernel) is cut after it, as a BMC escalates to a hard
// restart.
const DefaultGracefulRestartTimeout = 60 * time.Second

// reset applies a ComputerSystem.Reset type. Called with m.mu held; GracefulRestart releases it while the guest
// shuts down, so that the VM can be read (and forced off) meanwhile.
func (b *BMC) reset(m *vm, typ string) error {
	switch typ {
	case "On", "ForceOn":
		return b.start(m)
	case "ForceOff":
		b.kill(m)
		return nil
	// GracefulShutdown only presses the button and records Off at once: the guest may take its time, and the
	// supervisor leaves the intent alone as m.stopping is set.
	case "GracefulShutdown":
		if !m.running() {
			return nil
		}
		m.state.PowerOn = false
		m.stopping = true
		m.actions++
		b.save(m)
		return m.proc.Powerdown()
	// A hard restart of an off VM powers it on (kill of no process is a no-op).
	case "ForceRestart", "PowerCycle":
		b.kill(m)
		return b.start(m)
	case "GracefulRestart":
		if m.running() {
			// The lock is released for the wait, so that a GET (or a ForceOff) on this VM is not held up by a slow guest.
			p, actions := m.proc, m.actions
			m.stopping = true
			if err := p.Powerdown(); err != nil {
				return err
			}
			m.mu.Unlock()
			select {
			case <-p.Done():
			case <-time.After(b.cfg.GracefulRestartTimeout):
			case <-b.ctx.Done():
			}
			m.mu.Lock()
			if m.actions != actions {
				return nil // another request powered the VM on or off meanwhile: its action stands
			}
			if m.running() {
				// Still running after the wait (timeout or BMC shutdown): cut it, as a BMC escalates a restart.
				p.Kill()
			}
			forgetPID(m.dir)
		}
		return b.start(m)
	}
	return fmt.Errorf("%w: ResetType %q is not supported; use On, ForceOff, GracefulShutdown, ForceRestart or GracefulRestart", errBadRequest, typ)
}

// errBadRequest marks errors of the client's request (400); other reset errors are the BMC's (500).
var errBadRequest = errors.New("bad request")

// addVM sets a VM up from its configuration before serving: its state directory and disk, its saved state, the
// QEMU an earlier BMC left running (adopted), and power on when the saved intent is On and nothing runs.
func (b *BMC) addVM(v VMConfig) error {
	// The name becomes a path element (state directory, Redfish URL): no separators, no spaces.
	if v.Name == "" || strings.ContainsAny(v.Name, "/ ") {
		return fmt.Errorf("vm name %q: use letters, digits and dashes", v.Name)
	}
	dir := filepath.Join(b.cfg.StateDir, v.Name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if v.Disk == "" {
		v.Disk = filepath.Join(dir, "disk.img")
	}
	if _, err := os.Stat(v.Disk); err != nil {
		size := int64(v.DiskGiB) << 30
		if size == 0 {
			size = 8 << 30
		}
		f, err := os.Create(v.Disk)
		if err != nil {
			return err
		}
		// A sparse file: the disk costs no space until the guest writes.
		f.Truncate(size)
		f.Close()
	}
	m := &vm{cfg: v, dir: dir, state: State{BootEnabled: "Disabled", BootTarget: "None", BootMode: "UEFI"}}
	if data, err := os.ReadFile(filepath.Join(dir, "state.json")); err == nil {
		// A damaged state.json is not fatal: the VM keeps what could be read over the defaults (off, no override).
		json.Unmarshal(data, &m.state)
	}
	b.vms[v.Name] = m
	m.mu.Lock()
	b.adopt(m)
	if m.state.PowerOn && !m.running() {
		if err := b.start(m); err != nil {
			b.log.WithError(err).WithField("vm", v.Name).Warn("could not restore power on")
		}
	}
	m.mu.Unlock()
	return nil
}
