// Package install owns the agent's bootc install: the preflight (every check that can fail, before the disk is
// touched: options, platform, disk, config drive, registry, memory), the pull (credentials only in the API call,
// digest and unpacked size verified), the privileged install container running `bootc install to-disk`, the
// partition check and the config drive.
package install

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
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

// Runtime is what the installer needs of podman: the podman package's *Client (unit tests pass a fake).
type Runtime interface {
	Pull(ctx context.Context, ref string, o podman.PullOptions) (*podman.PullResult, error)
	Run(ctx context.Context, r podman.RunSpec) (int, error)
}

// Config wires the installer.
type Config struct {
	Podman    Runtime
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
	// Trust (CAs, proxies, mirrors) and Policy (signature policy, nil for none) govern the agent's own registry
	// calls; podman gets the same through its configuration (ramdisk-agent/internal/containerscfg).
	Trust  images.Trust
	Policy *images.Policy
	// Rlimits for the install container (sandboxes only), e.g. "nofile=1024:1024".
	Rlimits        []string
	PullTimeout    time.Duration // default 30 min
	InstallTimeout time.Duration // default 60 min
	// ConfigDriveTimeout bounds the download of a config drive given as a URL (default 60 s).
	ConfigDriveTimeout time.Duration
	// HostArch is this machine's architecture in Go/OCI terms (default runtime.GOARCH: the agent runs natively).
	HostArch string
	Log      *logrus.Entry
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
	if cfg.ConfigDriveTimeout == 0 {
		cfg.ConfigDriveTimeout = 60 * time.Second
	}
	if cfg.HostArch == "" {
		cfg.HostArch = runtime.GOARCH
	}
	return &Installer{cfg: cfg}
}

// headroomBytes is what podman, bootc and the agent need in RAM besides the image.
const headroomBytes = 256 << 20

// bootcFrontMiB is what `bootc install to-disk` puts on the disk in front of the root (reference/contracts.md
// C.1): 1 MiB of alignment, a 1 MiB BIOS-boot partition (x86_64) and the 512 MiB ESP. The root ends at
// bootcFrontMiB + --root-size, so the free space left at the end of the disk is the reserve minus this.
const bootcFrontMiB = 514

// configDriveNeedMiB is the room the config-2 partition takes at the end of the disk: the partition and 1 MiB
// for its alignment and the backup GPT.
const configDriveNeedMiB = configdrive.PartitionSize>>20 + 1

// sayFunc logs a line and reports it to the conductor.
type sayFunc func(format string, a ...any)

// plan is what the preflight established. Until it is complete nothing has been pulled and the disk is
// untouched; the install itself (the first destructive step) only runs on a complete plan and a checked pull.
type plan struct {
	opts              bootc.Options
	ref               images.Ref
	insecure          bool
	creds             *images.Credentials
	os, arch, variant string // the image platform, e.g. linux/arm64/(none)
	disk              hardware.Disk
	reason            string
	rootMiB           int64
	res               *images.Resolved
	drive             []byte // the decoded config drive image, kept for the final write; nil when none
}

