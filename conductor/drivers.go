package conductor

// The conductor's hardware types and interfaces: which drivers it registers, and how they are configured.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/sirupsen/logrus"

	"github.com/ferric-metal/ferric/conductor/internal/api"
	"github.com/ferric-metal/ferric/conductor/internal/artifact"
	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/driver/agentdeploy"
	"github.com/ferric-metal/ferric/conductor/internal/driver/autodetect"
	"github.com/ferric-metal/ferric/conductor/internal/driver/bootcdeploy"
	"github.com/ferric-metal/ferric/conductor/internal/driver/directdeploy"
	"github.com/ferric-metal/ferric/conductor/internal/driver/ipmi"
	"github.com/ferric-metal/ferric/conductor/internal/driver/ipxe"
	"github.com/ferric-metal/ferric/conductor/internal/driver/localboot"
	"github.com/ferric-metal/ferric/conductor/internal/driver/redfish"
	"github.com/ferric-metal/ferric/conductor/internal/engine"
	"github.com/ferric-metal/ferric/conductor/internal/fsm"
	"github.com/ferric-metal/ferric/conductor/internal/imagecache"
	"github.com/ferric-metal/ferric/conductor/internal/store"
	"github.com/ferric-metal/ferric/conductor/internal/tlsreload"
	"github.com/ferric-metal/ferric/conductor/internal/transport"
	"github.com/ferric-metal/ferric/images"
)

// buildRegistry registers the hardware types and interfaces this conductor offers. agentCA is the PEM agents
// verify the API with (changes on reload, so drivers read it at each boot).
// policy is cfg.Registries.Policy parsed (nil for none); log (nil: logrus' standard logger) gets the drivers' warnings.
func buildRegistry(cfg Config, st store.Store, policy *images.Policy, media *redfish.MediaServer, arts *artifact.Fetcher,
	agentCA func() string, cache *imagecache.Cache, transports *transport.Cache, hostdSum string, log *logrus.Entry) *driver.Registry {
	reg := driver.NewRegistry()
	driver.AddInspectRescue(reg)
	reg.AddRescue(driver.RescueAgent, driver.AgentRescue{Transports: transports})
	driver.AddHardwareInterfaces(reg, st)
	driver.AddStorageInterfaces(reg)
	reg.AddInspect(driver.InspectAgent, driver.AgentInspect{Store: st, AddPorts: cfg.InspectAddPorts})
	// autodetect (registered by addAutodetect) is enabled everywhere, as in Ironic; fake-hardware's default stays fake.
	reg.AddHardware(driver.EnableFakeHardwareInterfaces(driver.EnableAgentRescue(driver.FakeHardware([]string{"bootc", "direct", autodetect.Name}, []string{"local-agent"}))))
	reg.AddPower("fake", driver.NewFakePower())
	reg.AddManagement("fake", driver.NewFakeManagement())
	reg.AddBoot("fake", driver.NewFakeBoot())
	reg.AddDeploy("fake", driver.FakeDeploy{})
	// bootc and direct judge and reach registries the same way (oci:// sources).
	registries := agentdeploy.Registry{Insecure: cfg.InsecureRegistries, Aliases: cfg.RegistryAliases, Trust: cfg.Registries.Trust,
		Policy: policy}
	agentURL := cfg.AgentURL
	if agentURL == "" {
		agentURL = cfg.PublicURL
	}
	// Deployed image-mode hosts report to the API at the URL agents are given, verifying it as agents do.
	var hostd *bootcdeploy.HostdBinary
	if hostdSum != "" {
		hostd = &bootcdeploy.HostdBinary{URL: strings.TrimRight(agentURL, "/") + api.HostdPath, SHA256: hostdSum}
	}
	reg.AddDeploy("bootc", bootcdeploy.New(bootcdeploy.Config{Registry: registries, Transports: transports,
		Reporter: bootcdeploy.Reporter{URL: agentURL, CA: agentCA, Store: st, Hostd: hostd}}))
	// Whole-disk images over http(s); checksum files are fetched under the same rules as deploy artifacts, and
	// so are images the conductor caches for image_download_source local (served to agents at agentURL).
	reg.AddDeploy("direct", directdeploy.New(directdeploy.Config{AllowMD5: cfg.AllowMD5Checksum, Artifacts: arts,
		Registry: registries, Local: directdeploy.LocalConfig{Default: cfg.ImageDownloadSource, Cache: cache, URL: agentURL},
		Transports: transports}))
	stateDir := cfg.AgentStateDir
	if stateDir == "" {
		stateDir = "/run/ferric-agents"
	}
	reg.AddBoot("local-agent", localboot.New(localboot.Config{AgentBinary: cfg.AgentBinary, APIURL: agentURL,
		StateDir: stateDir, Runtime: cfg.AgentRuntime, Ulimits: cfg.AgentUlimits, Insecure: cfg.InsecureRegistries,
		TokenFunc: engine.NewToken, Devices: cfg.LocalAgentDevices, APICA: agentCA, Registries: cfg.Registries}))
	rf := &redfish.Driver{Transports: transports}
	// autodetect first: redfish's default deploy interface, as Ironic's generic hardware types have it.
	reg.AddHardware(driver.EnableAgentRAID(redfish.EnableHardwareInterfaces(driver.EnableAgentRescue(redfish.Hardware([]string{autodetect.Name, "bootc", "direct", "fake"},
		[]string{"redfish-virtual-media", "fake"})))))
	reg.AddBIOS("redfish", &redfish.BIOS{Driver: rf})
	reg.AddFirmware("redfish", &redfish.Firmware{Driver: rf})
	reg.AddRAID("redfish", &redfish.RAID{Driver: rf})
	reg.AddPower("redfish", rf)
	reg.AddManagement("redfish", rf)
	reg.AddInspect("redfish", &redfish.Inspector{Driver: rf, Store: st, AddPorts: cfg.InspectAddPorts})
	reg.AddBoot("redfish-virtual-media", &redfish.VirtualMedia{Driver: rf, Media: media, APIURL: agentURL, MediaURL: cfg.PublicURL,
		Loader: cfg.EFILoader, Token: engine.NewToken, Insecure: cfg.InsecureRegistries, Artifacts: arts, APICA: agentCA,
		Registries: cfg.Registries})
	// ipmi: Ironic's most used hardware type, network-booted by default as Ironic's IPMIHardware (ipxe, registered
	// by addIPXE with its server); local-agent may be chosen for machines the conductor host itself reaches.
	ip := &ipmi.Driver{RetryTimeout: cfg.IPMIRetryTimeout, MinCommandInterval: cfg.IPMIMinCommandInterval}
	if log != nil {
		ip.Log = log.WithField("component", "ipmi")
	}
	reg.AddHardware(driver.EnableAgentRAID(driver.EnableAgentRescue(ipmi.Hardware([]string{autodetect.Name, "bootc", "direct", "fake"},
		[]string{"ipxe", "pxe", "fake", "local-agent"}))))
	reg.AddPower(ipmi.Name, ip)
	reg.AddManagement(ipmi.Name, ip)
	return reg
}

