// Package install owns the agent's bootc install: preflight (memory against the image's size, the disk against
// the root size), the pull (credentials only in the API call, digest verified), the privileged install container
// running `bootc install to-disk`, the partition check and the config drive.
package install

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	diskfs "github.com/diskfs/go-diskfs"
	"github.com/sirupsen/logrus"

	"github.com/ferric-metal/ferric/configdrive"
	"github.com/ferric-metal/ferric/deploy"
	"github.com/ferric-metal/ferric/deploy/bootc"
	"github.com/ferric-metal/ferric/images"
	"github.com/ferric-metal/ferric/ramdisk-agent/internal/hardware"
	"github.com/ferric-metal/ferric/ramdisk-agent/internal/podman"
)

// Errors with a meaning for the conductor and the operator.
var (
	ErrNoBootc        = errors.New("image has no bootc binary")
	ErrPreflight      = errors.New("preflight refused the install")
	ErrPull           = errors.New("image pull failed")
	ErrInstall        = errors.New("bootc install failed")
	ErrNoPartitions   = errors.New("no partition table after install")
	ErrDigestMismatch = errors.New("pulled digest differs from the pinned digest")
)

// Reporter receives progress; the command API implements it.
type Reporter interface {
	Phase(name string)
	Bytes(done, total int64)
	Line(s string)
}

// Config wires the installer.
type Config struct {
	Podman    *podman.Client
	GraphRoot string // podman's image storage (bind-mounted into the install container)
	// KeysDir is a private directory (tmpfs in the ramdisk) for the authorized keys file handed to bootc.
	KeysDir  string
	Hardware hardware.Source
	// TargetDevice, when set, replaces root device hints (development and tests: a loop device).
	TargetDevice string
	// MemoryBudget overrides MemAvailable for the preflight (0 = MemAvailable).
	MemoryBudget int64
	// Insecure lists registries reached over plain http.
	Insecure []string
	// Rlimits for the install container (sandboxes only), e.g. "nofile=1024:1024".
	Rlimits        []string
	PullTimeout    time.Duration // default 30 min
	InstallTimeout time.Duration // default 60 min
	Log            *logrus.Entry
}

// Installer runs bootc installs.
type Installer struct{ cfg Config }

// New returns an installer.
func New(cfg Config) *Installer {
	if cfg.PullTimeout == 0 {
		cfg.PullTimeout = 30 * time.Minute
	}
	if cfg.InstallTimeout == 0 {
		cfg.InstallTimeout = 60 * time.Minute
	}
	return &Installer{cfg: cfg}
}

// headroomBytes is what podman, bootc and the agent need in RAM besides the image.
const headroomBytes = 256 << 20

type phases struct {
	mu    sync.Mutex
	list  []deploy.Phase
	cur   string
	start time.Time
	rep   Reporter
}

func (p *phases) begin(name string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.endLocked()
	p.cur, p.start = name, time.Now()
	p.rep.Phase(name)
}

func (p *phases) endLocked() {
	if p.cur != "" {
		p.list = append(p.list, deploy.Phase{Name: p.cur, Seconds: time.Since(p.start).Seconds()})
		p.cur = ""
	}
}

func (p *phases) done() []deploy.Phase {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.endLocked()
	return p.list
}