// Run installs the image of params onto the disk chosen by hints (or the configured target).
func (in *Installer) Run(ctx context.Context, params deploy.BootcInstallParams, hints map[string]any, rep Reporter) (*deploy.InstallResult, error) {
	ph := deploy.NewPhaseTimer(rep.Phase)
	say := func(format string, a ...any) {
		msg := fmt.Sprintf(format, a...)
		in.cfg.Log.Info(msg)
		rep.Line(msg)
	}

	// 1. Validate everything before touching anything. The preflight holds every check that can fail on the
	// request's content, so a bad request never costs the node its disk (Ironic wipes first and checks the
	// config drive last).
	ph.Begin("preflight")
	p, err := in.preflight(ctx, params, hints, say)
	if err != nil {
		return nil, err
	}

	// 2. Pull by digest; the bytes land in the (tmpfs) storage. The disk is still untouched when this fails.
	ph.Begin("pull")
	pulled, err := in.pull(ctx, p, rep, say)
	if err != nil {
		return nil, err
	}

	// 3. bootc install to-disk in a privileged host-PID container: from here on the disk is wiped.
	ph.Begin("install")
	if err := in.install(ctx, p, pulled.ID, rep, say); err != nil {
		return nil, err
	}

	// 4. The disk must now hold a partition table.
	ph.Begin("verify")
	nparts, err := countPartitions(p.disk.Name)
	if err != nil || nparts == 0 {
		return nil, fmt.Errorf("%s: %v (bootc reported success): %w", p.disk.Name, err, ErrNoPartitions)
	}
	say("%s holds %d partitions", p.disk.Name, nparts)

	result := &deploy.InstallResult{Device: p.disk.Name, DeviceReason: p.reason, ImageRef: p.res.Pinned,
		ImageDigest: p.res.Digest, RootSizeMiB: p.rootMiB}
	// 5. Config drive: decoded and checked in the preflight; only the write is left.
	if p.drive != nil {
		ph.Begin("configdrive")
		wr, err := configdrive.WritePartition(ctx, p.disk.Name, p.drive, in.cfg.Log)
		if err != nil {
			return nil, fmt.Errorf("config drive: %w", err)
		}
		result.ConfigDrive = fmt.Sprintf("partition %d of %s (%s, %d MiB)", wr.Partition, p.disk.Name, wr.Format, wr.Size>>20)
		say("config drive written to %s", result.ConfigDrive)
	}
	result.Phases = ph.Done()
	result.Message = fmt.Sprintf("Container image (%s) written to device %s", params.ImageSource, p.disk.Name)
	return result, nil
}

// preflight runs every check that can fail before the first byte is pulled or written: the options, the image
// reference and pull secret, the platform against this machine, the disk and root size, the config drive (decoded,
// or downloaded under a deadline, and checked against the room the reserve leaves), the registry and the memory.
func (in *Installer) preflight(ctx context.Context, params deploy.BootcInstallParams, hints map[string]any, say sayFunc) (*plan, error) {
	p := &plan{}
	var err error
	if p.opts, err = bootc.ParseOptions(params.InstanceInfo); err != nil {
		return nil, err
	}
	if err := in.parseImage(p, params); err != nil {
		return nil, err
	}
	if err := in.checkPlatform(p, params.ImagePlatform); err != nil {
		return nil, err
	}
	if p.disk, p.reason, err = in.chooseDisk(hints); err != nil {
		return nil, fmt.Errorf("%v: %w", err, ErrPreflight)
	}
	say("target disk %s (%d MiB): %s", p.disk.Name, p.disk.Size>>20, p.reason)
	// The same arithmetic as the --root-size bootc gets (deploy/bootc), so the checks below use the real figure.
	if p.rootMiB, err = bootc.RootSizeMiB(p.disk.Size, p.opts.RootReserveMiB); err != nil {
		return nil, fmt.Errorf("disk %s: %v: %w", p.disk.Name, err, ErrPreflight)
	}
	if params.ConfigDrive != nil && *params.ConfigDrive != "" {
		if p.drive, err = in.decodeConfigDrive(ctx, *params.ConfigDrive, p.opts.RootReserveMiB); err != nil {
			return nil, err
		}
		say("config drive: %d KiB image, fits the %d MiB reserve at the end of the disk", len(p.drive)>>10, p.opts.RootReserveMiB)
	}
	if err := in.checkRegistry(ctx, p, say); err != nil {
		return nil, err
	}
	return p, nil
}

// parseImage reads the image source and the pull secret (Ironic's base64 transport form).
func (in *Installer) parseImage(p *plan, params deploy.BootcInstallParams) error {
	refStr, err := bootc.ValidateImageSource(params.ImageSource)
	if err != nil {
		return err
	}
	if p.ref, err = images.Parse(refStr, false); err != nil {
		return err
	}
	if p.insecure = in.insecure(p.ref.Registry); p.insecure {
		if p.ref, err = images.Parse(refStr, true); err != nil {
			return err
		}
	}
	if params.PullSecret != nil && *params.PullSecret != "" {
		if p.creds, err = images.DecodeTransportSecret(*params.PullSecret); err != nil {
			return err
		}
	}
	return nil
}

