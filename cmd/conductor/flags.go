package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/ferric-metal/ferric/conductor"
	"github.com/ferric-metal/ferric/images"
)

// options are the flags that are not conductor.Config fields as they stand: apply checks and converts them.
type options struct {
	stateDir, logLevel, autoIfaces, imageCacheDir, policyFile *string
	cbTO, inspTO                                              *time.Duration // deploy callback, inspection wait
	inspOff                                                   *bool
	erasePrio, maxWait, metaPrio                              *int
	artMiB                                                    *int64
	aliases, regCAs, mirrors, lookaside                       []string
}

// parse turns args (and FERRIC_* environment variables) into the conductor's configuration and logger, refusing
// the values the engine cannot check later. Ferric has one process and one flag set where Ironic has ironic.conf
// sections for its API and conductor services; each group of flags in define names the Ironic option it mirrors,
// where there is one.
func parse(args []string) (conductor.Config, *logrus.Entry, error) {
	var cfg conductor.Config
	fs := flag.NewFlagSet("ferric-conductor", flag.ContinueOnError)
	o := define(fs, &cfg)
	if err := fromEnvironment(fs); err != nil {
		return cfg, nil, err
	}
	if err := fs.Parse(args); err != nil {
		return cfg, nil, err
	}
	if err := o.check(&cfg); err != nil {
		return cfg, nil, err
	}
	if err := o.registries(&cfg, args); err != nil {
		return cfg, nil, err
	}
	lvl, err := logrus.ParseLevel(*o.logLevel)
	if err != nil {
		return cfg, nil, fmt.Errorf("--log-level %q: use debug, info, warn or error", *o.logLevel)
	}
	logger := logrus.New()
	logger.SetLevel(lvl)
	return cfg, logrus.NewEntry(logger), o.apply(&cfg)
}

