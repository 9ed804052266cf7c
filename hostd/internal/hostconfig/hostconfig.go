// Package hostconfig owns ferric-hostd's configuration file: the bootchost.HostConfig the deploy put on the
// config drive, copied once to /etc/ferric/hostd.json (which persists across image updates on an image-mode
// host, unlike /usr). The file holds the reporter credential, so it must be root-only: a looser mode is refused.
package hostconfig

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/ferric-metal/ferric/bootchost"
)

// ErrNoConfig says neither the file nor a config drive exists.
var ErrNoConfig = errors.New("no ferric-hostd configuration")

// Load reads path, refusing a file that group or others can read or write.
func Load(path string) (bootchost.HostConfig, error) {
	var hc bootchost.HostConfig
	fi, err := os.Stat(path)
	if err != nil {
		return hc, err
	}
	// Anyone who can read the credential can report for the node and take its actions' results; anyone who can
	// write it can point hostd at another conductor.
	if m := fi.Mode().Perm(); m&0o077 != 0 {
		return hc, fmt.Errorf("%s is mode %04o but holds the reporter credential: run `chmod 600 %s`", path, m, path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return hc, err
	}
	if err := json.Unmarshal(b, &hc); err != nil {
		return hc, fmt.Errorf("%s: not a ferric-hostd configuration: %w", path, err)
	}
	return hc, Validate(hc, path)
}

// Validate names the first missing field.
func Validate(hc bootchost.HostConfig, where string) error {
	for _, f := range []struct{ name, v string }{
		{"conductor_url", hc.ConductorURL}, {"node_uuid", hc.NodeUUID}, {"credential", hc.Credential}} {
		if strings.TrimSpace(f.v) == "" {
			return fmt.Errorf("%s: %s is empty; the deploy writes it (redeploy the node, or fill it in)", where, f.name)
		}
	}
	if !strings.HasPrefix(hc.ConductorURL, "https://") && !strings.HasPrefix(hc.ConductorURL, "http://") {
		return fmt.Errorf("%s: conductor_url %q is not an http(s) URL", where, hc.ConductorURL)
	}
	return nil
}

// Save writes hc to path atomically with mode 0600: a temporary file in the same directory, synced, then renamed
// over the old one, so a crash leaves the old credential or the new one, never half a file.
func Save(path string, hc bootchost.HostConfig) error {
	b, err := json.MarshalIndent(hc, "", "  ")
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	// CreateTemp makes the file 0600 already; the Chmod below says so explicitly, whatever the umask.
	f, err := os.CreateTemp(dir, ".hostd-*.json")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("replacing %s: %w", path, err)
	}
	return nil
}

// ConfigDriveLabels are the filesystem labels cloud-init accepts for a config drive (ISO 9660 upper-cases it).
var ConfigDriveLabels = []string{"config-2", "CONFIG-2"}

// FromConfigDrive finds the config drive under byLabel (/dev/disk/by-label), mounts it read-only on a private
// temporary directory, reads bootchost.ConfigDrivePath, unmounts it, and saves the configuration to path.
func FromConfigDrive(ctx context.Context, byLabel, path string) (bootchost.HostConfig, error) {
	var hc bootchost.HostConfig
	dev := ""
	for _, l := range ConfigDriveLabels {
		if _, err := os.Stat(filepath.Join(byLabel, l)); err == nil {
			dev = filepath.Join(byLabel, l)
			break
		}
	}
	if dev == "" {
		return hc, fmt.Errorf("%w: %s does not exist and no config drive is attached (no %s/config-2): write the "+
			"node's configuration there (mode 0600) or redeploy with a config drive", ErrNoConfig, path, byLabel)
	}
	b, err := readFromDrive(ctx, dev)
	if err != nil {
		return hc, err
	}
	if err := json.Unmarshal(b, &hc); err != nil {
		return hc, fmt.Errorf("%s on the config drive: %w", bootchost.ConfigDrivePath, err)
	}
	if err := Validate(hc, bootchost.ConfigDrivePath+" on the config drive"); err != nil {
		return hc, err
	}
	return hc, Save(path, hc)
}

// readFromDrive mounts dev read-only (nosuid, nodev, noexec: its content is data) and reads the file.
func readFromDrive(ctx context.Context, dev string) ([]byte, error) {
	// MkdirTemp's directory is 0700: while mounted, the drive (and the credential on it) is root's only.
	mnt, err := os.MkdirTemp("", "ferric-hostd-cd-")
	if err != nil {
		return nil, err
	}
	defer os.Remove(mnt)
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "mount", "-o", "ro,nosuid,nodev,noexec", dev, mnt).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("mounting the config drive %s: %w: %s", dev, err, strings.TrimSpace(string(out)))
	}
	b, readErr := os.ReadFile(filepath.Join(mnt, bootchost.ConfigDrivePath))
	// The unmount gets its own deadline: a cancelled ctx must not leave the drive mounted.
	uctx, ucancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer ucancel()
	if out, err := exec.CommandContext(uctx, "umount", mnt).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("unmounting the config drive from %s: %w: %s", mnt, err, strings.TrimSpace(string(out)))
	}
	if readErr != nil {
		return nil, fmt.Errorf("the config drive %s has no %s (was the node deployed with ferric-hostd enabled?): %w",
			dev, bootchost.ConfigDrivePath, readErr)
	}
	return b, nil
}

// LoadOrInstall reads path, or on first start copies the configuration from the config drive to it.
func LoadOrInstall(ctx context.Context, path, byLabel string) (hc bootchost.HostConfig, fromDrive bool, err error) {
	// Only a missing file falls back to the drive: a file that exists but is refused (mode, content) is an error
	// the operator must see, not something a config drive silently replaces.
	hc, err = Load(path)
	if !errors.Is(err, os.ErrNotExist) {
		return hc, false, err
	}
	hc, err = FromConfigDrive(ctx, byLabel, path)
	return hc, err == nil, err
}
