// Command ferric-agent runs in the agent ramdisk: it installs bootable containers for the Ferric conductor.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/sirupsen/logrus"

	"github.com/ferric-metal/ferric/images"
	agent "github.com/ferric-metal/ferric/ramdisk-agent"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "ferric-agent:", err)
		os.Exit(1)
	}
}

// list is a repeatable flag: each use appends, and one use may carry a comma-separated list.
type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(v string) error { *l = append(*l, strings.Split(v, ",")...); return nil }

// run layers the agent's configuration (sources.go: later sources win), validates what the flags name, and runs
// the agent until SIGTERM or SIGINT. A configuration source that exists but cannot be read is logged and skipped,
// as later sources may still complete the configuration; a bad kernel argument, flag or --config file is fatal.
func run(args []string) error {
	var cfg agent.Config
	log := logrus.New()
	entry := logrus.NewEntry(log)
	// 1-3: defaults, agent.json (from an iPXE boot's configuration initramfs, then from virtual media), kernel
	// command line.
	if _, err := os.Stat(agent.InitramfsConfig); err == nil {
		if err := agent.ApplyFile(&cfg, agent.InitramfsConfig); err != nil {
			entry.WithError(err).Warn("agent configuration in the initramfs is unreadable")
		} else {
			entry.Info("read agent.json from the configuration initramfs")
		}
	}
	if found, err := agent.FromMedia(&cfg, "/dev", "/run/ferric-cfg"); err != nil {
		entry.WithError(err).Warn("agent configuration media found but unreadable")
	} else if found {
		entry.Info("read agent.json from the configuration media")
	}
	// The kernel command line carries what Ironic's boot interfaces pass IPA (ipa-api-url, ipa-inspection-callback-url,
	// and ipa-agent-token from redfish virtual media); a read failure only skips this source.
	if b, err := os.ReadFile("/proc/cmdline"); err == nil {
		if err := agent.ApplyCmdline(&cfg, string(b)); err != nil {
			return err
		}
	}
	// 4: flags and environment (FERRIC_AGENT_<FLAG>), for development.
	// ContinueOnError: a bad flag comes back as run's error (status 1) instead of the flag package's exit 2.
	fs := flag.NewFlagSet("ferric-agent", flag.ContinueOnError)
	fs.String("config", "", "agent.json to read (after the media and kernel command line, before FERRIC_AGENT_* and the flags; read by configArg)")
	level := fs.String("log-level", "info", "log level")
	caFile := fs.String("api-ca", "", "PEM CA certificates the conductor's https --api-url is verified with (replaces api_ca of agent.json)")
	// Repeatable flags are collected apart from cfg and applied after the parses below.
	var ulimits, insecure, regCAs, mirrors, lookaside list
	policyFile := fs.String("image-policy", "", "containers-policy.json the agent's pulls must satisfy (replaces image_policy of agent.json)")
	fs.Var(&regCAs, "registry-ca", "PEM CA for registries: FILE (every registry) or REGISTRY=FILE (repeatable)")
	fs.Var(&mirrors, "registry-mirror", "REGISTRY=MIRROR pulled through first (repeatable)")
	fs.Var(&lookaside, "signature-lookaside", "REGISTRY=URL where the registry's GPG signatures are published (repeatable)")
	fs.StringVar(&cfg.HTTPProxy, "http-proxy", cfg.HTTPProxy, "proxy for http registries (credentials: use FERRIC_AGENT_HTTP_PROXY, never the flag)")
	fs.StringVar(&cfg.HTTPSProxy, "https-proxy", cfg.HTTPSProxy, "proxy for https registries (credentials: use FERRIC_AGENT_HTTPS_PROXY, never the flag)")
	fs.StringVar(&cfg.NoProxy, "no-proxy", cfg.NoProxy, "hosts and domains reached without a proxy (NO_PROXY syntax)")
	// The defaults of these flags are the values the earlier sources set, so that a flag not given changes nothing.
	fs.StringVar(&cfg.APIURL, "api-url", cfg.APIURL, "conductor URL")
	fs.StringVar(&cfg.NodeUUID, "node-uuid", cfg.NodeUUID, "node UUID (lookup by UUID)")
	fs.StringVar(&cfg.Token, "token", cfg.Token, "pre-generated agent token")
	fs.StringVar(&cfg.Listen, "listen", cfg.Listen, "command API address (default :9999)")
	fs.StringVar(&cfg.Advertise, "advertise", cfg.Advertise, "host:port the conductor reaches the agent by")
	fs.BoolVar(&cfg.InsecureHTTP, "insecure-http", cfg.InsecureHTTP, "serve the command API over plain http (development)")
	fs.StringVar(&cfg.PodmanSocket, "podman-socket", cfg.PodmanSocket, "existing podman service socket (unix://...)")
	fs.StringVar(&cfg.StateDir, "state-dir", cfg.StateDir, "private state directory (default /run/ferric)")
	fs.StringVar(&cfg.GraphRoot, "graph-root", cfg.GraphRoot, "image storage (default /var/lib/containers/storage)")
	fs.StringVar(&cfg.Runtime, "runtime", cfg.Runtime, "OCI runtime for podman (e.g. runc)")
	fs.BoolVar(&cfg.NoPivotRoot, "no-pivot-root", cfg.NoPivotRoot, "set no_pivot_root (required on an initramfs root)")
	fs.StringVar(&cfg.TargetDevice, "target-device", cfg.TargetDevice, "install disk, overriding root device hints (development)")
	fs.Int64Var(&cfg.MemoryBudget, "memory-budget", cfg.MemoryBudget, "bytes of RAM the preflight may assume (default MemAvailable)")
	fs.BoolVar(&cfg.Inspect, "inspect", cfg.Inspect, "post the hardware inventory to the conductor's /v1/continue_inspection before the lookup (in-band inspection)")
	fs.StringVar(&cfg.PowerOff, "power-off", cfg.PowerOff, "system (power the machine off) or exit (stop the process)")
	fs.Var(&ulimits, "ulimit", "default ulimit for containers, e.g. nofile=1024:1024 (repeatable)")
	fs.Var(&insecure, "insecure-registry", "registry reached over plain http (repeatable)")
	// The --config file (or FERRIC_AGENT_CONFIG) is read before the environment and the flags, which override it;
	// reading it after Parse would need a second Parse, and that appends every repeatable flag a second time.
	if path := configArg(args); path != "" {
		if err := agent.ApplyFile(&cfg, path); err != nil {
			return err
		}
	}
	// Environment variables go through fs.Set before Parse, so a flag on the command line overrides its variable.
	fs.VisitAll(func(f *flag.Flag) {
		if v, ok := os.LookupEnv("FERRIC_AGENT_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))); ok {
			fs.Set(f.Name, v)
		}
	})
	if err := fs.Parse(args); err != nil {
		return err
	}
	// Proxy URLs with credentials are refused on the command line (argv is world-readable in /proc): they must come
	// from the environment variable, which ProxyCredentialsInArgs names in its error.
	for _, p := range [][2]string{{"http-proxy", "FERRIC_AGENT_HTTP_PROXY"}, {"https-proxy", "FERRIC_AGENT_HTTPS_PROXY"}} {
		if err := images.ProxyCredentialsInArgs(args, p[0], p[1]); err != nil {
			return err
		}
	}
	if *caFile != "" {
		if err := agent.ApplyCAFile(&cfg, *caFile); err != nil {
			return err
		}
	}
	// Files named by flags are read now, so that a wrong path stops the agent at start with the flag's name, not at
	// the first pull.
	for _, c := range regCAs {
		if err := cfg.Trust.AddCAFile(c); err != nil {
			return err
		}
	}
	for _, m := range mirrors {
		if err := cfg.Trust.ParseMirror(m); err != nil {
			return err
		}
	}
	for _, l := range lookaside {
		if err := cfg.ParseLookaside(l); err != nil {
			return err
		}
	}
	if *policyFile != "" {
		p, err := images.LoadPolicy(*policyFile)
		if err != nil {
			return err
		}
		cfg.Policy = p.JSON
	}
	// Repeatable flags add to what agent.json and the kernel command line gave, they do not replace it.
	cfg.Ulimits = append(cfg.Ulimits, ulimits...)
	cfg.InsecureRegistries = append(cfg.InsecureRegistries, insecure...)
	// The level is set last: the sources read above log at logrus's default (info) whatever --log-level says.
	lvl, err := logrus.ParseLevel(*level)
	if err != nil {
		return fmt.Errorf("--log-level %q: use debug, info, warn or error", *level)
	}
	log.SetLevel(lvl)
	// SIGTERM and SIGINT cancel ctx: agent.Run's command API runs every command under it (api.New).
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	return agent.Run(ctx, cfg, entry)
}

// configArg returns the agent.json path of --config in args (--config PATH, --config=PATH, one or two dashes),
// else FERRIC_AGENT_CONFIG, else "". It is read before the other flags are parsed: see run.
func configArg(args []string) string {
	for i, a := range args {
		if a == "--" {
			break
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || name != "config" {
			continue
		}
		if hasVal {
			return val
		}
		if i+1 < len(args) {
			return args[i+1]
		}
	}
	return os.Getenv("FERRIC_AGENT_CONFIG")
}