// checkPlatform reads image_platform (empty: linux/amd64, what a conductor without it pinned) and refuses a
// machine of another architecture: bootc would install a system this machine cannot boot.
func (in *Installer) checkPlatform(p *plan, platform string) error {
	if platform == "" {
		platform = images.DefaultPlatform
	}
	parts := strings.Split(platform, "/")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return fmt.Errorf("image_platform %q is not os/arch[/variant] such as linux/arm64 (the conductor derives it from properties.cpu_arch): %w",
			platform, ErrPreflight)
	}
	p.os, p.arch = parts[0], parts[1]
	if len(parts) == 3 {
		p.variant = parts[2]
	}
	if p.arch != in.cfg.HostArch {
		return fmt.Errorf("the image was pinned for %s (the node's properties.cpu_arch) but this machine is %s: set properties.cpu_arch to this machine's architecture and deploy again: %w",
			platform, in.cfg.HostArch, ErrPreflight)
	}
	return nil
}

// decodeConfigDrive turns the config drive string into the image written at the end (a URL is downloaded under
// ConfigDriveTimeout, capped at configdrive.MaxImageSize) and checks it will fit: a config-2 filesystem no larger
// than the partition, and room for the partition in what bootc_root_reserve_mib leaves at the end of the disk.
func (in *Installer) decodeConfigDrive(ctx context.Context, value string, reserveMiB int64) ([]byte, error) {
	img, err := configdrive.Decode(ctx, value, configdrive.DecodeOptions{Timeout: in.cfg.ConfigDriveTimeout, MaxSize: configdrive.MaxImageSize})
	if err != nil {
		return nil, fmt.Errorf("configdrive: %w; nothing was written to the disk: %w", err, ErrPreflight)
	}
	if err := configdrive.CheckImage(img); err != nil {
		return nil, fmt.Errorf("configdrive: %w: %w", err, ErrPreflight)
	}
	if free := max(0, reserveMiB-bootcFrontMiB); free < configDriveNeedMiB {
		return nil, fmt.Errorf("configdrive: the config-2 partition needs %d MiB at the end of the disk but bootc_root_reserve_mib=%d leaves %d MiB there (the reserve minus bootc's %d MiB of ESP and BIOS-boot partitions); set bootc_root_reserve_mib to at least %d (default %d) or deploy without a config drive: %w",
			configDriveNeedMiB, reserveMiB, free, bootcFrontMiB, bootcFrontMiB+configDriveNeedMiB, bootc.DefaultReserveMiB, ErrPreflight)
	}
	return img, nil
}

// checkRegistry resolves the image for the plan's platform (digest and sizes) and checks the memory a pull into
// tmpfs needs.
func (in *Installer) checkRegistry(ctx context.Context, p *plan, say sayFunc) error {
	res, err := images.Resolve(ctx, p.ref, images.ResolveOptions{Creds: p.creds, Platform: p.platformString(), Timeout: 2 * time.Minute,
		Trust: in.cfg.Trust, Insecure: in.cfg.Insecure, Policy: in.cfg.Policy})
	if err != nil {
		switch {
		case errors.Is(err, images.ErrPlatform):
			return fmt.Errorf("%w: %w", err, ErrPreflight)
		case errors.Is(err, images.ErrUnauthorized) || errors.Is(err, images.ErrNotFound):
			return fmt.Errorf("%v: %w", err, ErrPull)
		}
		return fmt.Errorf("cannot read the image from its registry: %v: %w", err, ErrPull)
	}
	if p.ref.Digest != "" && res.Digest != p.ref.Digest {
		return fmt.Errorf("registry serves %s for %s on %s: %w", res.Digest, p.ref, p.platformString(), ErrDigestMismatch)
	}
	p.res = res
	// The pull lands in tmpfs: the download, the unpacked tree and the tools must fit in RAM together.
	need := res.EstimatedUnpackedBytes + res.CompressedBytes + headroomBytes
	avail := in.cfg.MemoryBudget
	if avail == 0 {
		_, a, err := in.cfg.Hardware.Memory()
		if err != nil {
			return err
		}
		avail = a
	}
	say("image %s (%s): %d layers, %d MiB compressed, about %d MiB unpacked; needs about %d MiB of RAM, %d MiB available",
		p.ref, p.platformString(), res.Layers, res.CompressedBytes>>20, res.EstimatedUnpackedBytes>>20, need>>20, avail>>20)
	if need > avail {
		return fmt.Errorf("the image needs about %d MiB of RAM to pull and unpack (%d MiB compressed, ~%dx unpacked, plus %d MiB for the tools) but the node has %d MiB available: %w",
			need>>20, res.CompressedBytes>>20, images.UnpackRatio, headroomBytes>>20, avail>>20, ErrPreflight)
	}
	return nil
}