// Run installs the image of params onto the disk chosen by hints (or the configured target).
func (in *Installer) Run(ctx context.Context, params deploy.BootcInstallParams, hints map[string]any, rep Reporter) (*deploy.InstallResult, error) {
	log := in.cfg.Log
	ph := &phases{rep: rep}
	say := func(format string, a ...any) {
		msg := fmt.Sprintf(format, a...)
		log.Info(msg)
		rep.Line(msg)
	}

	// 1. Validate everything before touching anything.
	ph.begin("preflight")
	opts, err := bootc.ParseOptions(params.InstanceInfo)
	if err != nil {
		return nil, err
	}
	refStr, err := bootc.ValidateImageSource(params.ImageSource)
	if err != nil {
		return nil, err
	}
	ref, err := images.Parse(refStr, false)
	if err != nil {
		return nil, err
	}
	insecure := in.insecure(ref.Registry)
	if insecure {
		if ref, err = images.Parse(refStr, true); err != nil {
			return nil, err
		}
	}
	var creds *images.Credentials
	if params.PullSecret != nil && *params.PullSecret != "" {
		if creds, err = images.DecodeTransportSecret(*params.PullSecret); err != nil {
			return nil, err
		}
	}
	disk, reason, err := in.chooseDisk(hints)
	if err != nil {
		return nil, fmt.Errorf("%v: %w", err, ErrPreflight)
	}
	say("target disk %s (%d MiB): %s", disk.Name, disk.Size>>20, reason)
	rootMiB, err := bootc.RootSizeMiB(disk.Size, opts.RootReserveMiB)
	if err != nil {
		return nil, fmt.Errorf("disk %s: %v: %w", disk.Name, err, ErrPreflight)
	}
	res, err := images.Resolve(ctx, ref, creds, params.ImagePlatform, 2*time.Minute)
	if err != nil {
		if errors.Is(err, images.ErrUnauthorized) || errors.Is(err, images.ErrNotFound) {
			return nil, fmt.Errorf("%v: %w", err, ErrPull)
		}
		return nil, fmt.Errorf("cannot read the image from its registry: %v: %w", err, ErrPull)
	}
	if ref.Digest != "" && res.Digest != ref.Digest {
		return nil, fmt.Errorf("registry serves %s for %s: %w", res.Digest, ref, ErrDigestMismatch)
	}
	need := res.EstimatedUnpackedBytes + res.CompressedBytes + headroomBytes
	avail := in.cfg.MemoryBudget
	if avail == 0 {
		_, a, err := in.cfg.Hardware.Memory()
		if err != nil {
			return nil, err
		}
		avail = a
	}
	say("image %s: %d layers, %d MiB compressed, about %d MiB unpacked; needs about %d MiB of RAM, %d MiB available",
		ref, res.Layers, res.CompressedBytes>>20, res.EstimatedUnpackedBytes>>20, need>>20, avail>>20)
	if need > avail {
		return nil, fmt.Errorf("the image needs about %d MiB of RAM to pull and unpack (%d MiB compressed, ~%dx unpacked, plus %d MiB for the tools) but the node has %d MiB available: %w",
			need>>20, res.CompressedBytes>>20, images.UnpackRatio, headroomBytes>>20, avail>>20, ErrPreflight)
	}

	// 2. Pull by digest; the bytes land in the (tmpfs) storage.
	ph.begin("pull")
	pinned := res.Pinned
	pullCtx, cancel := context.WithTimeout(ctx, in.cfg.PullTimeout)
	stopWatch := in.watchStorage(res.EstimatedUnpackedBytes, rep)
	po := podman.PullOptions{Insecure: insecure, Progress: lineWriter{rep}}
	if creds != nil {
		po.Username, po.Password = creds.Username, creds.Password
	}
	pulled, err := in.cfg.Podman.Pull(pullCtx, pinned, po)
	stopWatch()
	cancel()
	if err != nil {
		msg := err.Error()
		if strings.Contains(msg, "unauthorized") || strings.Contains(msg, "authentication required") || strings.Contains(msg, "401") {
			return nil, fmt.Errorf("registry %s refused credentials for %s (check image_pull_secret): %w", ref.Registry, ref.Repository, ErrPull)
		}
		return nil, fmt.Errorf("pull %s: %v: %w", pinned, err, ErrPull)
	}
	found := false
	for _, d := range pulled.RepoDigests {
		if strings.HasSuffix(d, "@"+res.Digest) {
			found = true
		}
	}
	if !found {
		return nil, fmt.Errorf("pulled image has digests %v, want %s: %w", pulled.RepoDigests, res.Digest, ErrDigestMismatch)
	}
	say("pulled %s (%d MiB in storage)", pinned, pulled.Size>>20)

	// 3. bootc install to-disk in a privileged host-PID container.
	ph.begin("install")
	binds := []podman.Bind{{Source: "/dev", Destination: "/dev"},
		{Source: in.cfg.GraphRoot, Destination: "/var/lib/containers/storage"}}
	keysFile := ""
	if opts.AuthorizedKeys != "" {
		dir, err := os.MkdirTemp(in.cfg.KeysDir, "keys-")
		if err != nil {
			return nil, fmt.Errorf("keys dir: %w", err)
		}
		defer os.RemoveAll(dir)
		if err := os.WriteFile(filepath.Join(dir, "authorized_keys"), []byte(opts.AuthorizedKeys), 0o600); err != nil {
			return nil, err
		}
		binds = append(binds, podman.Bind{Source: dir, Destination: "/run/ferric/keys", ReadOnly: true})
		keysFile = "/run/ferric/keys/authorized_keys"
	}
	argv, err := bootc.InstallArgv(bootc.InstallInput{Options: opts, Device: disk.Name, DiskBytes: disk.Size, KeysFile: keysFile})
	if err != nil {
		return nil, err
	}
	say("running %s", strings.Join(argv, " "))
	var (
		tailMu sync.Mutex
		tail   []string
	)
	instCtx, cancelInst := context.WithTimeout(ctx, in.cfg.InstallTimeout)
	code, err := in.cfg.Podman.Run(instCtx, podman.RunSpec{Image: pulled.ID, Name: "ferric-bootc-install-" + fmt.Sprint(time.Now().UnixNano()),
		Command: argv, Binds: binds, Rlimits: in.cfg.Rlimits,
		OnOutput: func(l string) {
			rep.Line(l)
			tailMu.Lock()
			tail = append(tail, l)
			if len(tail) > 20 {
				tail = tail[1:]
			}
			tailMu.Unlock()
		}})
	timedOut := instCtx.Err() != nil
	cancelInst()
	tailMu.Lock()
	last := strings.Join(tail, "\n")
	tailMu.Unlock()
	if err != nil {
		if noBootc(err.Error()) || noBootc(last) {
			return nil, fmt.Errorf("%s has no bootc binary in its PATH; build it FROM a bootc base image: %w", ref, ErrNoBootc)
		}
		if timedOut {
			return nil, fmt.Errorf("bootc install did not finish within %s: %w", in.cfg.InstallTimeout, ErrInstall)
		}
		return nil, fmt.Errorf("run the install container: %v: %w", err, ErrInstall)
	}
	if code != 0 {
		if code == 127 || noBootc(last) {
			return nil, fmt.Errorf("%s has no bootc binary in its PATH; build it FROM a bootc base image: %w", ref, ErrNoBootc)
		}
		return nil, fmt.Errorf("bootc install to-disk exited with %d: %s: %w", code, lastError(tail), ErrInstall)
	}

	// 4. The disk must now hold a partition table.
	ph.begin("verify")
	nparts, err := countPartitions(disk.Name)
	if err != nil || nparts == 0 {
		return nil, fmt.Errorf("%s: %v (bootc reported success): %w", disk.Name, err, ErrNoPartitions)
	}
	say("%s holds %d partitions", disk.Name, nparts)

	result := &deploy.InstallResult{Device: disk.Name, DeviceReason: reason, ImageRef: pinned, ImageDigest: res.Digest, RootSizeMiB: rootMiB}
	// 5. Config drive.
	if params.ConfigDrive != nil && *params.ConfigDrive != "" {
		ph.begin("configdrive")
		img, err := configdrive.Decode(ctx, *params.ConfigDrive, configdrive.DecodeOptions{})
		if err != nil {
			return nil, fmt.Errorf("config drive: %w", err)
		}
		wr, err := configdrive.WritePartition(ctx, disk.Name, img, log)
		if err != nil {
			return nil, fmt.Errorf("config drive: %w", err)
		}
		result.ConfigDrive = fmt.Sprintf("partition %d of %s (%s, %d MiB)", wr.Partition, disk.Name, wr.Format, wr.Size>>20)
		say("config drive written to %s", result.ConfigDrive)
	}
	result.Phases = ph.done()
	result.Message = fmt.Sprintf("Container image (%s) written to device %s", params.ImageSource, disk.Name)
	return result, nil
}

