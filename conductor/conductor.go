// Package conductor is the ferric-conductor service: it wires the store, the driver registry, the engine and the
// Ironic-compatible API server, and runs them until its context ends.
package conductor

import (
	"context"
	"errors"
	"fmt"
	stdlog "log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gorilla/mux"
	"github.com/sirupsen/logrus"

	"github.com/ferric-metal/ferric/conductor/internal/api"
	"github.com/ferric-metal/ferric/conductor/internal/artifact"
	"github.com/ferric-metal/ferric/conductor/internal/driver/directdeploy"
	"github.com/ferric-metal/ferric/conductor/internal/driver/ipxe"
	"github.com/ferric-metal/ferric/conductor/internal/engine"
	"github.com/ferric-metal/ferric/conductor/internal/imagecache"
	"github.com/ferric-metal/ferric/conductor/internal/metrics"
	"github.com/ferric-metal/ferric/conductor/internal/rollout"
	"github.com/ferric-metal/ferric/conductor/internal/store"
	"github.com/ferric-metal/ferric/conductor/internal/tlsreload"
	"github.com/ferric-metal/ferric/conductor/internal/transport"
	"github.com/ferric-metal/ferric/conductor/internal/ui"
	"github.com/ferric-metal/ferric/images"
)

// Config configures a conductor. main fills it from flags and environment.
type Config struct {
	// Listen is the API address (host:port). Ignored when Listener is set.
	Listen string
	// Listener, when set, is used instead of Listen (tests pass one bound to 127.0.0.1:0).
	Listener net.Listener
	// DB is "sqlite:///abs/path.db" or "postgres://...".
	DB string
	// Auth is "noauth" or "http_basic".
	Auth string
	// HTPasswd is the bcrypt htpasswd file for http_basic.
	HTPasswd string
	// InsecureNoAuth allows noauth on a non-loopback address.
	InsecureNoAuth bool
	// FleetLockSlots is how many clients of a FleetLock reboot group may reboot at once unless the operator set
	// the group's own count (--fleetlock-slots; 0 = 1).
	FleetLockSlots int
	// TLSCert and TLSKey (PEM files, both or neither) make the API serve HTTPS, TLS 1.2 or newer.
	TLSCert, TLSKey string
	// InsecureHTTP allows http_basic over plain HTTP on a non-loopback address (passwords in clear).
	InsecureHTTP bool
	// AgentAPICA is a PEM file of the CA certificates agents verify the API with (api_ca in agent.json); default
	// the certificates in TLSCert, which suits a self-signed certificate. A CA-signed deployment passes its CA.
	AgentAPICA string
	// Reload, when set, re-reads TLSCert, TLSKey and AgentAPICA at every value (main sends one per SIGHUP).
	Reload <-chan struct{}
	// PublicURL is the base URL clients and agents use; default http(s)://<listen address>.
	PublicURL string
	// Host names this conductor (reservations, the conductor field); default "ferric".
	Host string
	// Engine tunes the engine (timeouts, periodic intervals, --workers).
	Engine engine.Config
	// ConductorGroup is --conductor-group: this conductor drives only nodes of this group (Ironic's
	// [conductor]conductor_group).
	ConductorGroup string
	// ConductorHeartbeatInterval and ConductorDeadAfter are how often this conductor heartbeats in the database
	// (default 10 s) and how old another's heartbeat may get before its nodes are taken over (default 60 s).
	ConductorHeartbeatInterval, ConductorDeadAfter time.Duration
	// Ready, when set, is called with the public URL once the API accepts connections.
	Ready func(publicURL string)
	// MetricsListen is the address of the Prometheus endpoint (GET /metrics, no authentication; metrics.go); ""
	// serves no metrics. MetricsListener, when set, is used instead (tests).
	MetricsListen   string
	MetricsListener net.Listener

	// AgentBinary is ferric-agent, started by the local-agent boot interface ("" disables booting it).
	AgentBinary string
	// AgentStateDir holds local agents' state and logs (short path; default /run/ferric-agents).
	AgentStateDir string
	// AgentRuntime and AgentUlimits configure local agents' podman (this sandbox needs runc and low ulimits).
	AgentRuntime string
	AgentUlimits []string
	// LocalAgentDevices are block devices besides loop devices that local agents may wipe (--local-agent-devices).
	LocalAgentDevices []string
	// InspectAddPorts says which NICs inspection (out-of-band and in-band) makes ports for: all, pxe (default; for Redfish the
	// PXE NIC is unknown, so every enabled NIC, as Ironic) or none (--inspect-add-ports).
	InspectAddPorts string
	// InsecureRegistries are reached over plain http by the conductor and the agents.
	InsecureRegistries []string
	// AllowMD5Checksum lets the direct deploy interface accept md5 image checksums (--allow-md5-checksum, Ironic's
	// [agent]allow_md5_checksum; off: md5 proves nothing against a hostile image server).
	AllowMD5Checksum bool
	// AutodetectDeployInterfaces are the deploy interfaces the autodetect deploy interface chooses from, in the order
	// it asks them; the last is the fallback (--autodetect-deploy-interfaces, Ironic's autodetect_deploy_interfaces;
	// nil: bootc, direct). Each must be a concrete deploy interface enabled wherever autodetect is.
	AutodetectDeployInterfaces []string
	// Registries is the site's registry settings (--registry-ca, --http(s)-proxy, --no-proxy, --registry-mirror,
	// --image-policy with keys inline, --signature-lookaside): digest resolution uses them and every agent gets them.
	Registries images.Site
	// MediaDir holds boot ISOs served to BMCs (default /var/lib/ferric/media or a temp dir).
	MediaDir string
	// IPXEDir holds the prepared iPXE agent boots (kernel, initramfs, configuration; default ferric-ipxe in the
	// temp dir).
	IPXEDir string
	// EFILoader is the UEFI loader put on agent ISOs (default systemd-boot's).
	EFILoader string
	// BootcPollInterval is how often image-mode reporters poll (default 60 s); BootcStaleTTL how long a resolved
	// tag is trusted by the images view (default 10 min); BootcStaleRefresh how often followed tags are resolved
	// in the background, each by the one conductor that owns it (default BootcStaleTTL; negative: never).
	BootcPollInterval, BootcStaleTTL, BootcStaleRefresh time.Duration
	// HostdBinary is the ferric-hostd the conductor serves to hosts whose deploy sets
	// instance_info.bootc_install_hostd ("" refuses that option).
	HostdBinary string
	// AgentURL is the conductor URL as agents reach it (default PublicURL), e.g. http://10.0.2.2:6385 from QEMU
	// user networking while BMCs use PublicURL.
	AgentURL string
	// ArtifactsDir is the only directory local deploy artifacts (driver_info deploy_kernel, deploy_ramdisk,
	// deploy_iso) may be read from; "" refuses local paths.
	ArtifactsDir string
	// ArtifactMaxBytes caps one deploy artifact (default 2 GiB).
	ArtifactMaxBytes int64
	// ArtifactAllow lists hosts, IPs and CIDRs that artifact URLs may reach although they are loopback,
	// link-local or metadata addresses.
	ArtifactAllow []string
	// RegistryAliases maps a registry as nodes see it to the address the conductor uses to resolve digests
	// (e.g. 10.0.2.2:5000 -> 127.0.0.1:5000).
	RegistryAliases map[string]string
	// IPMIRetryTimeout and IPMIMinCommandInterval are Ironic's [ipmi]command_retry_timeout (how long one IPMI
	// operation is retried, default 60 s) and [ipmi]min_command_interval (the least time between two operations
	// on one BMC, default 5 s: some BMCs fail when polled faster). Zero takes the default.
	IPMIRetryTimeout, IPMIMinCommandInterval time.Duration
	// ImageDownloadSource is --image-download-source, Ironic's [agent]image_download_source for the direct
	// interface: http (default; the agent downloads image_source) or local (the conductor caches and serves it).
	ImageDownloadSource string
	// ImageCacheDir holds the image cache of local downloads (default ferric-image-cache in the temp dir).
	ImageCacheDir string
	// ImageCacheMaxBytes bounds the cache (default 20 GiB); ImageDownloadTimeout bounds one download (default 1 h).
	ImageCacheMaxBytes   int64
	ImageDownloadTimeout time.Duration
}

