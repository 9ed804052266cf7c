// Package redfish owns the redfish hardware type: power and management of a node through its BMC's Redfish
// service (github.com/stmcginnis/gofish), with a deadline on every BMC call and BMC errors turned into text a
// person can act on.
package redfish

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/stmcginnis/gofish"
	"github.com/stmcginnis/gofish/schemas"

	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/store"
	"github.com/ferric-metal/ferric/conductor/internal/transport"
)

// Hardware returns the redfish hardware type with the interfaces this package and the deploy drivers offer:
// inspect redfish (default), agent, no-inspect; rescue no-rescue only (no agent rescue yet).
func Hardware(deploy []string, boot []string) *driver.HardwareType {
	h := driver.NewHardwareType("redfish", deploy, boot)
	// Inspection: out-of-band through the BMC by default; agent is accepted because Metal3 sets it on every node.
	h.Defaults["inspect"] = "redfish"
	h.Enabled["inspect"] = []string{"redfish", driver.InspectAgent, driver.InspectNone}
	return h
}

// Info is a node's parsed redfish driver_info.
type Info struct {
	Address  string // base URL, e.g. https://10.0.0.5
	SystemID string // e.g. /redfish/v1/Systems/1; "" = the only system
	Username string
	Password string
	Insecure bool   // redfish_verify_ca=false
	CAFile   string // redfish_verify_ca=/path
}

// ParseInfo reads and checks a node's driver_info.
func ParseInfo(n *store.Node) (*Info, error) {
	di := n.DriverInfo
	str := func(k string) string {
		v, _ := di[k].(string)
		return strings.TrimSpace(v)
	}
	addr := str("redfish_address")
	if addr == "" {
		return nil, fmt.Errorf("driver_info.redfish_address is missing: set it to the BMC's URL, e.g. https://10.0.0.5: %w", driver.ErrInvalid)
	}
	if !strings.Contains(addr, "://") {
		addr = "https://" + addr
	}
	u, err := url.Parse(addr)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("driver_info.redfish_address %q is not a URL like https://10.0.0.5: %w", str("redfish_address"), driver.ErrInvalid)
	}
	info := &Info{Address: strings.TrimRight(u.Scheme+"://"+u.Host, "/"), SystemID: str("redfish_system_id"),
		Username: str("redfish_username"), Password: str("redfish_password")}
	if info.SystemID != "" && !strings.HasPrefix(info.SystemID, "/redfish/v1/Systems/") {
		return nil, fmt.Errorf("driver_info.redfish_system_id %q must be a path like /redfish/v1/Systems/1: %w", info.SystemID, driver.ErrInvalid)
	}
	switch v := di["redfish_verify_ca"].(type) {
	case nil:
	case bool:
		info.Insecure = !v
	case string:
		switch strings.ToLower(v) {
		case "true", "yes", "1", "":
		case "false", "no", "0":
			info.Insecure = true
		default:
			if _, err := os.Stat(v); err != nil {
				return nil, fmt.Errorf("driver_info.redfish_verify_ca %q is neither a boolean nor a readable CA file: %w", v, driver.ErrInvalid)
			}
			info.CAFile = v
		}
	default:
		return nil, fmt.Errorf("driver_info.redfish_verify_ca must be true, false or a CA file path: %w", driver.ErrInvalid)
	}
	return info, nil
}

// Driver implements driver.Power and driver.Management over Redfish.
type Driver struct {
	// CallTimeout bounds every BMC request (default 30 s).
	CallTimeout time.Duration
	// PowerTimeout bounds waiting for a power state change (default 60 s).
	PowerTimeout time.Duration
	// GracefulOffTimeout is how long "power off" waits for a graceful shutdown before forcing it (default 15 s).
	GracefulOffTimeout time.Duration
	// PollInterval is the wait between power state reads (default 1 s).
	PollInterval time.Duration
	// Transports are the conductor's shared HTTP transports: every session to one BMC (each power read, each
	// step of a power wait) reuses its keep-alive connections, within the cache's per-host connection bound.
	// nil: a transport per session, closed with it.
	Transports *transport.Cache

	once sync.Once // the defaults are filled in once: every node's calls share the driver
}

// defaults fills in the zero settings on first use. The engine calls the driver for many nodes at once, so the
// writes happen exactly once, before any read.
func (d *Driver) defaults() { d.once.Do(d.setDefaults) }

