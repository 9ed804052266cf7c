// Package ipxe is the ipxe boot interface (and pxe, its alias in Ferric): the agent ramdisk boots over the
// network. The operator's DHCP server chain-loads iPXE to the conductor's boot.ipxe; that script chains to the
// node's own script by MAC, which downloads the agent kernel, its initramfs and a small configuration initramfs
// (agent.json) from the conductor's API listener (Server). The kernel command line carries what the agent and
// IPA understand (ipa-api-url, the node UUID, a token pre-generated for this boot), as Ironic's ipxe boot does.
// The deployed instance boots from disk (boot device set persistently); only UEFI machines are supported.
package ipxe

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/ferric-metal/ferric/conductor/internal/artifact"
	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/store"
	"github.com/ferric-metal/ferric/images"
)

// Names are the boot interface names this package implements: ipxe, and pxe, which in Ironic is the same network
// boot through PXE-loaded iPXE; Ferric serves only iPXE, so pxe is an alias.
func Names() []string { return []string{"ipxe", "pxe"} }

// Enable adds the ipxe and pxe boot interfaces to a hardware type's enabled boot interfaces (after its
// default, which stays), as Ironic's generic hardware types enable them. It returns h for chaining.
func Enable(h *driver.HardwareType) *driver.HardwareType {
	for _, name := range Names() {
		found := false
		for _, e := range h.Enabled["boot"] {
			found = found || e == name
		}
		if !found {
			h.Enabled["boot"] = append(h.Enabled["boot"], name)
		}
	}
	return h
}

// Register registers b under every name of Names.
func Register(reg *driver.Registry, b *Boot) {
	for _, name := range Names() {
		reg.AddBoot(name, b)
	}
}

// Boot is the ipxe boot interface.
type Boot struct {
	Server *Server
	// APIURL is the conductor URL for agents (ipa-api-url, agent.json).
	APIURL string
	// Token makes a fresh agent token.
	Token func() string
	// Artifacts reads driver_info deploy_kernel and deploy_ramdisk (local paths below --artifacts-dir, checked URLs).
	Artifacts *artifact.Fetcher
	// Insecure are the registries the agent reaches over http.
	Insecure []string
	// APICA is the PEM the agent verifies an https APIURL with; nil or "" for none.
	APICA func() string
	// Registries is the site's registry settings, copied into every agent.json.
	Registries images.Site
	// KernelArgs are appended to the agent kernel's command line (driver_info.kernel_append_params adds more).
	KernelArgs string
	// Ports counts a node's ports (nil: not checked).
	Ports func(ctx context.Context, node string) (int, error)
}

// Validate checks the agent boot artifacts, the boot mode (UEFI only), the kernel parameters and that the node
// has a port (a NIC whose MAC finds its script).
func (b *Boot) Validate(ctx context.Context, n *store.Node) error {
	if b.Artifacts == nil || b.Server == nil {
		return fmt.Errorf("the conductor has no iPXE server or artifact reader for the ipxe boot interface: %w", driver.ErrInvalid)
	}
	if mode := bootMode(n); mode == "bios" {
		return fmt.Errorf("the ipxe boot interface boots UEFI machines only, and the node's boot mode is bios "+
			"(%s): set it to uefi or use another boot interface: %w", bootModeSource(n), driver.ErrInvalid)
	}
	for _, k := range []string{"deploy_kernel", "deploy_ramdisk"} {
		s, _ := n.DriverInfo[k].(string)
		if s == "" {
			return fmt.Errorf("driver_info.%s is missing: give a path below --artifacts-dir or an http(s) URL of the agent's %s: %w",
				k, strings.TrimPrefix(k, "deploy_"), driver.ErrInvalid)
		}
		if err := b.Artifacts.Check(ctx, "driver_info."+k, s); err != nil {
			return fmt.Errorf("%v: %w", err, driver.ErrInvalid)
		}
	}
	if s, _ := n.DriverInfo["deploy_iso"].(string); s != "" {
		return fmt.Errorf("driver_info.deploy_iso is not used by the ipxe boot interface: remove it and give deploy_kernel and deploy_ramdisk: %w", driver.ErrInvalid)
	}
	if err := CheckCmdline("driver_info.kernel_append_params", driver.AgentCmdline(b.KernelArgs, b.APIURL, n)); err != nil {
		return fmt.Errorf("%v: %w", err, driver.ErrInvalid)
	}
	if err := CheckCmdline("driver_info.agent_advertise", str(n.DriverInfo["agent_advertise"])); err != nil {
		return fmt.Errorf("%v: %w", err, driver.ErrInvalid)
	}
	return b.hasPort(ctx, n.UUID)
}

// bootMode is the node's boot mode as Ironic reads it: instance_info.capabilities, then properties.capabilities,
// then the boot_mode field the management interface reported; "" when none says.
func bootMode(n *store.Node) string {
	if m := capability(n.InstanceInfo["capabilities"], "boot_mode"); m != "" {
		return m
	}
	if m := capability(n.Properties["capabilities"], "boot_mode"); m != "" {
		return m
	}
	return strings.ToLower(n.BootMode)
}

func bootModeSource(n *store.Node) string {
	switch {
	case capability(n.InstanceInfo["capabilities"], "boot_mode") != "":
		return "instance_info.capabilities"
	case capability(n.Properties["capabilities"], "boot_mode") != "":
		return "properties.capabilities"
	}
	return "the node's boot_mode"
}

// capability reads key from Ironic's capabilities: "k1:v1,k2:v2", a JSON object string, or an object.
func capability(v any, key string) string {
	switch c := v.(type) {
	case map[string]any:
		s, _ := c[key].(string)
		return strings.ToLower(s)
	case string:
		var m map[string]any
		if json.Unmarshal([]byte(c), &m) == nil {
			return capability(m, key)
		}
		for _, kv := range strings.Split(c, ",") {
			if k, val, ok := strings.Cut(strings.TrimSpace(kv), ":"); ok && k == key {
				return strings.ToLower(strings.TrimSpace(val))
			}
		}
	}
	return ""
}

func str(v any) string {
	s, _ := v.(string)
	return s
}
