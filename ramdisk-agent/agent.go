// Package agent is ferric-agent, the service in the agent ramdisk: it finds its node through the conductor's
// lookup, proves itself with the agent token, heartbeats, serves IPA's command API, and installs bootable
// containers through podman.
package agent

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/ferric-metal/ferric/images"
	"github.com/ferric-metal/ferric/ramdisk-agent/internal/api"
	"github.com/ferric-metal/ferric/ramdisk-agent/internal/containerscfg"
	"github.com/ferric-metal/ferric/ramdisk-agent/internal/hardware"
	"github.com/ferric-metal/ferric/ramdisk-agent/internal/install"
	"github.com/ferric-metal/ferric/ramdisk-agent/internal/inventory"
	"github.com/ferric-metal/ferric/ramdisk-agent/internal/ironic"
	"github.com/ferric-metal/ferric/ramdisk-agent/internal/podman"
)

// Version is the agent version reported to the conductor.
const Version = "ferric-agent 0.1.0"

// Config configures the agent. Config sources (virtual media file, kernel command line, flags) fill it in main.
type Config struct {
	APIURL    string `json:"api_url"`   // conductor base URL, e.g. http://10.0.2.2:6385
	APICA     string `json:"api_ca"`    // PEM CA certificates for an https APIURL (added to the system roots)
	NodeUUID  string `json:"node_uuid"` // known node (lookup by UUID); else lookup by MACs
	Token     string `json:"token"`     // pre-generated token (virtual media); else taken from lookup
	Listen    string `json:"listen"`    // command API address (default :9999)
	Advertise string `json:"advertise"` // host:port the conductor reaches the API by (default: first IP, listen port)
	// InsecureHTTP serves the command API over plain http (development only); TLS otherwise.
	InsecureHTTP  bool          `json:"insecure_http"`
	LookupTimeout time.Duration `json:"-"` // default 10 min

	PodmanSocket       string   `json:"podman_socket"` // existing service; else one is started
	PodmanBinary       string   `json:"podman_binary"`
	StateDir           string   `json:"state_dir"`  // private state, a tmpfs in the ramdisk (default /run/ferric)
	GraphRoot          string   `json:"graph_root"` // image storage (default /var/lib/containers/storage)
	Runtime            string   `json:"runtime"`    // OCI runtime for the podman service
	Ulimits            []string `json:"ulimits"`
	NoPivotRoot        bool     `json:"no_pivot_root"`
	InsecureRegistries []string `json:"insecure_registries"`
	// Site is what the conductor's --registry-ca, --http(s)-proxy, --no-proxy, --registry-mirror, --image-policy
	// and --signature-lookaside say (agent.json keys registry_ca, registry_cas, http_proxy, https_proxy, no_proxy,
	// registry_mirrors, image_policy, signature_lookaside): the agent's own registry calls and its podman's pulls
	// use them. Proxy URLs may hold credentials: never logged (images.Trust.Redacted).
	images.Site

	TargetDevice string `json:"target_device"` // overrides root device hints (development: a loop device)
	MemoryBudget int64  `json:"memory_budget"` // overrides MemAvailable in the preflight
	SysRoot      string `json:"-"`             // prefix for /sys and /proc (tests)
	// Inspect makes the agent post its inventory to /v1/continue_inspection before the lookup, as IPA does when
	// the conductor boots it for in-band inspection (agent.json "inspect", --inspect, ferric.inspect= or IPA's
	// ipa-inspection-callback-url= on the kernel command line).
	Inspect bool `json:"inspect"`
	// InspectTimeout bounds the retries of that post (default 2 min, about IPA's 5 attempts); then the agent
	// goes on with the lookup, as IPA does.
	InspectTimeout time.Duration `json:"-"`
	// PowerOff is "system" (the ramdisk powers the machine off) or "exit" (the process ends; local boot).
	PowerOff string `json:"power_off"`
	// RescueRoot is where rescue.finalize_rescue writes etc/passwd, etc/group and etc/shadow (default "/"; a local
	// agent's is <state_dir>/rescue-root). Dropbear is the rescue login service (default /usr/sbin/dropbear).
	RescueRoot string `json:"rescue_root"`
	Dropbear   string `json:"dropbear"`
}