// define declares every flag on fs: those that are conductor.Config fields as they stand write into cfg, the
// others into the returned options, which apply checks and converts after parsing.
func define(fs *flag.FlagSet, cfg *conductor.Config) *options {
	// State and logging; cbTO mirrors [conductor]deploy_callback_timeout, inspTO and inspOff mirror
	// [conductor]inspect_wait_timeout and [inspector]power_off.
	o := &options{}
	o.stateDir = fs.String("state-dir", defaultStateDir(), "directory for the embedded SQLite database and other state")
	o.logLevel = fs.String("log-level", "info", "log level: debug, info, warn, error")
	o.cbTO = fs.Duration("deploy-callback-timeout", 1800*time.Second, "how long a node may wait for its agent")
	o.inspTO = fs.Duration("inspect-wait-timeout", 1800*time.Second, "how long in-band inspection may wait for the agent's inventory, from the start (0: unlimited; Ironic's [conductor]inspect_wait_timeout)")
	o.inspOff = fs.Bool("inspect-power-off", true, "power nodes off when in-band inspection finishes (Ironic's [inspector]power_off)")
	// API endpoint and authentication: [api]host_ip/port, [DEFAULT]auth_strategy and
	// http_basic_auth_user_file. Ferric refuses unauthenticated or cleartext-password service off loopback
	// unless told, where Ironic leaves that to the deployer.
	fs.StringVar(&cfg.Listen, "listen", "127.0.0.1:6385", "API listen address")
	// Ferric-only: the Prometheus endpoint, on its own address as exporters have it (unauthenticated: bind it
	// where only the scraper reaches it).
	fs.StringVar(&cfg.MetricsListen, "metrics-listen", "", "address of the Prometheus endpoint GET /metrics, e.g. 127.0.0.1:9608; no authentication (node counts and states): bind it where only Prometheus reaches it; empty = no metrics")
	fs.StringVar(&cfg.DB, "db", "", "database: sqlite:///abs/path.db or postgres://user:pass@host/db (default: SQLite in --state-dir)")
	fs.StringVar(&cfg.Auth, "auth", "noauth", "API authentication: noauth or http_basic")
	fs.StringVar(&cfg.HTPasswd, "htpasswd", "", "htpasswd file with bcrypt entries for --auth http_basic")
	fs.BoolVar(&cfg.InsecureNoAuth, "insecure-noauth", false, "allow --auth noauth on a non-loopback address")
	fs.IntVar(&cfg.FleetLockSlots, "fleetlock-slots", 1, "reboot slots of a FleetLock group (clients of the group rebooting at once) unless set on the group with PUT /v1/fleetlock/groups/{group}")
	// TLS: [api]enable_ssl_api with [api]cert_file/key_file; --agent-api-ca is [agent]api_ca_file.
	fs.StringVar(&cfg.TLSCert, "tls-cert", "", "PEM certificate (then intermediates) for the API: serve HTTPS, TLS 1.2+; reloaded on SIGHUP")
	fs.StringVar(&cfg.TLSKey, "tls-key", "", "PEM private key of --tls-cert")
	fs.BoolVar(&cfg.InsecureHTTP, "insecure-http", false, "allow --auth http_basic over plain HTTP on a non-loopback address (passwords in clear)")
	fs.StringVar(&cfg.AgentAPICA, "agent-api-ca", "", "PEM CA certificates agents verify the API with (default: the certificates of --tls-cert; pass your CA when it signed --tls-cert)")
	// Names: [api]public_endpoint and [DEFAULT]host.
	fs.StringVar(&cfg.PublicURL, "public-url", "", "base URL clients and agents use (default http://<listen>, https:// with --tls-cert)")
	fs.StringVar(&cfg.Host, "host", "", "conductor name (default: the machine's host name)")
	// Several conductors on one PostgreSQL: [conductor]conductor_group, heartbeat_interval, heartbeat_timeout and
	// workers_pool_size.
	fs.StringVar(&cfg.ConductorGroup, "conductor-group", "", "conductor group: this conductor drives only nodes whose conductor_group is this")
	fs.DurationVar(&cfg.ConductorHeartbeatInterval, "conductor-heartbeat-interval", 10*time.Second, "how often this conductor heartbeats in the database")
	fs.DurationVar(&cfg.ConductorDeadAfter, "conductor-dead-after", 60*time.Second, "a conductor silent this long is dead: the others break its reservations and drive its nodes")
	fs.IntVar(&cfg.Engine.Workers, "workers", 64, "periodic jobs (agent polls, power reads) run at once")
	fs.DurationVar(&cfg.Engine.HandOffTimeout, "handoff-timeout", 30*time.Second, "how long a conductor waits for the conductor that drives a node to take a provision or power request it handed over; past it the request is withdrawn and the client gets 503")
	fs.DurationVar(&cfg.Engine.OperationTimeout, "operation-timeout", 2*time.Hour, "lease of a node's lock for one operation (deploy start, inspection, RAID, firmware): past it the operation is cancelled and fails, and the node is unlocked")
	// Cleaning: [conductor]automated_clean (inverted) and the [deploy] erase priorities; max-wait-step
	// is [conductor]max_conductor_wait_step_seconds.
	fs.BoolVar(&cfg.Engine.NoAutomatedClean, "no-automated-clean", false, "skip automated cleaning on provide and undeploy")
	o.erasePrio = fs.Int("erase-devices-priority", 0, "priority of the agent's erase_devices (every byte of the install disk) in automated cleaning; 0 = not run (Ironic's [deploy]erase_devices_priority; the agent offers 10)")
	o.maxWait = fs.Int("max-wait-step-seconds", 30, "longest wait a wait step may ask for; longer requests wait this long (Ironic's [conductor]max_conductor_wait_step_seconds)")
	o.metaPrio = fs.Int("erase-devices-metadata-priority", 99, "priority of the agent's erase_devices_metadata (partition tables and signatures) in automated cleaning; 0 = not run (Ironic's [deploy]erase_devices_metadata_priority)")
	// Agent callbacks: the inverse of [agent]require_tls, and [api]ramdisk_heartbeat_timeout.
	fs.BoolVar(&cfg.Engine.InsecureAgentHTTP, "insecure-agent-http", false, "accept agents calling back over plain http (development only)")
	fs.DurationVar(&cfg.Engine.HeartbeatTimeout, "heartbeat-timeout", 300*time.Second, "agent heartbeat timeout sent to agents (they heartbeat every 30-60 % of it)")
	fs.StringVar(&cfg.AgentURL, "agent-url", "", "conductor URL as agents reach it (default --public-url)")
	// Ferric-only: image-mode hosts (ferric-hostd) and the images view's stale check.
	fs.StringVar(&cfg.HostdBinary, "hostd-binary", "", "ferric-hostd binary served to image-mode hosts whose deploy sets instance_info.bootc_install_hostd (cloud-init installs it at first boot, checked against its SHA-256)")
	fs.DurationVar(&cfg.BootcPollInterval, "bootc-poll-interval", 60*time.Second, "how often deployed image-mode hosts' reporters poll the conductor")
	fs.DurationVar(&cfg.BootcStaleTTL, "bootc-stale-ttl", 10*time.Minute, "how long GET /v1/bootc/images trusts a resolved tag before asking the registry again")
	fs.DurationVar(&cfg.BootcStaleRefresh, "bootc-stale-refresh", 0, "how often the tags hosts follow are resolved in the background, each by the conductor that owns it (0: every --bootc-stale-ttl; negative: never)")
	// Ferric-only: how agents reach registries the conductor sees under another address.
	fs.Var(&listFlag{&o.aliases}, "registry-alias", "NODE_VIEW=CONDUCTOR_VIEW registry address, e.g. 10.0.2.2:5000=127.0.0.1:5000 (repeatable)")
	// Ferric-only: agent ISO building and the local-agent boot interface (agents as podman containers).
	fs.StringVar(&cfg.EFILoader, "efi-loader", "", "UEFI loader for agent ISOs (default /usr/lib/systemd/boot/efi/systemd-bootx64.efi)")
	fs.StringVar(&cfg.AgentBinary, "agent-binary", "", "ferric-agent binary for the local-agent boot interface")
	fs.StringVar(&cfg.AgentStateDir, "agent-state-dir", "", "state and logs of local agents (default /run/ferric-agents)")
	fs.StringVar(&cfg.AgentRuntime, "agent-runtime", "", "OCI runtime for local agents' podman (e.g. runc)")
	fs.Var(&listFlag{&cfg.AgentUlimits}, "agent-ulimit", "default container ulimit for local agents, e.g. nofile=1024:1024 (repeatable)")
	// In-band inspection: [inspector]add_ports.
	fs.StringVar(&cfg.InspectAddPorts, "inspect-add-ports", "pxe", "ports inspection creates: all, pxe "+
		"(the NIC the agent booted from; every NIC when unknown, as with Redfish, as Ironic) or none")
	fs.Var(&listFlag{&cfg.LocalAgentDevices}, "local-agent-devices", "block device besides /dev/loopN that local agents may wipe (repeatable)")
	fs.Var(&listFlag{&cfg.InsecureRegistries}, "insecure-registry", "registry reached over plain http (repeatable)")
	// Ironic's [agent]allow_md5_checksum: the direct deploy interface refuses md5 image checksums unless set.
	fs.BoolVar(&cfg.AllowMD5Checksum, "allow-md5-checksum", false, "accept md5 image checksums in the direct deploy interface (refused by default: use sha256 or sha512)")
	// Ironic's autodetect_deploy_interfaces (its default also starts with ramdisk, which Ferric has not): one
	// comma-separated value, since order matters and a repeated flag would append to the default.
	o.autoIfaces = fs.String("autodetect-deploy-interfaces", "bootc,direct", "deploy interfaces the autodetect deploy interface chooses from, in the order it asks them; the last is the fallback when none claims the image")
	// Deploy artifacts: --artifacts-dir plays the part of [conductor]file_url_allowed_paths; the size cap
	// and the host allow-list guard the conductor's own downloads against SSRF and disk exhaustion.
	fs.StringVar(&cfg.ArtifactsDir, "artifacts-dir", "", "the only directory local deploy_kernel/deploy_ramdisk/deploy_iso paths may name (default: local paths refused)")
	o.artMiB = fs.Int64("artifact-max-mib", 2048, "largest deploy artifact the conductor reads or downloads, in MiB")
	fs.Var(&listFlag{&cfg.ArtifactAllow}, "artifact-allow-host", "host, IP or CIDR that artifact URLs may reach although it is loopback/link-local/metadata (repeatable)")
	// [agent]image_download_source, and the conductor's image cache that local uses (Ironic's [deploy]http_root
	// image subdir; the cache obeys the artifact address rules above and the registry CAs and proxies below).
	fs.StringVar(&cfg.ImageDownloadSource, "image-download-source", "http", "where the direct interface's agent downloads http(s) images from: http (image_source itself) or local (the conductor caches the image and serves it); instance_info/driver_info image_download_source override it")
	o.imageCacheDir = fs.String("image-cache-dir", "", "directory of the conductor's image cache for image_download_source local (default <state-dir>/image-cache)")
	fs.Int64Var(&cfg.ImageCacheMaxBytes, "image-cache-max-bytes", 20<<30, "total size of the image cache; least recently used images no deploy holds are evicted")
	fs.DurationVar(&cfg.ImageDownloadTimeout, "image-download-timeout", time.Hour, "longest one image download into the cache may take")
	fs.DurationVar(&cfg.IPMIRetryTimeout, "ipmi-retry-timeout", 60*time.Second, "how long one IPMI operation is retried (Ironic's [ipmi]command_retry_timeout)")
	fs.DurationVar(&cfg.IPMIMinCommandInterval, "ipmi-min-command-interval", 5*time.Second, "least time between two IPMI operations on one BMC (Ironic's [ipmi]min_command_interval; some BMCs fail when polled faster)")
	// [conductor]allow_deleting_available_nodes, inverted.
	fs.BoolVar(&cfg.Engine.NoDeleteAvailable, "no-delete-available", false, "refuse to delete nodes in available (Ironic's allow_deleting_available_nodes=false)")
	fs.IntVar(&cfg.Engine.HistoryMaxEntries, "node-history-max-entries", 0, "history records kept per node (Ironic's [conductor]node_history_max_entries; 0 = 300, negative = record none)")
	// Ferric-only: registry trust, proxies, mirrors and signature policy for bootc images, shared by the
	// conductor's digest resolution and the agents' pulls (containers-registries.conf and policy.json).
	fs.Var(&listFlag{&o.regCAs}, "registry-ca", "PEM CA certificates for registries: FILE (every registry) or REGISTRY=FILE (that one); trusted by digest resolution and agents (repeatable)")
	fs.StringVar(&cfg.Registries.HTTPProxy, "http-proxy", "", "proxy for http registry calls of the conductor and agents (with credentials: set FERRIC_HTTP_PROXY, never the flag)")
	fs.StringVar(&cfg.Registries.HTTPSProxy, "https-proxy", "", "proxy for https registry calls of the conductor and agents (with credentials: set FERRIC_HTTPS_PROXY, never the flag)")
	fs.StringVar(&cfg.Registries.NoProxy, "no-proxy", "", "hosts and domains reached without a proxy (NO_PROXY syntax)")
	fs.Var(&listFlag{&o.mirrors}, "registry-mirror", "REGISTRY=MIRROR: resolve and pull REGISTRY's images through MIRROR first (repeatable, in order)")
	o.policyFile = fs.String("image-policy", "", "containers-policy.json enforced by agents' pulls (keyPath keys are sent inline); its reject scopes are checked before an agent boots")
	fs.Var(&listFlag{&o.lookaside}, "signature-lookaside", "REGISTRY=URL where REGISTRY's GPG signatures are published, for signedBy policies (repeatable)")
	return o
}