// Run serves the API and runs the engine until ctx ends, then shuts down gracefully: in-flight requests finish,
// in-flight node work finishes (within the engine's grace), and reservations are released.
func Run(ctx context.Context, cfg Config, log *logrus.Entry) error {
	if cfg.Auth == "" {
		cfg.Auth = "noauth"
	}
	auth, err := authenticator(cfg, log.WithField("component", "auth"))
	if err != nil {
		return err
	}
	tlsFiles, err := tlsreload.Load(tlsreload.Files{CertFile: cfg.TLSCert, KeyFile: cfg.TLSKey, AgentCAFile: cfg.AgentAPICA},
		log.WithField("component", "tls"))
	if err != nil {
		return err
	}

	// Listen before opening the store: an exposure checkExposure refuses fails before any database is created.
	ln, err := listen(&cfg, tlsFiles.Enabled())
	if err != nil {
		return err
	}
	defer ln.Close()
	mln, err := listenMetrics(cfg)
	if err != nil {
		return err
	}
	if mln != nil {
		defer mln.Close()
	}
	if cfg.DB == "" {
		return errors.New("no database: pass --db sqlite:///abs/path.db or postgres://...")
	}

	st, err := store.Open(ctx, cfg.DB)
	if err != nil {
		return err
	}
	defer st.Close()

	// One set of keep-alive transports to agents and BMCs for the process (polls reuse their connections).
	transports := transport.NewCache(transport.Config{})
	defer transports.Close()
	d, err := buildDrivers(ctx, &cfg, st, tlsFiles, transports, log)
	if err != nil {
		return err
	}
	media, netboot, policy, cache, reg := d.media, d.netboot, d.policy, d.cache, d.reg

	ecfg := cfg.Engine
	if cfg.Host != "" {
		ecfg.Host = cfg.Host
	}
	members, err := joinCluster(ctx, cfg, ecfg.Host, st, reg, log.WithField("component", "cluster"))
	if err != nil {
		return err
	}
	ecfg.Ring = members
	// The engine needs the metrics' observer, and the metrics read the engine's queue: the gauge reads the
	// engine through a pointer set once it exists (0 until then).
	var engRef atomic.Pointer[engine.Engine]
	mx, err := startMetrics(mln, st, metrics.Sources{ConductorsAlive: members.AliveByGroup, QueueDepth: func() int {
		if e := engRef.Load(); e != nil {
			return e.QueueDepth()
		}
		return 0
	}}, log.WithField("component", "metrics"))
	if err != nil {
		return err
	}
	defer mx.stop()
	if mx.observer != nil {
		ecfg.Observer = mx.observer
	}
	eng := engine.New(ecfg, st, reg, log.WithField("component", "engine"))
	engRef.Store(eng)
	stale := startStaleCheck(ctx, cfg, st, policy, members.OwnsFleetWide)
	// The web page reads the store and the API's stale resolver; its routes sit behind the API's authentication.
	pages, err := ui.New(ui.Config{Store: st, Stale: stale, DefaultSlots: cfg.FleetLockSlots}, log.WithField("component", "ui"))
	if err != nil {
		return err
	}
	srv := api.New(api.Config{PublicURL: cfg.PublicURL, Auth: auth, Cluster: members, Measure: mx.measure, Pages: pages.Register,
		FleetLock: api.FleetLockConfig{DefaultSlots: cfg.FleetLockSlots},
		Bootc:     api.BootcConfig{PollInterval: cfg.BootcPollInterval, Stale: stale, Hostd: cfg.HostdBinary}, Extra: func(r *mux.Router) {
			media.Register(r)
			netboot.Register(r)
		}}, eng, log.WithField("component", "api"))
	// net/http's own complaints (TLS handshakes from plain-HTTP clients and scanners) go to our log, not stderr.
	httpErrs := log.WithField("component", "http").WriterLevel(logrus.DebugLevel)
	defer httpErrs.Close()
	imgs := cache.Handler(directdeploy.Grants(st), log.WithField("component", "imagecache"))
	hs := &http.Server{Handler: withImages(srv, imgs), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second,
		ErrorLog: stdlog.New(httpErrs, "", 0)}

	// Recover before serving: no request may see or reserve a node while a crashed run's stale reservations and
	// transient states are still in place.
	if err := eng.Recover(ctx); err != nil {
		return fmt.Errorf("recover after restart: %w", err)
	}
	// The membership heartbeat outlives serve: the engine finishes its in-flight work inside serve, and a
	// conductor that stopped heartbeating meanwhile would have its reservations broken under it.
	beatCtx, stopBeat := context.WithCancel(context.WithoutCancel(ctx))
	beatDone := make(chan struct{})
	go func() { members.Run(beatCtx); close(beatDone) }()
	// Rollouts advance at every tick of their owner; they stop with serve (a rollout is only state in the store,
	// so the next owner continues it).
	rollCtx, stopRollouts := context.WithCancel(ctx)
	defer stopRollouts()
	go rollout.New(rollout.Config{Store: st, Owns: members.OwnsFleetWide,
		Log: log.WithField("component", "rollout")}).Run(rollCtx, rolloutTick)
	err = serve(ctx, cfg, eng, hs, ln, tlsFiles, log)
	stopBeat()
	<-beatDone
	leaveCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if lerr := members.Leave(leaveCtx); lerr != nil {
		log.WithError(lerr).Warn("could not mark this conductor offline; the others take its nodes over after --conductor-dead-after")
	}
	return err
}