// platformString is the plan's platform as os/arch[/variant], as the registry's index names it.
func (p *plan) platformString() string {
	if p.variant != "" {
		return p.os + "/" + p.arch + "/" + p.variant
	}
	return p.os + "/" + p.arch
}

// pull pulls the pinned digest for the plan's platform and checks what arrived: the digest, the architecture,
// and that its unpacked size fits the root filesystem bootc will be asked for.
func (in *Installer) pull(ctx context.Context, p *plan, rep Reporter, say sayFunc) (*podman.PullResult, error) {
	pullCtx, cancel := context.WithTimeout(ctx, in.cfg.PullTimeout)
	defer cancel()
	stopWatch := in.watchStorage(p.res.EstimatedUnpackedBytes, rep)
	po := podman.PullOptions{Insecure: p.insecure, Progress: lineWriter{rep}, OS: p.os, Arch: p.arch, Variant: p.variant}
	if p.creds != nil {
		po.Username, po.Password = p.creds.Username, p.creds.Password
	}
	pulled, err := in.cfg.Podman.Pull(pullCtx, p.res.Pinned, po)
	stopWatch()
	if err != nil {
		msg := err.Error()
		if strings.Contains(msg, "unauthorized") || strings.Contains(msg, "authentication required") || strings.Contains(msg, "401") {
			return nil, fmt.Errorf("registry %s refused credentials for %s (check image_pull_secret): %w", p.ref.Registry, p.ref.Repository, ErrPull)
		}
		if strings.Contains(msg, "Source image rejected") || strings.Contains(msg, "rejected by policy") {
			scope, reqs := "default", []string{"(podman's default policy)"}
			if in.cfg.Policy != nil {
				scope, reqs = in.cfg.Policy.Requirements(p.ref)
			}
			return nil, fmt.Errorf("image %s refused by the image policy (--image-policy): scope %s requires %s: %v; nothing was written to the disk: %w: %w",
				p.ref, scope, strings.Join(reqs, ", "), err, images.ErrPolicy, ErrPull)
		}
		if strings.Contains(msg, "x509: ") {
			return nil, fmt.Errorf("registry %s: TLS certificate not trusted (x509: %s): give the conductor its CA with --registry-ca: %w: %w",
				p.ref.Registry, strings.SplitN(msg, "x509: ", 2)[1], images.ErrUntrusted, ErrPull)
		}
		return nil, fmt.Errorf("pull %s: %v: %w", p.res.Pinned, err, ErrPull)
	}
	// What podman stored must be what was pinned: a registry or mirror serving other bytes is refused here.
	found := false
	for _, d := range pulled.RepoDigests {
		if strings.HasSuffix(d, "@"+p.res.Digest) {
			found = true
		}
	}
	if !found {
		return nil, fmt.Errorf("pulled image has digests %v, want %s: %w", pulled.RepoDigests, p.res.Digest, ErrDigestMismatch)
	}
	if pulled.Arch != "" && pulled.Arch != p.arch {
		return nil, fmt.Errorf("pulled image %s is built for %s but the node needs %s (properties.cpu_arch): %w",
			p.res.Pinned, pulled.Arch, p.arch, ErrPreflight)
	}
	say("pulled %s (%d MiB unpacked)", p.res.Pinned, pulled.Size>>20)
	return pulled, checkRootFits(p, pulled.Size)
}

