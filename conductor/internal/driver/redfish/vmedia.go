package redfish

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/stmcginnis/gofish/schemas"

	"github.com/ferric-metal/ferric/conductor/internal/artifact"
	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/store"
	"github.com/ferric-metal/ferric/images"
	"github.com/ferric-metal/ferric/images/ramdisk"
)

// VirtualMedia is the redfish-virtual-media boot interface: for each agent boot it builds a UEFI-bootable ISO
// (systemd-boot + the agent kernel and initramfs, and agent.json with the API URL, node UUID and a fresh token,
// volume label ferric-cfg), serves it, inserts it through the BMC and sets a one-time boot from CD.
type VirtualMedia struct {
	Driver   *Driver
	Media    *MediaServer
	APIURL   string // conductor URL for agents (in agent.json)
	MediaURL string // conductor URL for the BMC to download the ISO (default APIURL)
	Loader   string // EFI loader, default /usr/lib/systemd/boot/efi/systemd-bootx64.efi
	Token    func() string
	Insecure []string // registries the agent reaches over http
	// Artifacts reads deploy_kernel, deploy_ramdisk and deploy_iso (local paths below --artifacts-dir, checked URLs).
	Artifacts *artifact.Fetcher
	// APICA is the PEM the agent verifies an https APIURL with (api_ca in agent.json); nil or "" for none.
	APICA func() string
	// Registries is the site's registry settings, copied into every agent.json.
	Registries images.Site
	// KernelArgs are appended to the agent kernel's command line (driver_info.kernel_append_params adds more).
	KernelArgs string
}

// loader is the EFI loader path: the configured one, else Debian's systemd-boot-efi location.
func (v *VirtualMedia) loader() string {
	if v.Loader != "" {
		return v.Loader
	}
	return "/usr/lib/systemd/boot/efi/systemd-bootx64.efi"
}

// Validate checks the BMC settings and the agent boot artifacts.
func (v *VirtualMedia) Validate(ctx context.Context, n *store.Node) error {
	if _, err := ParseInfo(n); err != nil {
		return err
	}
	if v.Artifacts == nil {
		return fmt.Errorf("the conductor has no artifact reader for redfish-virtual-media: %w", driver.ErrInvalid)
	}
	if s, _ := n.DriverInfo["deploy_iso"].(string); s != "" {
		// Its own EFI image boots the agent; agent.json is added beside it.
		if err := v.Artifacts.Check(ctx, "driver_info.deploy_iso", s); err != nil {
			return fmt.Errorf("%v: %w", err, driver.ErrInvalid)
		}
		return nil
	}
	// Without a deploy_iso the conductor builds the ISO itself: both kernel and ramdisk are required, and a missing
	// one is a 400 naming the field and the two accepted forms.
	for _, k := range []string{"deploy_kernel", "deploy_ramdisk"} {
		s, _ := n.DriverInfo[k].(string)
		if s == "" {
			return fmt.Errorf("driver_info.%s is missing: give a path below --artifacts-dir or an http(s) URL of the agent's %s: %w", k, strings.TrimPrefix(k, "deploy_"), driver.ErrInvalid)
		}
		if err := v.Artifacts.Check(ctx, "driver_info."+k, s); err != nil {
			return fmt.Errorf("%v: %w", err, driver.ErrInvalid)
		}
	}
	if _, err := os.Stat(v.loader()); err != nil {
		return fmt.Errorf("the conductor's EFI loader %s is missing (apt-get install systemd-boot-efi): %w", v.loader(), driver.ErrInvalid)
	}
	return nil
}

// AgentConfig is the agent.json written on the boot ISO (shared with the ipxe boot interface).
type AgentConfig = driver.AgentConfig

// agentCmdline is the agent kernel's command line for n (the builder the ipxe boot shares).
func (v *VirtualMedia) agentCmdline(n *store.Node) string {
	return driver.AgentCmdline(v.KernelArgs, v.APIURL, n)
}

// InspectionCallback is the continue_inspection URL of an API base URL (Ironic's get_inspection_callback).
func InspectionCallback(apiURL string) string { return driver.InspectionCallback(apiURL) }

// BuildISO makes the boot ISO: an El Torito EFI image with the loader, its entry, the kernel and initramfs, and
// agent.json at the root of a volume labelled ferric-cfg.
func BuildISO(loader, kernel, initrd []byte, cmdline string, cfg AgentConfig, networkData map[string]any) ([]byte, error) {
	esp, err := ramdisk.ESPImage(loader, kernel, initrd, cmdline)
	if err != nil {
		return nil, err
	}
	return isoWith(esp, cfg, networkData)
}