// serve runs the engine and the API server on ln until ctx ends or either fails, then shuts both down: the API
// first (in-flight requests get 30 s), then the engine, whose error is returned if nothing failed before.
func serve(ctx context.Context, cfg Config, eng *engine.Engine, hs *http.Server, ln net.Listener, tlsFiles *tlsreload.Store,
	log *logrus.Entry) error {
	// The engine's context is detached from ctx: the API stops taking requests first, and only then is the engine
	// told to stop, so no request in flight reaches an engine that is already shutting down.
	engCtx, stopEngine := context.WithCancel(context.WithoutCancel(ctx))
	engDone := make(chan error, 1)
	go func() { engDone <- eng.Run(engCtx) }()
	if cfg.Reload != nil {
		watchCtx, stopWatch := context.WithCancel(ctx)
		defer stopWatch()
		go tlsFiles.Watch(watchCtx, cfg.Reload)
	}
	srvDone := make(chan error, 1)
	go func() {
		if tlsFiles.Enabled() {
			hs.TLSConfig = tlsFiles.TLSConfig()
			srvDone <- hs.ServeTLS(ln, "", "") // certificates come from TLSConfig.GetCertificate
			return
		}
		srvDone <- hs.Serve(ln)
	}()
	log.WithFields(logrus.Fields{"listen": ln.Addr().String(), "public_url": cfg.PublicURL, "auth": cfg.Auth,
		"tls": tlsFiles.Enabled(), "db": redactDSN(cfg.DB)}).Info("conductor started")
	if cfg.Ready != nil {
		cfg.Ready(cfg.PublicURL)
	}

	var runErr error
	select {
	case <-ctx.Done():
	case err := <-srvDone:
		runErr = fmt.Errorf("api server: %w", err)
	case err := <-engDone:
		runErr = fmt.Errorf("engine: %w", err)
		stopEngine()
	}
	log.Info("conductor shutting down")
	shCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := hs.Shutdown(shCtx); err != nil {
		log.WithError(err).Warn("api server did not shut down cleanly")
	}
	stopEngine()
	if runErr == nil {
		if err := <-engDone; err != nil {
			runErr = fmt.Errorf("engine: %w", err)
		}
	}
	log.Info("conductor stopped")
	return runErr
}