// checkRootFits refuses an image whose unpacked files alone exceed the root filesystem it would get: bootc would
// wipe the disk and then fail copying them.
func checkRootFits(p *plan, unpacked int64) error {
	if unpacked <= p.rootMiB<<20 {
		return nil
	}
	diskMiB, needMiB := p.disk.Size>>20, (unpacked+1<<20-1)>>20
	fix := fmt.Sprintf("use a disk of at least %d MiB", needMiB+p.opts.RootReserveMiB)
	if most := diskMiB - needMiB; most >= 100 {
		fix += fmt.Sprintf(", or set bootc_root_reserve_mib to at most %d", most)
	}
	return fmt.Errorf("image %s unpacks to %d MiB but its root filesystem on %s would be %d MiB (%d MiB disk minus bootc_root_reserve_mib %d); %s: %w",
		p.ref, needMiB, p.disk.Name, p.rootMiB, diskMiB, p.opts.RootReserveMiB, fix, ErrPreflight)
}

// install runs `bootc install to-disk` from the pulled image in a privileged host-PID container.
func (in *Installer) install(ctx context.Context, p *plan, imageID string, rep Reporter, say sayFunc) error {
	// bootc needs the host's /dev (the target disk, loop and dm nodes) and reads its own image from the host's
	// containers-storage (reference/contracts.md C.2).
	binds := []podman.Bind{{Source: "/dev", Destination: "/dev"},
		{Source: in.cfg.GraphRoot, Destination: "/var/lib/containers/storage"}}
	// The keys go in through a read-only bind of a private directory (tmpfs in the ramdisk), removed afterwards.
	keysFile := ""
	if p.opts.AuthorizedKeys != "" {
		dir, err := os.MkdirTemp(in.cfg.KeysDir, "keys-")
		if err != nil {
			return fmt.Errorf("keys dir: %w", err)
		}
		defer os.RemoveAll(dir)
		if err := os.WriteFile(filepath.Join(dir, "authorized_keys"), []byte(p.opts.AuthorizedKeys), 0o600); err != nil {
			return err
		}
		binds = append(binds, podman.Bind{Source: dir, Destination: "/run/ferric/keys", ReadOnly: true})
		keysFile = "/run/ferric/keys/authorized_keys"
	}
	argv, err := bootc.InstallArgv(bootc.InstallInput{Options: p.opts, Device: p.disk.Name, DiskBytes: p.disk.Size, KeysFile: keysFile})
	if err != nil {
		return err
	}
	say("running %s", strings.Join(argv, " "))
	// The last lines of bootc's output explain a failure (its "error:" line); all of them go to the deploy log.
	var (
		tailMu sync.Mutex
		tail   []string
	)
	instCtx, cancelInst := context.WithTimeout(ctx, in.cfg.InstallTimeout)
	code, err := in.cfg.Podman.Run(instCtx, podman.RunSpec{Image: imageID, Name: "ferric-bootc-install-" + fmt.Sprint(time.Now().UnixNano()),
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
			return fmt.Errorf("%s has no bootc binary in its PATH; build it FROM a bootc base image: %w", p.ref, ErrNoBootc)
		}
		if timedOut {
			return fmt.Errorf("bootc install did not finish within %s: %w", in.cfg.InstallTimeout, ErrInstall)
		}
		return fmt.Errorf("run the install container: %v: %w", err, ErrInstall)
	}
	if code != 0 {
		if code == 127 || noBootc(last) {
			return fmt.Errorf("%s has no bootc binary in its PATH; build it FROM a bootc base image: %w", p.ref, ErrNoBootc)
		}
		return fmt.Errorf("bootc install to-disk exited with %d: %s: %w", code, lastError(tail), ErrInstall)
	}
	return nil
}

// insecure reports whether registry is reached over plain http (the agent's --insecure-registry list).
func (in *Installer) insecure(registry string) bool {
	for _, r := range in.cfg.Insecure {
		if r == registry {
			return true
		}
	}
	return false
}

// chooseDisk picks the install disk: the configured target device (development: a loop device, which sysfs
// listings skip unless named) or the disk the root device hints choose, with the reason for the deploy log.
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

// lineWriter turns podman's pull progress stream into reported log lines (blank lines dropped).
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

// countPartitions counts the non-empty partitions of dev's table: bootc exiting 0 without one is a failure.
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