func (c *Config) defaults() {
	if c.Listen == "" {
		c.Listen = ":9999"
	}
	if c.LookupTimeout == 0 {
		c.LookupTimeout = 10 * time.Minute
	}
	if c.InspectTimeout == 0 {
		c.InspectTimeout = 2 * time.Minute
	}
	if c.StateDir == "" {
		c.StateDir = "/run/ferric"
	}
	if c.GraphRoot == "" {
		c.GraphRoot = "/var/lib/containers/storage"
	}
	if c.PowerOff == "" {
		c.PowerOff = "system"
	}
}

// Agent is a running agent.
type Agent struct {
	cfg   Config
	log   *logrus.Entry
	mu    sync.Mutex
	token string
	node  *ironic.LookupResult
	beat  chan struct{}
	quit  context.CancelFunc
	hw    hardware.Source
	api   *api.Server
	// inst is set once podman is up (podmanReady closed); podmanErr says why it is not.
	inst        *install.Installer
	podmanReady chan struct{}
	podmanErr   error
	podmanSvc   *podman.Service // the service this agent started (nil with --podman-socket)
	rescue      rescueState     // entered after rescue.finalize_rescue (rescue.go)
}

// Run runs the agent until ctx ends or it powers off.
func Run(ctx context.Context, cfg Config, log *logrus.Entry) error {
	cfg.defaults()
	if cfg.APIURL == "" {
		return errors.New("no conductor URL: set api_url in agent.json, ferric.api_url= (or ipa-api-url=) on the kernel command line, or --api-url")
	}
	conductorHTTP, err := ironic.NewHTTPClient(cfg.APICA, 30*time.Second)
	if err != nil {
		return err
	}
	var policy *images.Policy
	if len(cfg.Policy) > 0 {
		if policy, err = images.ParsePolicy(cfg.Policy); err != nil {
			return fmt.Errorf("image_policy in the agent configuration: %w", err)
		}
	}
	if cfg.PodmanSocket != "" && (!cfg.Trust.Empty() || policy != nil || len(cfg.Lookaside) > 0) {
		return errors.New("registry CAs, proxies, mirrors or an image policy are set but --podman-socket names a service the agent cannot configure: let the agent start its own podman (no --podman-socket)")
	}
	log.WithFields(logrus.Fields{"registries": cfg.Trust.Redacted(), "image_policy": policy != nil, "signature_lookaside": cfg.Lookaside}).
		Info("registry settings")
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	a := &Agent{cfg: cfg, log: log, token: cfg.Token, beat: make(chan struct{}, 1), quit: cancel,
		hw: hardware.Source{Root: cfg.SysRoot}}
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return fmt.Errorf("state dir: %w", err)
	}

	// Podman starts in the background: the lookup does not wait for it (agent ready sooner); installs do.
	// The agent ends only once the service it started has stopped (podman unmounts its storage as it stops).
	a.podmanReady = make(chan struct{})
	defer func() {
		cancel()
		<-a.podmanReady
		a.podmanSvc.Stop()
	}()
	go func() {
		defer close(a.podmanReady)
		socket := cfg.PodmanSocket
		if socket == "" {
			cc, err := containerscfg.Write(filepath.Join(cfg.StateDir, "containers"), containerscfg.Config{Trust: cfg.Trust,
				Insecure: cfg.InsecureRegistries, Policy: cfg.Policy, Lookaside: cfg.Lookaside})
			if err != nil {
				a.podmanErr = err
				log.WithError(err).Error("containers configuration not written")
				return
			}
			svc, err := podman.StartService(ctx, podman.ServiceConfig{Binary: cfg.PodmanBinary, Dir: filepath.Join(cfg.StateDir, "podman"),
				GraphRoot: cfg.GraphRoot, Runtime: cfg.Runtime, Ulimits: cfg.Ulimits, NoPivot: cfg.NoPivotRoot,
				Insecure: cfg.InsecureRegistries, Etc: cc.Etc, PrivateEtc: cc.NeedsEtc, Env: cc.Env}, log.WithField("component", "podman"))
			if err != nil {
				a.podmanErr = err
				log.WithError(err).Error("podman service did not start")
				return
			}
			a.podmanSvc = svc
			socket = svc.Socket
		}
		pc, err := podman.Connect(ctx, socket)
		if err != nil {
			a.podmanErr = err
			return
		}
		keys := filepath.Join(cfg.StateDir, "keys")
		if err := os.MkdirAll(keys, 0o700); err != nil {
			a.podmanErr = err
			return
		}
		a.inst = install.New(install.Config{Podman: pc, GraphRoot: cfg.GraphRoot, KeysDir: keys, Hardware: a.hw,
			TargetDevice: cfg.TargetDevice, MemoryBudget: cfg.MemoryBudget, Insecure: cfg.InsecureRegistries,
			Trust: cfg.Trust, Policy: policy, Rlimits: cfg.Ulimits, Log: log.WithField("component", "install")})
	}()

	// Command API.
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", cfg.Listen, err)
	}
	advertise := cfg.Advertise
	if advertise == "" {
		advertise = net.JoinHostPort(firstIP(), fmt.Sprint(ln.Addr().(*net.TCPAddr).Port))
	}
	scheme, certPEM := "http", ""
	a.api = api.New(ctx, api.Config{Version: Version, Token: a.currentToken, OnCommandDone: a.forceHeartbeat,
		Log: log.WithField("component", "api")}, a.commands())
	srv := &http.Server{Handler: a.api, ReadHeaderTimeout: 10 * time.Second}
	if !cfg.InsecureHTTP {
		cert, pemBytes, err := selfSigned(advertise)
		if err != nil {
			return err
		}
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		scheme, certPEM = "https", string(pemBytes)
		ln = tls.NewListener(ln, srv.TLSConfig)
	}
	go srv.Serve(ln)
	defer srv.Close()
	callback := scheme + "://" + advertise
	log.WithField("callback_url", callback).Info("command API listening")

	// Inspection first when asked (the conductor finds an inspecting node only this way), then lookup, then
	// heartbeat until the end.
	cl := &ironic.Client{Base: cfg.APIURL, HTTP: conductorHTTP, Log: log.WithField("component", "lookup")}
	nodeUUID := cfg.NodeUUID
	if cfg.Inspect {
		uuid, powerOff := a.inspect(ctx, cl)
		if powerOff {
			a.powerOff()
			return nil
		}
		if uuid != "" {
			nodeUUID = uuid
		}
	}
	nics, _ := a.hw.NICs()
	var macs []string
	for _, n := range nics {
		macs = append(macs, n.MAC)
	}
	lr, err := cl.Lookup(ctx, macs, nodeUUID, cfg.LookupTimeout)
	if err != nil {
		return err
	}
	a.takeToken(lr)
	a.mu.Lock()
	a.node = lr
	hasToken := a.token != ""
	a.mu.Unlock()
	if !hasToken {
		return errors.New("the conductor handed out this node's token before (lookup answered ******) and this agent has none: power-cycle the node through the conductor to get a fresh one")
	}
	log.WithField("node", lr.Node.UUID).Info("lookup succeeded; token received")
	interval := time.Duration(lr.Config.HeartbeatTimeout) * time.Second
	if interval <= 0 {
		interval = 300 * time.Second
	}
	hb := ironic.Heartbeat{CallbackURL: callback, AgentVersion: Version, AgentVerifyCA: certPEM}
	for {
		hb.AgentToken = a.currentToken()
		next := time.Duration(float64(interval) * (0.3 + 0.3*mrand.Float64()))
		if err := cl.Heartbeat(ctx, lr.Node.UUID, hb); err != nil {
			log.WithError(err).Warn("heartbeat failed")
			next = time.Duration(float64(5*time.Second) * (1 + mrand.Float64()))
		} else {
			log.Debug("heartbeat sent")
		}
		select {
		case <-ctx.Done():
			return nil
		case <-a.rescue.wait():
			srv.Close() // as IPA: a rescued node's agent serves no API and sends no heartbeat, only the login
			return a.serveRescue(ctx)
		case <-a.beat:
		case <-time.After(next):
		}
	}
}