// addIPXE registers the ipxe and pxe boot interfaces and enables them on the redfish and fake-hardware types (as
// Ironic's generic hardware types enable them); another hardware type enables them with ipxe.Enable.
func addIPXE(reg *driver.Registry, cfg Config, st store.Store, s *ipxe.Server, arts *artifact.Fetcher, agentCA func() string) {
	ports := func(ctx context.Context, node string) (int, error) {
		ps, err := st.ListPorts(ctx, store.PortFilter{NodeUUID: node}, store.ListOptions{Limit: 1})
		return len(ps), err
	}
	ipxe.Register(reg, &ipxe.Boot{Server: s, APIURL: agentURLOf(cfg), Token: engine.NewToken, Artifacts: arts,
		Insecure: cfg.InsecureRegistries, APICA: agentCA, Registries: cfg.Registries, Ports: ports})
	// ipmi enables ipxe itself (its default); the others gain it beside their own boot interfaces.
	for _, name := range []string{"redfish", "fake-hardware"} {
		if h, err := reg.Hardware(name); err == nil {
			ipxe.Enable(h)
		}
	}
}

// addAutodetect registers the autodetect deploy interface over names (nil: bootc, direct). It refuses, naming the
// flag, a name that is autodetect itself, named twice, or not a deploy interface enabled on every hardware type that
// enables autodetect (Ironic checks autodetect_deploy_interfaces against enabled_deploy_interfaces the same way).
func addAutodetect(reg *driver.Registry, names []string, log *logrus.Entry) error {
	if names == nil {
		names = []string{"bootc", "direct"}
	}
	const fix = "list concrete deploy interfaces in the order to try them, the fallback last, e.g. --autodetect-deploy-interfaces bootc,direct"
	seen := map[string]bool{}
	var cands []autodetect.Candidate
	for _, name := range names {
		d, ok := reg.DeployInterface(name)
		switch {
		case name == autodetect.Name:
			return fmt.Errorf("--autodetect-deploy-interfaces names %s itself: %s", name, fix)
		case seen[name]:
			return fmt.Errorf("--autodetect-deploy-interfaces names %q twice: %s", name, fix)
		case !ok:
			return fmt.Errorf("--autodetect-deploy-interfaces: %q is not a deploy interface of this conductor: %s", name, fix)
		}
		for _, h := range reg.HardwareTypes() {
			if slices.Contains(h.Enabled["deploy"], autodetect.Name) && !slices.Contains(h.Enabled["deploy"], name) {
				return fmt.Errorf("--autodetect-deploy-interfaces: %q is not enabled for driver %s (enabled: %s): %s",
					name, h.Name, strings.Join(h.Enabled["deploy"], ", "), fix)
			}
		}
		seen[name] = true
		cands = append(cands, autodetect.Candidate{Name: name, Deploy: d})
	}
	ad, err := autodetect.New(cands, 0, log)
	if err != nil {
		return fmt.Errorf("--autodetect-deploy-interfaces: %w: %s", err, fix)
	}
	reg.AddDeploy(autodetect.Name, ad)
	return nil
}