// isoWith makes a ferric-cfg ISO whose El Torito EFI image is esp, with agent.json at its root and, when the
// node has one, its network_data.json (Ironic's form): the ramdisk's /init configures static networks from it
// before the agent starts, for networks without DHCP.
func isoWith(esp []byte, cfg AgentConfig, networkData map[string]any) ([]byte, error) {
	cfgJSON, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode agent.json: %w", err)
	}
	files := map[string][]byte{"/agent.json": cfgJSON}
	if len(networkData) > 0 {
		nd, err := json.Marshal(networkData)
		if err != nil {
			return nil, fmt.Errorf("encode the node's network_data: %w", err)
		}
		files["/network_data.json"] = nd
	}
	return ramdisk.BootISO(esp, "ferric-cfg", files)
}

// systemMedia lists the system's virtual media: the system's own collection, or else its managers' (where most
// BMCs, ferric-vbmc included, keep them). The boot interface and the management's vmedia verbs share it.
func systemMedia(s *session) ([]*schemas.VirtualMedia, error) {
	media, err := s.system.VirtualMedia()
	if err != nil || len(media) == 0 {
		managers, merr := s.system.ManagedBy()
		if merr != nil {
			return nil, bmcError(s.info, "find the system's manager", merr)
		}
		for _, m := range managers {
			ms, err := m.VirtualMedia()
			if err == nil {
				media = append(media, ms...)
			}
		}
	}
	return media, nil
}

// findMedia returns the first of the system's virtual media that takes one of the given media types.
func findMedia(s *session, types ...schemas.VirtualMediaType) (*schemas.VirtualMedia, error) {
	media, err := systemMedia(s)
	if err != nil {
		return nil, err
	}
	for _, m := range media {
		for _, t := range m.MediaTypes {
			if slices.Contains(types, t) {
				return m, nil
			}
		}
	}
	return nil, &noMediaError{address: s.info.Address, kind: types[0]}
}

// noMediaError says the BMC has no virtual media of a kind: the node's hardware, not the conductor, is at fault,
// so it is an invalid-configuration error (Ironic's InvalidParameterValue, a 400 on the API's vmedia verbs).
type noMediaError struct {
	address string
	kind    schemas.VirtualMediaType
}

func (e *noMediaError) Error() string {
	return fmt.Sprintf("Redfish BMC %s offers no %s virtual media for this system", e.address, e.kind)
}

// Unwrap makes the error match driver.ErrInvalid.
func (e *noMediaError) Unwrap() error { return driver.ErrInvalid }

// cdMedia finds the system's CD (or DVD) virtual media.
// A DVD slot takes a CD image: BMCs that list only DVD still boot the agent ISO.
func (v *VirtualMedia) cdMedia(s *session) (*schemas.VirtualMedia, error) {
	return findMedia(s, schemas.CDVirtualMediaType, schemas.DVDVirtualMediaType)
}