// fromEnvironment sets every flag whose FERRIC_<FLAG> variable (dashes as underscores) is set; parsing the
// command line afterwards lets flags win. A value the flag refuses stops the start naming the variable (not the
// value: it may be a secret), instead of being dropped.
func fromEnvironment(fs *flag.FlagSet) error {
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		name := "FERRIC_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(name); ok && envErr == nil {
			if err := fs.Set(f.Name, v); err != nil {
				envErr = fmt.Errorf("environment variable %s: not a valid value for --%s (%s)", name, f.Name, f.Usage)
			}
		}
	})
	return envErr
}

// check refuses what the flag package cannot: the messages name the flag, so a typo in a unit file is obvious.
func (o *options) check(cfg *conductor.Config) error {
	if *o.maxWait < 1 {
		return fmt.Errorf("--max-wait-step-seconds must be 1 or more")
	}
	if cfg.IPMIRetryTimeout <= 0 || cfg.IPMIMinCommandInterval < 0 {
		return fmt.Errorf("--ipmi-retry-timeout must be positive and --ipmi-min-command-interval zero or more (e.g. 60s and 5s)")
	}
	if cfg.FleetLockSlots < 1 {
		return fmt.Errorf("--fleetlock-slots must be 1 or more (to stop a group's reboots, set its slots to 0: ferric fleetlock set GROUP --slots 0)")
	}
	if *o.erasePrio < 0 || *o.metaPrio < 0 {
		return fmt.Errorf("--erase-devices-priority and --erase-devices-metadata-priority must be 0 (off) or more")
	}
	if cfg.ImageCacheMaxBytes <= 0 || cfg.ImageDownloadTimeout <= 0 {
		return fmt.Errorf("--image-cache-max-bytes and --image-download-timeout must be positive")
	}
	if *o.inspTO < 0 {
		return fmt.Errorf("--inspect-wait-timeout %s: give a duration, 0 for unlimited", *o.inspTO)
	}
	if *o.artMiB <= 0 {
		return fmt.Errorf("--artifact-max-mib %d: give a positive size in MiB", *o.artMiB)
	}
	return nil
}

