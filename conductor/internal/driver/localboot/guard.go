package localboot

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/store"
	"github.com/ferric-metal/ferric/hostsweep"
)

// loopMajor is the block major number of loop devices (Documentation/admin-guide/devices.txt).
const loopMajor = 7

var loopName = regexp.MustCompile(`^/dev/loop[0-9]+$`)

// resolveDevice returns the block device driver_info.local_agent_device names, with symlinks resolved (the path
// the agent is given, so that a symlink changed after validation cannot redirect the install). It refuses
// anything but a loop device (/dev/loopN with major 7) unless the resolved device is one the conductor lists in
// --local-agent-devices: the agent wipes the device, and driver_info is writable by every API user.
func (b *Boot) resolveDevice(n *store.Node) (string, error) {
	dev := device(n)
	if dev == "" {
		return "", fmt.Errorf("driver_info.local_agent_device is missing: set it to the block device the local agent installs to (e.g. /dev/loop3): %w", driver.ErrInvalid)
	}
	real, err := filepath.EvalSymlinks(dev)
	if err != nil {
		return "", fmt.Errorf("driver_info.local_agent_device %s: %v: set it to an existing block device: %w", dev, err, driver.ErrInvalid)
	}
	st, err := os.Stat(real)
	if err != nil || st.Mode()&os.ModeDevice == 0 || st.Mode()&os.ModeCharDevice != 0 {
		return "", fmt.Errorf("driver_info.local_agent_device %s is not a block device: %w", dev, driver.ErrInvalid)
	}
	for _, allowed := range b.cfg.Devices {
		if a, err := filepath.EvalSymlinks(allowed); err == nil && a == real {
			return real, nil
		}
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok || !loopName.MatchString(real) || unix.Major(uint64(sys.Rdev)) != loopMajor {
		return "", fmt.Errorf("driver_info.local_agent_device %s (%s) is not a loop device: the local-agent boot interface wipes "+
			"only /dev/loopN devices unless the conductor is started with --local-agent-devices %s: %w", dev, real, real, driver.ErrInvalid)
	}
	return real, nil
}

// Per-node directories. The node's directory is named by its full UUID (two nodes sharing a UUID prefix must not
// share state, nor tear each other's mounts down). The agent's own state directory holds podman's run root, which
// podman refuses beyond 50 characters: /run/ferric-agents/<36-char UUID>/podman/rr would be 65. So the agent's
// state lives in a short directory named by a 16-hex-digit hash of the full UUID, with the UUID written into
// it (runOwner): a hash collision is detected and refused, never shared.
const runOwner = "node-uuid"

// maxRunRoot is podman's limit on the run root's length (the agent puts it at <agent state dir>/podman/rr).
const maxRunRoot = 50

// nodeDir holds the agent's log, image storage and TMPDIR.
func (b *Boot) nodeDir(uuid string) string { return filepath.Join(b.cfg.StateDir, uuid) }

// runDir is the agent's --state-dir (podman's configuration, run root and socket; authorized keys).
func (b *Boot) runDir(uuid string) string {
	sum := sha256.Sum256([]byte(uuid))
	return filepath.Join(b.cfg.StateDir, "r"+hex.EncodeToString(sum[:8]))
}

// claimRunDir empties the node's run directory and records the node as its owner. It refuses a directory owned
// by another node (a hash collision) and a state directory too long for podman's run root.
func (b *Boot) claimRunDir(uuid string) (string, error) {
	// The UUID names directories that are removed: never let it reach outside StateDir.
	if uuid == "" || uuid == "." || uuid == ".." || strings.ContainsAny(uuid, "/\x00") {
		return "", fmt.Errorf("node UUID %q cannot name a local agent directory: %w", uuid, driver.ErrInvalid)
	}
	dir := b.runDir(uuid)
	if rr := filepath.Join(dir, "podman", "rr"); len(rr) > maxRunRoot {
		return "", fmt.Errorf("--agent-state-dir %s is too long: podman refuses the local agent's run root %s (over %d characters); use a shorter directory such as /run/ferric-agents",
			b.cfg.StateDir, rr, maxRunRoot)
	}
	owner, err := os.ReadFile(filepath.Join(dir, runOwner))
	if err == nil && string(owner) != uuid {
		return "", fmt.Errorf("local agent state directory %s belongs to node %s (hash collision with %s): tear that node's agent down first", dir, owner, uuid)
	}
	if err := os.RemoveAll(dir); err != nil {
		return "", fmt.Errorf("local agent state directory: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("local agent state directory: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, runOwner), []byte(uuid), 0o600); err != nil {
		return "", fmt.Errorf("local agent state directory: %w", err)
	}
	return dir, nil
}

// procIdentity is a process's start time and executable (hostsweep.ProcIdentity): what tells it from a later
// process that reuses its PID.
func procIdentity(pid int) (start, exe string, err error) {
	start, exe, _, err = hostsweep.ProcIdentity(pid)
	return start, exe, err
}

// errStalePID says the recorded PID is no longer the agent that was started.
var errStalePID = errors.New("not the local agent started for this node")

// recordedAgent returns the PID in driver_internal_info if it is still the process that was started for the node
// (same start time and executable as recorded when starting it), so that it is safe to signal.
func recordedAgent(n *store.Node) (int, error) {
	pid, ok := pidOf(n)
	if !ok {
		return 0, nil
	}
	wantStart, _ := n.DriverInternalInfo["local_agent_start_time"].(string)
	wantExe, _ := n.DriverInternalInfo["local_agent_exe"].(string)
	if wantStart == "" || wantExe == "" {
		return pid, fmt.Errorf("pid %d: no start time or executable recorded: %w", pid, errStalePID)
	}
	start, exe, err := procIdentity(pid)
	if err != nil {
		return pid, fmt.Errorf("pid %d: %v: %w", pid, err, errStalePID)
	}
	if start != wantStart || exe != wantExe {
		return pid, fmt.Errorf("pid %d is %s started at tick %s, the agent was %s started at tick %s: %w", pid, exe, start, wantExe, wantStart, errStalePID)
	}
	return pid, nil
}