// PrepareRamdisk builds and serves the boot ISO, inserts it (ejecting a previous medium first) and sets a
// one-time UEFI boot from CD.
// Mirrors Ironic's RedfishVirtualMediaBoot.prepare_ramdisk: a pregenerated token is put in the medium (the agent
// needs no lookup to learn it), then the CD is ejected and the new image inserted. Validate runs first, so that a
// missing artifact fails before any BMC call. The token is recorded in the node's DriverInternalInfo.
func (v *VirtualMedia) PrepareRamdisk(ctx context.Context, t *driver.Task) error {
	n := t.Node
	if err := v.Validate(ctx, n); err != nil {
		return err
	}
	token := v.Token()
	acfg := AgentConfig{APIURL: v.APIURL, NodeUUID: n.UUID, Token: token, Advertise: str(n.DriverInfo["agent_advertise"]),
		InsecureRegistries: v.Insecure, NoPivotRoot: true, Site: v.Registries}
	if v.APICA != nil {
		acfg.APICA = v.APICA()
	}
	acfg.Inspect = driver.InspectionBoot(n) // also for a deploy_iso, whose command line is not ours
	var iso []byte
	// A deploy_iso is not rebuilt: its EFI image boots as given, and only agent.json (and network_data.json) join it.
	if src := str(n.DriverInfo["deploy_iso"]); src != "" {
		given, err := v.Artifacts.Read(ctx, "driver_info.deploy_iso", src)
		if err != nil {
			return err
		}
		esp, err := EFIImage(given)
		if err != nil {
			return fmt.Errorf("driver_info.deploy_iso %s: %w", src, err)
		}
		if iso, err = isoWith(esp, acfg, n.NetworkData); err != nil {
			return fmt.Errorf("build the boot ISO: %w", err)
		}
	} else {
		kernel, err := v.Artifacts.Read(ctx, "driver_info.deploy_kernel", str(n.DriverInfo["deploy_kernel"]))
		if err != nil {
			return err
		}
		initrd, err := v.Artifacts.Read(ctx, "driver_info.deploy_ramdisk", str(n.DriverInfo["deploy_ramdisk"]))
		if err != nil {
			return err
		}
		loader, err := os.ReadFile(v.loader())
		if err != nil {
			return err
		}
		if iso, err = BuildISO(loader, kernel, initrd, v.agentCmdline(n), acfg, n.NetworkData); err != nil {
			return fmt.Errorf("build the boot ISO: %w", err)
		}
	}
	// The node's previous ISO is dropped before the new one is served: it carried a token that is no longer valid.
	v.cleanMedia(n)
	id, err := v.Media.add(n.UUID, iso)
	if err != nil {
		return err
	}
	// As Ironic's add_secret_token(pregenerated=True): the token reaches the agent on the medium only, which it
	// presents from its first call.
	n.DriverInternalInfo["agent_secret_token"] = token
	n.DriverInternalInfo["agent_secret_token_pregenerated"] = true
	base := v.MediaURL
	if base == "" {
		base = v.APIURL
	}
	// The URL names a random media id, not the node: only a BMC told the URL can fetch the ISO holding the token.
	url := strings.TrimRight(base, "/") + "/v1/boot-media/" + id + ".iso"

	s, err := v.Driver.connect(ctx, n)
	if err != nil {
		return err
	}
	defer s.close()
	cd, err := v.cdMedia(s)
	if err != nil {
		return err
	}
	if cd.Inserted != nil && *cd.Inserted {
		if _, err := cd.EjectMedia(); err != nil {
			return bmcError(s.info, "eject the previous medium", err)
		}
	}
	yes := true
	if _, err := cd.InsertMedia(&schemas.VirtualMediaInsertMediaParameters{Image: url, Inserted: &yes, WriteProtected: &yes}); err != nil {
		// Some BMCs refuse a re-insert until ejected: eject and try once more.
		cd.EjectMedia()
		if _, err2 := cd.InsertMedia(&schemas.VirtualMediaInsertMediaParameters{Image: url, Inserted: &yes, WriteProtected: &yes}); err2 != nil {
			return bmcError(s.info, "insert the agent ISO", err)
		}
	}
	// Once: the boot after the agent's run comes from disk again without another BMC call (Ironic sets the CD boot
	// non-persistent too). UEFI mode is sent first; a BMC that refuses the mode property gets the override without it.
	boot := &schemas.Boot{BootSourceOverrideTarget: schemas.CdBootSource, BootSourceOverrideEnabled: schemas.OnceBootSourceOverrideEnabled,
		BootSourceOverrideMode: schemas.UEFIBootSourceOverrideMode}
	if err := s.system.SetBoot(boot); err != nil {
		boot.BootSourceOverrideMode = ""
		if err2 := s.system.SetBoot(boot); err2 != nil {
			return bmcError(s.info, "set a one-time boot from CD", err)
		}
	}
	t.Log.WithField("iso_bytes", len(iso)).Info("agent ISO inserted; next boot from CD")
	return nil
}

// str reads a driver_info value as a string; absent or not a string is "".
func str(v any) string {
	s, _ := v.(string)
	return s
}

// cleanMedia stops serving the node's ISO and deletes it. (Nodes from before media identifiers were kept out of
// the node record may still carry vmedia_id: it is dropped.)
func (v *VirtualMedia) cleanMedia(n *store.Node) {
	v.Media.RemoveNode(n.UUID)
	delete(n.DriverInternalInfo, "vmedia_id")
}

// CleanUpRamdisk ejects the medium and stops serving the ISO.
func (v *VirtualMedia) CleanUpRamdisk(ctx context.Context, t *driver.Task) error {
	// The ISO is no longer served even when the BMC cannot be reached below: the token in it must not stay fetchable.
	v.cleanMedia(t.Node)
	s, err := v.Driver.connect(ctx, t.Node)
	if err != nil {
		return err
	}
	defer s.close()
	cd, err := v.cdMedia(s)
	if err != nil {
		return err
	}
	if cd.Inserted != nil && *cd.Inserted {
		if _, err := cd.EjectMedia(); err != nil {
			return bmcError(s.info, "eject the agent ISO", err)
		}
	}
	return nil
}

// PrepareInstance has nothing to do: the deploy sets the boot device to disk.
func (v *VirtualMedia) PrepareInstance(context.Context, *driver.Task) error { return nil }

// ServedByConductor: the BMC reads the agent ISO from this conductor's media server.
func (v *VirtualMedia) ServedByConductor() bool { return true }

// CleanUpInstance has nothing to do.
func (v *VirtualMedia) CleanUpInstance(context.Context, *driver.Task) error { return nil }

// EFIImage returns the UEFI El Torito boot image of an ISO.
func EFIImage(iso []byte) ([]byte, error) { return ramdisk.EFIImage(iso) }
