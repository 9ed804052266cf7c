package driver

import (
	"strings"

	"github.com/ferric-metal/ferric/conductor/internal/store"
	"github.com/ferric-metal/ferric/images"
)

// What every boot interface that boots the agent ramdisk shares (redfish-virtual-media, ipxe): the agent's
// configuration file and its kernel command line, so that both boots hand the agent the same settings.

// AgentConfig is the agent's agent.json: on the virtual media ISO's ferric-cfg volume, or in the configuration
// initramfs an iPXE boot loads beside the agent's (/etc/ferric/agent.json).
type AgentConfig struct {
	APIURL             string   `json:"api_url"`
	NodeUUID           string   `json:"node_uuid"`
	Token              string   `json:"token"`
	Advertise          string   `json:"advertise,omitempty"`
	InsecureRegistries []string `json:"insecure_registries,omitempty"`
	NoPivotRoot        bool     `json:"no_pivot_root"`
	APICA              string   `json:"api_ca,omitempty"` // PEM CA certificates the agent verifies an https api_url with
	// Inspect makes the agent post its inventory to /v1/continue_inspection before its lookup (in-band
	// inspection); the kernel command line says so too (ipa-inspection-callback-url), but a deploy_iso's is not ours.
	Inspect bool `json:"inspect,omitempty"`
	// Site is the registry CAs, proxies (credentials included: agent.json is on the node's own boot media, served
	// only by its unguessable URL while the node boots its agent), mirrors, image policy and signature lookaside.
	images.Site
}

// AgentCmdline is the agent kernel's command line for n: the serial console, the conductor's kernelArgs,
// driver_info.kernel_append_params and, when the agent boots for in-band inspection, Ironic's
// ipa-inspection-callback-url for apiURL (IPA and ferric-agent both read it).
func AgentCmdline(kernelArgs, apiURL string, n *store.Node) string {
	appendParams, _ := n.DriverInfo["kernel_append_params"].(string)
	cmdline := strings.TrimSpace("console=ttyS0,115200 " + kernelArgs + " " + appendParams)
	if InspectionBoot(n) {
		cmdline += " ipa-inspection-callback-url=" + InspectionCallback(apiURL)
	}
	return cmdline
}

// InspectionCallback is the continue_inspection URL of an API base URL (Ironic's get_inspection_callback).
func InspectionCallback(apiURL string) string {
	u := strings.TrimRight(apiURL, "/")
	if strings.HasSuffix(u, "/v1") {
		return u + "/continue_inspection"
	}
	return u + "/v1/continue_inspection"
}