func (d *Driver) setDefaults() {
	if d.CallTimeout == 0 {
		d.CallTimeout = 30 * time.Second
	}
	if d.PowerTimeout == 0 {
		d.PowerTimeout = 60 * time.Second
	}
	if d.GracefulOffTimeout == 0 {
		d.GracefulOffTimeout = 15 * time.Second
	}
	if d.PollInterval == 0 {
		d.PollInterval = time.Second
	}
}

// session is a connection to one node's BMC and its system.
type session struct {
	client *gofish.APIClient
	system *schemas.ComputerSystem
	info   *Info
}

func (s *session) close() { s.client.Logout() }

// statusCode reports whether msg carries the HTTP status code as a word of its own: the BMC's address is in msg
// too, and a port such as 34401 must not read as a 401.
func statusCode(msg, code string) bool {
	return statusPatterns[code].MatchString(msg)
}

// statusPatterns are compiled once: bmcError runs on every failed BMC call.
var statusPatterns = map[string]*regexp.Regexp{
	"401": regexp.MustCompile(`(^|[^0-9:])401([^0-9]|$)`),
	"404": regexp.MustCompile(`(^|[^0-9:])404([^0-9]|$)`),
}

// bmcError turns a transport or Redfish error into text naming the BMC and what to check.
func bmcError(info *Info, what string, err error) error {
	msg := err.Error()
	var hint string
	switch {
	case errors.Is(err, context.DeadlineExceeded) || strings.Contains(msg, "Client.Timeout") || strings.Contains(msg, "deadline exceeded"):
		hint = "the BMC did not answer in time; check that it is reachable from the conductor"
	case statusCode(msg, "401"):
		hint = "the BMC refused the credentials; check driver_info.redfish_username and redfish_password"
	case strings.Contains(msg, "x509") || strings.Contains(msg, "certificate"):
		hint = "the BMC's TLS certificate is not trusted; set driver_info.redfish_verify_ca to a CA file, or false"
	case strings.Contains(msg, "connection refused") || strings.Contains(msg, "no such host") || strings.Contains(msg, "no route"):
		hint = "the BMC cannot be reached; check driver_info.redfish_address"
	case statusCode(msg, "404"):
		hint = "the BMC has no such resource; check driver_info.redfish_system_id"
	}
	if hint != "" {
		return fmt.Errorf("Redfish BMC %s: %s failed: %s (%v)", info.Address, what, hint, scrubPassword(err, info))
	}
	return fmt.Errorf("Redfish BMC %s: %s failed: %v", info.Address, what, scrubPassword(err, info))
}

func scrubPassword(err error, info *Info) error {
	if info.Password == "" {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), info.Password, "******"))
}

// connect opens a session to the node's BMC and finds its system, all within ctx.
func (d *Driver) connect(ctx context.Context, n *store.Node) (*session, error) {
	d.defaults()
	info, err := ParseInfo(n)
	if err != nil {
		return nil, err
	}
	rt, err := d.transport(info)
	if err != nil {
		return nil, err
	}
	hc := &http.Client{Timeout: d.CallTimeout, Transport: rt}
	cctx, cancel := context.WithTimeout(ctx, d.CallTimeout)
	defer cancel()
	// ReuseConnections: without it gofish asks for "Connection: close" on every request.
	c, err := gofish.ConnectContext(cctx, gofish.ClientConfig{Endpoint: info.Address, Username: info.Username,
		Password: info.Password, BasicAuth: true, HTTPClient: hc, NoModifyTransport: true, ReuseConnections: true})
	if err != nil {
		hc.CloseIdleConnections() // a session's own transport; a no-op on a shared one
		return nil, bmcError(info, "connect", err)
	}
	c = c.WithContext(ctx)
	var sys *schemas.ComputerSystem
	if info.SystemID != "" {
		sys, err = schemas.GetComputerSystem(c, info.SystemID)
		if err != nil {
			c.Logout()
			return nil, bmcError(info, "read system "+info.SystemID, err)
		}
	} else {
		systems, err := c.Service.Systems()
		if err != nil {
			c.Logout()
			return nil, bmcError(info, "list systems", err)
		}
		if len(systems) != 1 {
			c.Logout()
			ids := make([]string, 0, len(systems))
			for _, s := range systems {
				ids = append(ids, s.ODataID)
			}
			return nil, fmt.Errorf("Redfish BMC %s has %d systems (%s): set driver_info.redfish_system_id to one of them: %w",
				info.Address, len(systems), strings.Join(ids, ", "), driver.ErrInvalid)
		}
		sys = systems[0]
	}
	return &session{client: c, system: sys, info: info}, nil
}