// takeToken keeps the token of a lookup or continue_inspection answer: a real one (32 characters or more) replaces
// the agent's; "******" (handed out before) leaves the agent's own, as IPA does.
func (a *Agent) takeToken(lr *ironic.LookupResult) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if tok := lr.Config.AgentToken; tok != nil && *tok != "******" && len(*tok) >= 32 {
		a.token = *tok
	}
}

// inspect collects the inventory and posts it to the conductor; it returns the node's UUID from the answer, or ""
// when inspection failed, and whether the conductor asked the agent to power off (ferric_inspection_power_off). A failure is logged and the agent goes on with its lookup, as IPA does: the conductor's
// "inspect wait" timeout then fails the inspection with its own last_error.
func (a *Agent) inspect(ctx context.Context, cl *ironic.Client) (string, bool) {
	data, err := a.inventory(ctx)
	if err != nil {
		a.log.WithError(err).Error("inspection: inventory not collected")
		return "", false
	}
	res, err := cl.ContinueInspection(ctx, data, a.cfg.NodeUUID, a.cfg.InspectTimeout)
	if err != nil {
		a.log.WithError(err).Error("inspection failed; going on with the lookup")
		return "", false
	}
	a.takeToken(res)
	a.log.WithField("node", res.Node.UUID).Info("inspection data accepted by the conductor")
	return res.Node.UUID, res.Config.InspectionPowerOff
}