func (in *Installer) insecure(registry string) bool {
	for _, r := range in.cfg.Insecure {
		if r == registry {
			return true
		}
	}
	return false
}

func (in *Installer) chooseDisk(hints map[string]any) (hardware.Disk, string, error) {
	src := in.cfg.Hardware
	if in.cfg.TargetDevice != "" {
		src.IncludeVirtual = append(src.IncludeVirtual, in.cfg.TargetDevice)
		disks, err := src.Disks()
		if err != nil {
			return hardware.Disk{}, "", err
		}
		for _, d := range disks {
			if d.Name == in.cfg.TargetDevice {
				return d, "target device set in the agent configuration", nil
			}
		}
		return hardware.Disk{}, "", fmt.Errorf("configured target device %s is not a block device of this machine", in.cfg.TargetDevice)
	}
	disks, err := src.Disks()
	if err != nil {
		return hardware.Disk{}, "", err
	}
	c, err := hardware.Choose(disks, hints)
	if err != nil {
		return hardware.Disk{}, "", err
	}
	return c.Disk, c.Reason, nil
}

// watchStorage reports the bytes in the image storage while a pull runs.
func (in *Installer) watchStorage(total int64, rep Reporter) (stop func()) {
	used := func() int64 {
		var st syscall.Statfs_t
		if syscall.Statfs(in.cfg.GraphRoot, &st) != nil {
			return 0
		}
		return int64(st.Blocks-st.Bfree) * st.Bsize
	}
	base := used()
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				rep.Bytes(max(0, used()-base), total)
			}
		}
	}()
	return func() { close(done); rep.Bytes(max(0, used()-base), total) }
}

type lineWriter struct{ rep Reporter }

func (w lineWriter) Write(p []byte) (int, error) {
	for _, l := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			w.rep.Line(l)
		}
	}
	return len(p), nil
}

// noBootc recognises the runtime's and podman's ways of saying the image has no bootc.
func noBootc(s string) bool {
	return strings.Contains(s, "executable file `bootc` not found") ||
		(strings.Contains(s, `"bootc"`) && strings.Contains(s, "executable file not found")) ||
		strings.Contains(s, "bootc: no such file")
}

// lastError picks the most telling line of bootc's output (its "error:" line when there is one).
func lastError(tail []string) string {
	for i := len(tail) - 1; i >= 0; i-- {
		if strings.Contains(strings.ToLower(tail[i]), "error") {
			return strings.TrimSpace(tail[i])
		}
	}
	if len(tail) > 0 {
		return strings.TrimSpace(tail[len(tail)-1])
	}
	return "no output"
}

func countPartitions(dev string) (int, error) {
	d, err := diskfs.Open(dev, diskfs.WithOpenMode(diskfs.ReadOnly))
	if err != nil {
		return 0, err
	}
	defer d.Close()
	t, err := d.GetPartitionTable()
	if err != nil {
		return 0, fmt.Errorf("no readable partition table: %w", err)
	}
	n := 0
	for _, p := range t.GetPartitions() {
		if p.GetSize() > 0 {
			n++
		}
	}
	return n, nil
}