// transport returns the HTTP transport to the node's BMC: the shared one for its address and trust (the CA
// file's content, read at each connect so a replaced file takes effect, or redfish_verify_ca=false), or a
// transport of the session's own without a cache (gofish's Logout closes its idle connections).
func (d *Driver) transport(info *Info) (http.RoundTripper, error) {
	u, err := url.Parse(info.Address)
	if err != nil {
		return nil, fmt.Errorf("driver_info.redfish_address %q: %w", info.Address, driver.ErrInvalid)
	}
	ts := transport.Settings{Scheme: u.Scheme, Host: u.Host, Insecure: info.Insecure}
	if info.CAFile != "" {
		if ts.CAPEM, err = os.ReadFile(info.CAFile); err != nil {
			return nil, fmt.Errorf("driver_info.redfish_verify_ca: %w", err)
		}
	}
	var rt http.RoundTripper
	if d.Transports != nil {
		rt, err = d.Transports.Get(ts)
	} else {
		rt, err = transport.Build(ts, transport.Config{})
	}
	if errors.Is(err, transport.ErrNoCertificate) {
		return nil, fmt.Errorf("driver_info.redfish_verify_ca %s holds no PEM certificate: %w", info.CAFile, driver.ErrInvalid)
	}
	if err != nil {
		return nil, fmt.Errorf("Redfish BMC %s: %w", info.Address, err)
	}
	return rt, nil
}

// Validate checks the BMC is reachable with the credentials and the system exists.
func (d *Driver) Validate(ctx context.Context, n *store.Node) error {
	s, err := d.connect(ctx, n)
	if err != nil {
		return err
	}
	s.close()
	return nil
}

func powerString(p schemas.PowerState) string {
	switch p {
	case schemas.OnPowerState, "PoweringOff":
		return driver.PowerOn
	case schemas.OffPowerState, "PoweringOn":
		return driver.PowerOff
	}
	return ""
}

// PowerState reads the system's power state.
func (d *Driver) PowerState(ctx context.Context, n *store.Node) (string, error) {
	s, err := d.connect(ctx, n)
	if err != nil {
		return "", err
	}
	defer s.close()
	ps := powerString(s.system.PowerState)
	if ps == "" {
		return "", fmt.Errorf("Redfish BMC %s reports an unknown power state %q", s.info.Address, s.system.PowerState)
	}
	return ps, nil
}

// SetPowerState switches the system: on, off (graceful, then forced), reboot, and the soft variants.
func (d *Driver) SetPowerState(ctx context.Context, n *store.Node, target string, timeout time.Duration) error {
	s, err := d.connect(ctx, n)
	if err != nil {
		return err
	}
	defer s.close()
	cur := powerString(s.system.PowerState)
	reset := func(rt schemas.ResetType) error {
		if _, err := s.system.Reset(rt); err != nil {
			return bmcError(s.info, "reset "+string(rt), err)
		}
		return nil
	}
	switch target {
	case driver.PowerOn:
		if cur == driver.PowerOn {
			return nil
		}
		if err := reset(schemas.OnResetType); err != nil {
			return err
		}
		return d.waitPower(ctx, s, driver.PowerOn, d.PowerTimeout)
	case driver.PowerOff:
		if cur == driver.PowerOff {
			return nil
		}
		if err := reset(schemas.GracefulShutdownResetType); err == nil {
			if d.waitPower(ctx, s, driver.PowerOff, d.GracefulOffTimeout) == nil {
				return nil
			}
		}
		if err := reset(schemas.ForceOffResetType); err != nil {
			return err
		}
		return d.waitPower(ctx, s, driver.PowerOff, d.PowerTimeout)
	case driver.SoftPowerOff:
		if cur == driver.PowerOff {
			return nil
		}
		if timeout == 0 {
			timeout = 600 * time.Second
		}
		if err := reset(schemas.GracefulShutdownResetType); err != nil {
			return err
		}
		return d.waitPower(ctx, s, driver.PowerOff, timeout)
	case driver.Rebooting, driver.SoftRebooting:
		if cur == driver.PowerOff {
			if err := reset(schemas.OnResetType); err != nil {
				return err
			}
			return d.waitPower(ctx, s, driver.PowerOn, d.PowerTimeout)
		}
		rt := schemas.ForceRestartResetType
		if target == driver.SoftRebooting {
			rt = schemas.GracefulRestartResetType
		}
		if err := reset(rt); err != nil {
			return err
		}
		return d.waitPower(ctx, s, driver.PowerOn, d.PowerTimeout)
	}
	return fmt.Errorf("power target %q is not supported: %w", target, driver.ErrInvalid)
}

