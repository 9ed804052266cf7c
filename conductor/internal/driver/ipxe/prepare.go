package ipxe

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/images/ramdisk"
)

// ConfigPath is where the configuration initramfs puts agent.json (ferric-agent reads it before the media).
const ConfigPath = "etc/ferric/agent.json"

// networkDataPath is where the ramdisk's /init looks for a baked-in network_data.json.
const networkDataPath = "etc/ferric/network_data.json"

// Token keys of driver_internal_info: the agent's token and the mark that the boot generated it (the engine keeps
// such a token across power actions, since the boot that carries it cannot change).
const (
	keyToken        = "agent_secret_token"
	keyPregenerated = "agent_secret_token_pregenerated"
)

// PrepareRamdisk reads the agent's kernel and initramfs, makes a token for this boot, writes the command line and
// the configuration initramfs, serves them by the node's MACs and sets a one-time network boot (UEFI). The engine
// powers the node on afterwards (it powered it off before), as with every boot interface.
func (b *Boot) PrepareRamdisk(ctx context.Context, t *driver.Task) error {
	n := t.Node
	if err := b.Validate(ctx, n); err != nil {
		return err
	}
	kernel, err := b.Artifacts.Read(ctx, "driver_info.deploy_kernel", str(n.DriverInfo["deploy_kernel"]))
	if err != nil {
		return err
	}
	initrd, err := b.Artifacts.Read(ctx, "driver_info.deploy_ramdisk", str(n.DriverInfo["deploy_ramdisk"]))
	if err != nil {
		return err
	}
	token := b.Token()
	cfg := driver.AgentConfig{APIURL: b.APIURL, NodeUUID: n.UUID, Token: token, Advertise: str(n.DriverInfo["agent_advertise"]),
		InsecureRegistries: b.Insecure, NoPivotRoot: true, Site: b.Registries, Inspect: driver.InspectionBoot(n)}
	if b.APICA != nil {
		cfg.APICA = b.APICA()
	}
	config, err := configArchive(cfg, n.NetworkData)
	if err != nil {
		return err
	}
	files := map[string][]byte{fileKernel: kernel, fileRamdisk: initrd, fileConfig: config,
		fileCmdline: []byte(b.cmdline(cfg, driver.AgentCmdline(b.KernelArgs, b.APIURL, n)))}
	if err := b.Server.put(n.UUID, files); err != nil {
		return err
	}
	n.DriverInternalInfo[keyToken] = token
	n.DriverInternalInfo[keyPregenerated] = true
	// A one-time network boot; UEFI is the management interface's default for a node that says nothing else.
	if err := t.Management.SetBootDevice(ctx, n, driver.BootPXE, false); err != nil {
		// Nothing of this boot stays usable: its files and its token go (the token would otherwise still be
		// accepted at lookup until the engine's tear-down).
		b.Server.Remove(n.UUID)
		delete(n.DriverInternalInfo, keyToken)
		delete(n.DriverInternalInfo, keyPregenerated)
		return fmt.Errorf("set a one-time network boot: %w", err)
	}
	t.Log.WithFields(map[string]any{"kernel_bytes": len(kernel), "ramdisk_bytes": len(initrd)}).
		Info("iPXE agent boot prepared; next boot from the network")
	return nil
}

// cmdline is the agent kernel's command line: base (console, the conductor's and the node's parameters, the
// inspection callback), then the agent's settings under the names IPA and ferric-agent read. The same settings
// are in agent.json; the command line is what an IPA ramdisk understands.
func (b *Boot) cmdline(cfg driver.AgentConfig, base string) string {
	words := []string{base, "ipa-api-url=" + cfg.APIURL, "ferric.node_uuid=" + cfg.NodeUUID, "ipa-agent-token=" + cfg.Token}
	if cfg.Advertise != "" {
		words = append(words, "ferric.advertise="+cfg.Advertise)
	}
	if len(cfg.InsecureRegistries) > 0 {
		words = append(words, "ferric.insecure_registries="+strings.Join(cfg.InsecureRegistries, ","))
	}
	return strings.Join(strings.Fields(strings.Join(words, " ")), " ")
}

// configArchive is the configuration initramfs: agent.json and, when the node has one, its network_data.json
// where the ramdisk's /init reads a baked-in one (static networks without DHCP).
func configArchive(cfg driver.AgentConfig, networkData map[string]any) ([]byte, error) {
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode agent.json: %w", err)
	}
	const dir, file = 0o040700, 0o100600
	entries := []ramdisk.CpioEntry{{Name: "etc", Mode: 0o040755}, {Name: "etc/ferric", Mode: dir},
		{Name: ConfigPath, Mode: file, Data: b}}
	if len(networkData) > 0 {
		nd, err := json.Marshal(networkData)
		if err != nil {
			return nil, fmt.Errorf("encode the node's network_data: %w", err)
		}
		entries = append(entries, ramdisk.CpioEntry{Name: networkDataPath, Mode: file, Data: nd})
	}
	return ramdisk.Cpio(entries), nil
}

// hasPort refuses a node without ports: iPXE finds a node's script by the MAC it boots from (Ironic's pxe
// validation refuses the same).
func (b *Boot) hasPort(ctx context.Context, node string) error {
	if b.Ports == nil {
		return nil
	}
	k, err := b.Ports(ctx, node)
	if err != nil {
		return fmt.Errorf("list the node's ports: %w", err)
	}
	if k == 0 {
		return fmt.Errorf("node %s has no port: create one with the MAC address of the NIC it boots from (iPXE finds the node's boot script by it): %w",
			node, driver.ErrInvalid)
	}
	return nil
}

// CleanUpRamdisk stops serving the boot and invalidates its token: a later agent boot brings a new one, and the
// token the network saw is worth nothing once the boot it was made for is over.
func (b *Boot) CleanUpRamdisk(ctx context.Context, t *driver.Task) error {
	n := t.Node
	if pre, _ := n.DriverInternalInfo[keyPregenerated].(bool); pre {
		delete(n.DriverInternalInfo, keyToken)
		delete(n.DriverInternalInfo, keyPregenerated)
	}
	return b.Server.Remove(n.UUID)
}

// ServedByConductor: the node's iPXE script, kernel and initramfs are files of this conductor.
func (b *Boot) ServedByConductor() bool { return true }

// PrepareInstance makes the disk the boot device, persistently: the instance boots from disk (no network boot
// after the deploy), and nothing is served for the node any more.
func (b *Boot) PrepareInstance(ctx context.Context, t *driver.Task) error {
	n := t.Node
	if mode := bootMode(n); mode == "bios" {
		return fmt.Errorf("the ipxe boot interface boots UEFI machines only, and the node's boot mode is bios (%s): %w",
			bootModeSource(n), driver.ErrInvalid)
	}
	if err := b.Server.Remove(n.UUID); err != nil {
		return err
	}
	if err := t.Management.SetBootDevice(ctx, n, driver.BootDisk, true); err != nil {
		return fmt.Errorf("set the boot device to disk: %w", err)
	}
	return nil
}

// CleanUpInstance stops serving anything left for the node.
func (b *Boot) CleanUpInstance(ctx context.Context, t *driver.Task) error {
	return b.Server.Remove(t.Node.UUID)
}