// registries reads the registry trust, mirrors, signature look-asides and policy into cfg.Registries.
func (o *options) registries(cfg *conductor.Config, args []string) error {
	// A proxy URL with a password on the command line would be visible in ps and /proc; refuse it.
	for _, p := range [][2]string{{"http-proxy", "FERRIC_HTTP_PROXY"}, {"https-proxy", "FERRIC_HTTPS_PROXY"}} {
		if err := images.ProxyCredentialsInArgs(args, p[0], p[1]); err != nil {
			return err
		}
	}
	for _, c := range o.regCAs {
		if err := cfg.Registries.AddCAFile(c); err != nil {
			return err
		}
	}
	for _, m := range o.mirrors {
		if err := cfg.Registries.ParseMirror(m); err != nil {
			return err
		}
	}
	for _, l := range o.lookaside {
		if err := cfg.Registries.ParseLookaside(l); err != nil {
			return err
		}
	}
	if *o.policyFile != "" {
		p, err := images.LoadPolicy(*o.policyFile)
		if err != nil {
			return err
		}
		cfg.Registries.Policy = p.JSON
	}
	return nil
}

// apply converts the checked options into cfg: the engine's units, the paths under --state-dir, the host name.
func (o *options) apply(cfg *conductor.Config) error {
	cfg.Engine.StepPriorities = map[string]int{"deploy.erase_devices": *o.erasePrio, "deploy.erase_devices_metadata": *o.metaPrio}
	cfg.Engine.MaxWaitStep = time.Duration(*o.maxWait) * time.Second
	// Not nil even when empty: the conductor refuses an empty list by the flag's name.
	cfg.AutodetectDeployInterfaces = []string{}
	for _, name := range strings.Split(*o.autoIfaces, ",") {
		if name = strings.TrimSpace(name); name != "" {
			cfg.AutodetectDeployInterfaces = append(cfg.AutodetectDeployInterfaces, name)
		}
	}
	if cfg.DB == "" {
		cfg.DB = "sqlite://" + filepath.Join(*o.stateDir, "ferric.db")
	}
	cfg.MediaDir = filepath.Join(*o.stateDir, "media")
	cfg.IPXEDir = filepath.Join(*o.stateDir, "ipxe") // prepared iPXE agent boots
	cfg.ImageCacheDir = *o.imageCacheDir
	if cfg.ImageCacheDir == "" {
		cfg.ImageCacheDir = filepath.Join(*o.stateDir, "image-cache")
	}
	// The host name is the holder of node reservations (Ironic's [DEFAULT]host defaults to it too). At start the
	// engine frees only the locks held under this name, so it must stay the same across restarts.
	if cfg.Host == "" {
		if h, err := os.Hostname(); err == nil {
			cfg.Host = h
		}
	}
	cfg.Engine.CallbackTimeout = *o.cbTO
	cfg.Engine.InspectWaitTimeout = *o.inspTO
	if *o.inspTO == 0 {
		cfg.Engine.InspectWaitTimeout = -1 // the engine's "unlimited"
	}
	cfg.Engine.InspectKeepPowerOn = !*o.inspOff
	cfg.ArtifactMaxBytes = *o.artMiB << 20
	for _, a := range o.aliases {
		from, to, ok := strings.Cut(a, "=")
		if !ok {
			return fmt.Errorf("--registry-alias %q: use NODE_VIEW=CONDUCTOR_VIEW", a)
		}
		if cfg.RegistryAliases == nil {
			cfg.RegistryAliases = map[string]string{}
		}
		cfg.RegistryAliases[from] = to
	}
	return nil
}