// waitPower polls the system until it reaches want or the timeout passes.
func (d *Driver) waitPower(ctx context.Context, s *session, want string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		sys, err := schemas.GetComputerSystem(s.client, s.system.ODataID)
		if err == nil && powerString(sys.PowerState) == want {
			return nil
		}
		if time.Now().After(deadline) {
			got := "unknown"
			if sys != nil {
				got = string(sys.PowerState)
			}
			return fmt.Errorf("Redfish BMC %s: the system did not reach %q within %s (it reports %s)", s.info.Address, want, timeout, got)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d.PollInterval):
		}
	}
}

func bootTarget(dev string) (schemas.BootSource, error) {
	switch dev {
	case driver.BootDisk:
		return schemas.HddBootSource, nil
	case driver.BootPXE:
		return schemas.PxeBootSource, nil
	case driver.BootCDROM:
		return schemas.CdBootSource, nil
	case driver.BootBIOS:
		return schemas.BiosSetupBootSource, nil
	}
	return "", fmt.Errorf("boot device %q is not supported by redfish; use disk, pxe, cdrom or bios: %w", dev, driver.ErrInvalid)
}

// SupportedBootDevices lists the devices this driver sets.
func (d *Driver) SupportedBootDevices(context.Context, *store.Node) ([]string, error) {
	return []string{driver.BootDisk, driver.BootPXE, driver.BootCDROM, driver.BootBIOS}, nil
}

// bootMode returns the node's boot mode from properties.capabilities (uefi unless boot_mode:bios).
func bootMode(n *store.Node) schemas.BootSourceOverrideMode {
	caps, _ := n.Properties["capabilities"].(string)
	if strings.Contains(caps, "boot_mode:bios") {
		return schemas.LegacyBootSourceOverrideMode
	}
	return schemas.UEFIBootSourceOverrideMode
}

// SetBootDevice sets the boot source override; some BMCs refuse the mode in the same request, so a refusal is
// retried without it.
func (d *Driver) SetBootDevice(ctx context.Context, n *store.Node, device string, persistent bool) error {
	target, err := bootTarget(device)
	if err != nil {
		return err
	}
	s, err := d.connect(ctx, n)
	if err != nil {
		return err
	}
	defer s.close()
	enabled := schemas.OnceBootSourceOverrideEnabled
	if persistent {
		enabled = schemas.ContinuousBootSourceOverrideEnabled
	}
	boot := &schemas.Boot{BootSourceOverrideTarget: target, BootSourceOverrideEnabled: enabled, BootSourceOverrideMode: bootMode(n)}
	if err := s.system.SetBoot(boot); err != nil {
		boot.BootSourceOverrideMode = ""
		if err2 := s.system.SetBoot(boot); err2 != nil {
			return bmcError(s.info, "set boot device "+device, err)
		}
	}
	return nil
}

// BootDevice reads the boot source override.
func (d *Driver) BootDevice(ctx context.Context, n *store.Node) (driver.BootDevice, error) {
	s, err := d.connect(ctx, n)
	if err != nil {
		return driver.BootDevice{}, err
	}
	defer s.close()
	b := s.system.Boot
	dev := map[schemas.BootSource]string{schemas.HddBootSource: driver.BootDisk, schemas.PxeBootSource: driver.BootPXE,
		schemas.CdBootSource: driver.BootCDROM, schemas.BiosSetupBootSource: driver.BootBIOS}[b.BootSourceOverrideTarget]
	return driver.BootDevice{Device: dev, Persistent: b.BootSourceOverrideEnabled == schemas.ContinuousBootSourceOverrideEnabled}, nil
}
