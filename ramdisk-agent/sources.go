// Configuration sources: where the agent's configuration comes from, later sources winning: built-in defaults, the
// agent.json an iPXE boot's configuration initramfs puts at /etc/ferric/agent.json, the agent.json file on virtual
// media (a filesystem labelled ferric-cfg), the kernel command line, then flags and environment (applied by main).

package agent

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/ferric-metal/ferric/configdrive"
)

// MediaLabel is the label of the filesystem holding agent.json.
const MediaLabel = "ferric-cfg"

// InitramfsConfig is agent.json as a network (iPXE) boot's configuration initramfs puts it, beside the agent's own
// initramfs: the same settings virtual media carry on their ferric-cfg volume.
const InitramfsConfig = "/etc/ferric/agent.json"

// ApplyFile merges a JSON file over cfg.
// Only the keys present in the file change: json.Unmarshal leaves the other fields of cfg as they were, which is
// what makes the sources layer. A missing file is an error (os.ErrNotExist): main stats an optional one first.
func ApplyFile(cfg *Config, path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, cfg); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// ApplyCAFile sets the conductor CA (api_ca) from a PEM file (--api-ca); it replaces one from agent.json.
func ApplyCAFile(cfg *Config, path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("--api-ca: %w", err)
	}
	if !strings.Contains(string(b), "-----BEGIN CERTIFICATE-----") {
		return fmt.Errorf("--api-ca %s: no PEM certificate in the file; pass the conductor's CA certificate", path)
	}
	// Only a marker check here: the PEM is parsed when the agent builds its conductor client (ironic.NewHTTPClient).
	cfg.APICA = string(b)
	return nil
}

// FromMedia mounts the filesystem labelled ferric-cfg (under devDir/disk/by-label) read-only and merges its
// agent.json over cfg. It reports whether media was found.
func FromMedia(cfg *Config, devDir, mountDir string) (bool, error) {
	dev := filepath.Join(devDir, "disk", "by-label", MediaLabel)
	if _, err := os.Stat(dev); err != nil {
		// No udev in the ramdisk: look at every block device's ISO 9660 or FAT label.
		if dev = findLabel(devDir, MediaLabel); dev == "" {
			return false, nil
		}
	}
	if err := os.MkdirAll(mountDir, 0o700); err != nil {
		// From here on the media was found: an error means a config that exists but could not be read, which the
		// caller must not mistake for "no media".
		return true, err
	}
	var lastErr error
	// The media carries ISO 9660 (a CD) or FAT: the label does not say which, so both are tried, read-only.
	for _, fs := range []string{"iso9660", "vfat"} {
		if lastErr = unix.Mount(dev, mountDir, fs, unix.MS_RDONLY, ""); lastErr == nil {
			break
		}
	}
	if lastErr != nil {
		return true, fmt.Errorf("mount %s: %w", dev, lastErr)
	}
	defer unix.Unmount(mountDir, 0)
	return true, ApplyFile(cfg, filepath.Join(mountDir, "agent.json"))
}

// ParseCmdline reads key=value words of a kernel command line.
func ParseCmdline(s string) map[string]string {
	out := map[string]string{}
	for _, w := range strings.Fields(s) {
		k, v, ok := strings.Cut(w, "=")
		// Words without "=" (quiet, ro) carry no setting; a repeated key keeps its last value.
		if ok {
			out[k] = v
		}
	}
	return out
}

// ApplyCmdline merges Ferric's and IPA's kernel arguments over cfg.
func ApplyCmdline(cfg *Config, cmdline string) error {
	kv := ParseCmdline(cmdline)
	set := func(dst *string, keys ...string) {
		for _, k := range keys {
			if v, ok := kv[k]; ok && v != "" {
				*dst = v
			}
		}
	}
	// IPA's argument names come first so that a ferric.* one, when both are given, wins (set keeps the last).
	set(&cfg.APIURL, "ipa-api-url", "ferric.api_url")
	set(&cfg.NodeUUID, "ferric.node_uuid")
	set(&cfg.Token, "ipa-agent-token", "ferric.token")
	set(&cfg.TargetDevice, "ferric.target_device")
	set(&cfg.Advertise, "ferric.advertise")
	host, port := kv["ipa-advertise-host"], kv["ipa-advertise-port"]
	if host != "" || port != "" {
		// IPA's advertise host and port apply unless ferric.advertise names the address itself; a port alone keeps
		// the host from the earlier sources, and the agent's port 9999 (IPA's default) fills a missing one.
		if cfg.Advertise == "" || kv["ferric.advertise"] == "" {
			h, p, _ := net.SplitHostPort(cfg.Advertise)
			if host != "" {
				h = host
			}
			if port != "" {
				p = port
			}
			if p == "" {
				p = "9999"
			}
			cfg.Advertise = net.JoinHostPort(h, p)
		}
	}
	if v, ok := kv["ferric.insecure_http"]; ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("kernel argument ferric.insecure_http=%s: use true or false", v)
		}
		cfg.InsecureHTTP = b
	}
	// Ironic boots IPA for inspection with ipa-inspection-callback-url=<api>/v1/continue_inspection.
	if cb := kv["ipa-inspection-callback-url"]; cb != "" {
		cfg.Inspect = true
		if base, ok := strings.CutSuffix(strings.TrimRight(cb, "/"), "/v1/continue_inspection"); ok && cfg.APIURL == "" {
			cfg.APIURL = base
		}
	}
	// ferric.inspect comes after the callback URL so that an explicit false turns inspection off again.
	if v, ok := kv["ferric.inspect"]; ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("kernel argument ferric.inspect=%s: use true or false", v)
		}
		cfg.Inspect = b
	}
	if v, ok := kv["ferric.insecure_registries"]; ok && v != "" {
		cfg.InsecureRegistries = strings.Split(v, ",")
	}
	return nil
}

// findLabel returns the device under devDir whose filesystem carries label, or "".
func findLabel(devDir, label string) string {
	// /sys/block lists whole devices (sr0, vda), not partitions: only a filesystem on a whole device is found.
	entries, err := os.ReadDir("/sys/block")
	if err != nil {
		return ""
	}
	for _, e := range entries {
		dev := filepath.Join(devDir, e.Name())
		f, err := os.Open(dev)
		if err != nil {
			continue
		}
		_, l := configdrive.Detect(f)
		f.Close()
		if strings.EqualFold(l, label) {
			return dev
		}
	}
	return ""
}