// registryPolicy parses --image-policy (nil when none) and logs the registry settings, without their secrets.
func registryPolicy(cfg Config, log *logrus.Entry) (*images.Policy, error) {
	var policy *images.Policy
	if len(cfg.Registries.Policy) > 0 {
		var err error
		if policy, err = images.ParsePolicy(cfg.Registries.Policy); err != nil {
			return nil, fmt.Errorf("--image-policy: %w", err)
		}
	}
	log.WithFields(logrus.Fields{"registries": cfg.Registries.Trust.Redacted(), "image_policy": policy != nil,
		"signature_lookaside": cfg.Registries.Lookaside}).Info("registry settings for resolution and agents")
	return policy, nil
}

// listen opens the API listener (cfg.Listener, else --listen, default 127.0.0.1:6385), refuses an exposure the
// authentication and TLS settings do not allow, and fills in cfg.PublicURL from the bound address when unset.
func listen(cfg *Config, tls bool) (net.Listener, error) {
	ln := cfg.Listener
	if ln == nil {
		if cfg.Listen == "" {
			cfg.Listen = "127.0.0.1:6385"
		}
		var err error
		if ln, err = net.Listen("tcp", cfg.Listen); err != nil {
			return nil, fmt.Errorf("--listen %s: %w", cfg.Listen, err)
		}
	}
	addr := ln.Addr().(*net.TCPAddr)
	if err := checkExposure(addr, cfg.Auth, tls, cfg.InsecureNoAuth, cfg.InsecureHTTP); err != nil {
		ln.Close()
		return nil, err
	}
	if cfg.PublicURL == "" {
		cfg.PublicURL = "http://" + addr.String()
		if tls {
			cfg.PublicURL = "https://" + addr.String()
		}
	}
	cfg.PublicURL = strings.TrimRight(cfg.PublicURL, "/")
	return ln, nil
}

// authenticator builds the API's Authenticator for --auth (nil for noauth).
func authenticator(cfg Config, log *logrus.Entry) (api.Authenticator, error) {
	switch cfg.Auth {
	case "noauth":
		return nil, nil
	case "http_basic":
		if cfg.HTPasswd == "" {
			return nil, errors.New("--auth http_basic needs --htpasswd FILE (bcrypt entries, e.g. from htpasswd -nbB user password)")
		}
		h, err := api.LoadHTPasswd(cfg.HTPasswd, log)
		if err != nil {
			return nil, err // not a nil *HTTPBasic inside a non-nil interface
		}
		return h, nil
	}
	return nil, fmt.Errorf("--auth %q: use noauth or http_basic", cfg.Auth)
}