// powerOff ends the agent after an inspection the conductor finishes by powering the node off: the machine
// powers off (PowerOff "system"), or the process ends (local agents).
func (a *Agent) powerOff() {
	syscall.Sync()
	a.log.Info("inspection done and the conductor powers the node off: powering off now")
	if a.cfg.PowerOff == "system" {
		syscall.Reboot(syscall.LINUX_REBOOT_CMD_POWER_OFF)
	}
	a.quit()
}

// inventory collects what inspection reports, bounded by a minute (sysfs reads can stall on a sick device).
func (a *Agent) inventory(ctx context.Context) (*inventory.Data, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	return inventory.Collector{Root: a.cfg.SysRoot, Version: Version, OnlyDisk: a.cfg.TargetDevice}.Collect(ctx, a.log.WithField("component", "inventory"))
}

func (a *Agent) currentToken() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.token
}

// forceHeartbeat makes the heartbeat loop send one now (after every command, as IPA does).
func (a *Agent) forceHeartbeat() {
	select {
	case a.beat <- struct{}{}:
	default:
	}
}

// firstIP returns the first non-loopback IPv4 address, or 127.0.0.1.
func firstIP() string {
	addrs, _ := net.InterfaceAddrs()
	for _, ad := range addrs {
		if ipn, ok := ad.(*net.IPNet); ok && !ipn.IP.IsLoopback() && ipn.IP.To4() != nil {
			return ipn.IP.String()
		}
	}
	return "127.0.0.1"
}

// selfSigned makes a certificate for the advertised host, valid from an hour ago (clock skew) for a week.
func selfSigned(advertise string) (tls.Certificate, []byte, error) {
	host, _, err := net.SplitHostPort(advertise)
	if err != nil {
		host = advertise
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: host},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(7 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true, IsCA: true}
	if ip := net.ParseIP(host); ip != nil {
		tmpl.IPAddresses = []net.IP{ip}
	} else {
		tmpl.DNSNames = []string{host}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	cert, err := tls.X509KeyPair(certPEM, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}))
	return cert, certPEM, err
}