// drivers are the driver registry and what it is built over that Run also serves or shares: the boot media and
// iPXE scripts (served beside the API), the registry policy (the stale check's too) and the image cache.
type drivers struct {
	media   *redfish.MediaServer
	netboot *ipxe.Server
	policy  *images.Policy
	cache   *imagecache.Cache
	reg     *driver.Registry
}

// buildDrivers prepares the boot media (pruning those of nodes no longer booting their agent), the artifact
// rules, the registry policy and the image cache, then the driver registry over them. It fills cfg's defaults
// (the media directory) and normalises --inspect-add-ports.
func buildDrivers(ctx context.Context, cfg *Config, st store.Store, tlsFiles *tlsreload.Store, transports *transport.Cache,
	log *logrus.Entry) (*drivers, error) {
	if cfg.MediaDir == "" {
		cfg.MediaDir = filepath.Join(os.TempDir(), "ferric-media")
	}
	// Boot media are served only while their node boots the agent; after a restart, media of nodes that left
	// those states while the conductor was down are deleted.
	media := redfish.NewMediaServer(cfg.MediaDir, func(ctx context.Context, node string) bool {
		n, err := st.GetNode(ctx, node)
		return err == nil && fsm.BootsAgent(fsm.State(n.ProvisionState))
	})
	if k := media.Prune(ctx); k > 0 {
		log.WithField("count", k).Info("deleted boot media of nodes no longer booting their agent")
	}
	netboot := newIPXEServer(ctx, *cfg, st, log)
	arts, err := artifact.New(artifact.Config{Dir: cfg.ArtifactsDir, MaxBytes: cfg.ArtifactMaxBytes, Allow: cfg.ArtifactAllow})
	if err != nil {
		return nil, err
	}
	policy, err := registryPolicy(*cfg, log)
	if err != nil {
		return nil, err
	}
	if cfg.InspectAddPorts, err = redfish.ParseAddPorts(cfg.InspectAddPorts); err != nil {
		return nil, err
	}
	cache, err := openImageCache(ctx, cfg, st, arts, log)
	if err != nil {
		return nil, err
	}
	hostdSum, err := hostdChecksum(cfg.HostdBinary)
	if err != nil {
		return nil, err
	}
	reg := buildRegistry(*cfg, st, policy, media, arts, tlsFiles.AgentCA, cache, transports, hostdSum, log)
	addIPXE(reg, *cfg, st, netboot, arts, tlsFiles.AgentCA)
	if err := addAutodetect(reg, cfg.AutodetectDeployInterfaces, log.WithField("component", "autodetect")); err != nil {
		return nil, err
	}

	return &drivers{media: media, netboot: netboot, policy: policy, cache: cache, reg: reg}, nil
}