// checkExposure refuses listeners that would expose the API or its passwords: noauth off loopback, and http_basic
// over plain HTTP off loopback (each password would cross the network in clear), unless explicitly allowed.
func checkExposure(addr *net.TCPAddr, auth string, tls, insecureNoAuth, insecureHTTP bool) error {
	if addr.IP.IsLoopback() {
		return nil
	}
	switch {
	case auth == "noauth" && !insecureNoAuth:
		return fmt.Errorf("refusing to serve the API without authentication on %s: use --auth http_basic --htpasswd FILE, listen on 127.0.0.1, or pass --insecure-noauth", addr)
	case auth == "http_basic" && !tls && !insecureHTTP:
		return fmt.Errorf("refusing --auth http_basic over plain HTTP on %s: passwords would cross the network in clear; pass --tls-cert FILE --tls-key FILE, listen on 127.0.0.1 behind a TLS proxy, or pass --insecure-http", addr)
	}
	return nil
}

// agentURLOf is the conductor URL as agents reach it.
func agentURLOf(cfg Config) string {
	if cfg.AgentURL != "" {
		return cfg.AgentURL
	}
	return cfg.PublicURL
}

// newIPXEServer makes the server of iPXE agent boots (served at the agents' URL: iPXE runs on the node) and, after
// a restart, deletes the boots of nodes no longer booting their agent.
func newIPXEServer(ctx context.Context, cfg Config, st store.Store, log *logrus.Entry) *ipxe.Server {
	dir := cfg.IPXEDir
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "ferric-ipxe")
	}
	byMAC := func(ctx context.Context, mac string) (*store.Node, error) { return st.NodeByMACs(ctx, []string{mac}) }
	s := ipxe.NewServer(dir, agentURLOf(cfg), byMAC, ipxe.Names()...)
	if k := s.Prune(ctx, st.GetNode); k > 0 {
		log.WithField("count", k).Info("deleted iPXE boots of nodes no longer booting their agent")
	}
	return s
}

// openImageCache checks --image-download-source and opens the image cache of image_download_source local,
// holding again the cached images of deploys in progress (holds live in memory, so a restart forgets them).
func openImageCache(ctx context.Context, cfg *Config, st store.Store, arts *artifact.Fetcher, log *logrus.Entry) (*imagecache.Cache, error) {
	if cfg.ImageDownloadSource == "" {
		cfg.ImageDownloadSource = directdeploy.SourceHTTP
	}
	if err := directdeploy.CheckSource(cfg.ImageDownloadSource, "--image-download-source"); err != nil {
		return nil, err
	}
	if cfg.ImageCacheDir == "" {
		cfg.ImageCacheDir = filepath.Join(os.TempDir(), "ferric-image-cache")
	}
	// Instance images the conductor downloads for local obey the artifact rules (arts) and the site's CAs/proxies.
	cache, err := imagecache.New(imagecache.Config{Dir: cfg.ImageCacheDir, MaxBytes: cfg.ImageCacheMaxBytes,
		Timeout: cfg.ImageDownloadTimeout, Trust: cfg.Registries.Trust, Guard: arts, Held: directdeploy.Holds(st)},
		log.WithField("component", "imagecache"))
	if err != nil {
		return nil, err
	}
	if k, err := directdeploy.RestoreHolds(ctx, st, cache); err != nil {
		return nil, err
	} else if k > 0 {
		log.WithField("count", k).Info("cached images held again for deploys in progress")
	}
	return cache, nil
}

// withImages serves the image cache's /images/ in front of the API router: public like the boot media (an agent
// has no API credentials; the per-deploy token in the path is the capability) and kept out of the API's access
// log, which would record that token.
func withImages(api, images http.Handler) http.Handler {
	r := mux.NewRouter()
	r.PathPrefix(imagecache.PathPrefix).Handler(images)
	r.NotFoundHandler = api // everything else is the API's, with its authentication and access log
	return r
}

// redactDSN hides a password in a database URL for logging.
func redactDSN(dsn string) string {
	at := strings.LastIndex(dsn, "@")
	scheme := strings.Index(dsn, "://")
	if at < 0 || scheme < 0 || at < scheme {
		return dsn
	}
	creds := dsn[scheme+3 : at]
	if user, _, ok := strings.Cut(creds, ":"); ok {
		return dsn[:scheme+3] + user + ":******" + dsn[at:]
	}
	return dsn
}
