// Package ramdisk builds the agent ramdisk from Debian packages on a Debian host, without debootstrap: the Debian
// kernel, and an initramfs (newc cpio, gzip) holding a Go /init, the kernel modules of a profile (vm or server)
// with their dependencies and the firmware they request (read from each module's .modinfo), the CA bundle with
// the operator's build-time CAs, the podman stack and the rescue login (dropbear, busybox) copied from the host
// with their libraries, and ferric-agent.
package ramdisk

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
)

// DefaultBinaries are copied from the host with their shared libraries: the podman stack the bootc install runs
// in, ip for the network, and qemu-img with qemu's curl block driver (a module it loads at run time from its
// module directory), through which the direct interface's write_image converts qcow2 images read from their URL
// (Debian's qemu-utils and qemu-block-extra).
func DefaultBinaries() []string {
	return []string{"/usr/bin/podman", "/usr/bin/conmon", "/usr/sbin/runc", "/sbin/ip", "/usr/bin/qemu-img",
		"/usr/lib/x86_64-linux-gnu/qemu/block-curl.so"}
}

// RescueBinaries are the rescue login (Debian's dropbear-bin and busybox-static), copied from the host with their
// shared libraries unless Config.NoRescue: after rescue.finalize_rescue the agent runs dropbear for the `rescue`
// user, whose shell is busybox's /bin/sh (its applets run without links: Debian builds it standalone).
func RescueBinaries() []string { return []string{"/usr/sbin/dropbear", "/bin/busybox"} }

// Config configures a build.
type Config struct {
	KernelDeb string   // linux-image-*.deb
	Agent     string   // ferric-agent binary (static)
	Init      string   // the /init binary (static), built from ./init
	Profile   string   // module profile: ProfileServer (default, "") or ProfileVM
	Modules   []string // more module names, added to the profile's (--module); unknown names are an error
	Binaries  []string // host binaries; default DefaultBinaries
	Out       string   // output directory: vmlinuz, initramfs.gz

	// FirmwareDebs are packages to take firmware from besides the profile's FirmwarePackages (--firmware-deb).
	FirmwareDebs []string
	// Cache is where Debian packages (firmware, ca-certificates) are fetched to and reused from; "" fetches
	// nothing, so only FirmwareDebs provide firmware.
	Cache string
	// Download fetches one package into Cache; nil is AptDownload.
	Download Downloader
	// CACerts are operator CA files (PEM), appended to the ramdisk's bundle (--ca-cert).
	CACerts []string
	// CABundle is the base bundle; "" takes HostCABundle, or builds it from the ca-certificates package (Cache)
	// when the host has none.
	CABundle string
	// NoRescue leaves the rescue login (RescueBinaries) out: the agent then refuses rescue.finalize_rescue, as
	// nobody could log in to the rescue environment.
	NoRescue bool
}

// Result names the outputs and their sizes, and what went in.
type Result struct {
	Kernel, Initramfs      string
	KernelBytes, InitBytes int64
	Modules                int
	UncompressedInitramfs  int64
	Profile                string
	Firmware               int      // firmware files included
	MissingFirmware        []string // firmware requested by a module that no package provided
	CACerts                int      // certificates in the ramdisk's bundle, operator CAs included
	OperatorCACerts        int      // of which from CACerts
}

// tree accumulates the initramfs entries, creating parent directories once. The kernel unpacks the archive in
// order, so a directory entry must precede what it holds; entries keep the order they were added in.
type tree struct {
	entries []CpioEntry
	dirs    map[string]bool
}

// dir adds p and its missing parents.
func (t *tree) dir(p string) {
	var chain []string
	for d := p; d != "." && d != "/" && d != ""; d = filepath.Dir(d) {
		chain = append([]string{d}, chain...)
	}
	for _, d := range chain {
		if !t.dirs[d] {
			t.dirs[d] = true
			t.entries = append(t.entries, CpioEntry{Name: d, Mode: 0o040755})
		}
	}
}

// file adds a regular file with the permission bits in mode.
func (t *tree) file(name string, data []byte, mode uint32) {
	t.dir(filepath.Dir(name))
	t.entries = append(t.entries, CpioEntry{Name: name, Mode: 0o100000 | mode, Data: data})
}

// symlink adds a symbolic link (newc: the target is the entry's data).
func (t *tree) symlink(name, target string) {
	t.dir(filepath.Dir(name))
	t.entries = append(t.entries, CpioEntry{Name: name, Mode: 0o120777, Data: []byte(target)})
}

// copyFile adds a build-host file.
func (t *tree) copyFile(name, src string, mode uint32) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	t.file(name, b, mode)
	return nil
}

// Build builds the ramdisk. Inputs are checked first (profile, --ca-cert files), so a bad flag fails in
// milliseconds, before the kernel package is unpacked.
func Build(ctx context.Context, cfg Config, log *logrus.Entry) (*Result, error) {
	if cfg.Binaries == nil {
		cfg.Binaries = DefaultBinaries()
	}
	if cfg.Download == nil {
		cfg.Download = AptDownload
	}
	if cfg.Profile == "" {
		cfg.Profile = ProfileServer
	}
	modules, err := ProfileModules(cfg.Profile)
	if err != nil {
		return nil, err
	}
	modules = append(modules, cfg.Modules...)
	res := &Result{Profile: cfg.Profile}
	var operatorCAs []byte
	for _, f := range cfg.CACerts {
		pemData, n, err := ReadCACert(f, time.Now(), log)
		if err != nil {
			return nil, err
		}
		operatorCAs, res.OperatorCACerts = append(operatorCAs, pemData...), res.OperatorCACerts+n
	}
	// Everything below reads the kernel package; the checks above need nothing but the flags.
	work, err := os.MkdirTemp("", "ferric-ramdisk-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	kernelDir := filepath.Join(work, "kernel")
	if err := extractDeb(ctx, cfg.KernelDeb, kernelDir); err != nil {
		return nil, err
	}
	kernels, _ := filepath.Glob(filepath.Join(kernelDir, "boot", "vmlinuz-*"))
	if len(kernels) != 1 {
		return nil, fmt.Errorf("%s holds %d kernels, want 1", cfg.KernelDeb, len(kernels))
	}
	version := strings.TrimPrefix(filepath.Base(kernels[0]), "vmlinuz-")
	mods, err := resolveModules(filepath.Join(kernelDir, "lib", "modules", version), modules)
	if err != nil {
		return nil, fmt.Errorf("%s profile: %w", cfg.Profile, err)
	}
	t := &tree{dirs: map[string]bool{}}
	for _, d := range []string{"dev", "proc", "sys", "run", "tmp", "etc", "var/lib/containers", "var/tmp", "root"} {
		t.dir(d)
	}
	t.entries = append(t.entries, CpioEntry{Name: "dev/console", Mode: 0o020600, Major: 5, Minor: 1})
	if err := addModules(t, kernelDir, mods.files); err != nil {
		return nil, err
	}
	res.Modules = len(mods.files)
	for _, f := range []string{"etc/passwd", "etc/group", "etc/hosts", "etc/resolv.conf", "etc/containers/policy.json",
		"etc/containers/registries.conf", "etc/containers/containers.conf"} {
		t.file(f, []byte(etcFile(f)), 0o644)
	}
	if err := addFirmware(ctx, cfg, work, mods.firmware, t, res, log); err != nil {
		return nil, err
	}
	if err := addCABundle(ctx, cfg, work, operatorCAs, t, res, log); err != nil {
		return nil, err
	}
	if err := addBinaries(ctx, cfg, t); err != nil {
		return nil, err
	}
	if !cfg.NoRescue {
		t.symlink("bin/sh", "/bin/busybox")
		t.file("etc/shells", []byte("/bin/sh\n"), 0o644)
	}
	if err := write(cfg.Out, kernels[0], Cpio(t.entries), res); err != nil {
		return nil, err
	}
	log.WithFields(logrus.Fields{"kernel": version, "profile": res.Profile, "modules": res.Modules, "firmware": res.Firmware,
		"kernel_mb": res.KernelBytes >> 20, "initramfs_mb": res.InitBytes >> 20,
		"uncompressed_mb": res.UncompressedInitramfs >> 20}).Info("agent ramdisk built")
	return res, nil
}

// addModules copies the module files at their place under /lib/modules/VERSION and lists them, dependencies
// first, in /etc/ferric-modules: /init loads them in that order with finit_module, as there is no modprobe.
func addModules(t *tree, kernelDir string, files []string) error {
	order := make([]string, 0, len(files))
	for _, m := range files {
		rel, err := filepath.Rel(kernelDir, m)
		if err != nil {
			return err
		}
		if err := t.copyFile(rel, m, 0o644); err != nil {
			return err
		}
		order = append(order, "/"+rel)
	}
	t.file("etc/ferric-modules", []byte(strings.Join(order, "\n")+"\n"), 0o644)
	return nil
}

// addCABundle writes the CA bundle (Debian's, then the operator's build-time CAs) where Go's crypto/x509, podman
// and curl-like tools look first, with the Red Hat path as a symlink. Run-time CAs (agent.json) come on top of it
// at boot; they are not this function's business.
func addCABundle(ctx context.Context, cfg Config, work string, operatorCAs []byte, t *tree, res *Result, log *logrus.Entry) error {
	bundle, src, err := caBundle(ctx, &cfg, HostCABundle, work, operatorCAs, log)
	if err != nil {
		return err
	}
	res.CACerts = countCerts(bundle)
	t.file(caBundlePath, bundle, 0o644)
	t.symlink(caBundleAlias, "/"+caBundlePath)
	log.WithFields(logrus.Fields{"base": src, "certificates": res.CACerts, "operator": res.OperatorCACerts}).Info("CA bundle")
	return nil
}

// addFirmware puts the firmware the modules request under /lib/firmware, from Config.FirmwareDebs and the
// profile's packages (fetched into Config.Cache). Missing firmware is a warning: most of it serves only some
// models of a NIC family, and a server whose NIC lacks it still boots the agent over another NIC.
func addFirmware(ctx context.Context, cfg Config, work string, wanted []string, t *tree, res *Result, log *logrus.Entry) error {
	if len(wanted) == 0 {
		return nil
	}
	debs := append([]string(nil), cfg.FirmwareDebs...)
	var unavailable []string
	if cfg.Cache != "" {
		for _, pkg := range FirmwarePackages(cfg.Profile) {
			deb, err := cachedDeb(ctx, cfg.Cache, pkg, cfg.Download)
			if err != nil {
				log.WithError(err).WithField("package", pkg).Warn("firmware package not available (for non-free-firmware, " +
					"add that component to the apt sources and run apt-get update)")
				unavailable = append(unavailable, pkg)
				continue
			}
			debs = append(debs, deb)
		}
	}
	fw, err := collectFirmware(ctx, work, debs, wanted)
	if err != nil {
		return err
	}
	names := make([]string, 0, len(fw.files))
	for n := range fw.files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := t.copyFile("lib/firmware/"+n, fw.files[n], 0o644); err != nil {
			return err
		}
	}
	res.Firmware, res.MissingFirmware = len(names), fw.missing
	if len(fw.missing) > 0 {
		log.WithFields(logrus.Fields{"missing": strings.Join(fw.missing, " "), "packages_used": len(debs),
			"packages_unavailable": strings.Join(unavailable, " ")}).
			Warnf("%d firmware files requested by the %s profile's modules are not in the ramdisk: the drivers load, "+
				"but hardware needing them may not work (add packages with --firmware-deb)", len(fw.missing), cfg.Profile)
	}
	return nil
}

// addBinaries copies the host binaries with their shared libraries, then /init and the agent.
func addBinaries(ctx context.Context, cfg Config, t *tree) error {
	libs := map[string]bool{}
	bins := cfg.Binaries
	if !cfg.NoRescue {
		bins = append(append([]string(nil), bins...), RescueBinaries()...)
	}
	for _, bin := range bins {
		if err := t.copyFile(strings.TrimPrefix(bin, "/"), bin, 0o755); err != nil {
			return fmt.Errorf("%s is needed in the ramdisk (apt-get install podman conmon runc iproute2 qemu-utils qemu-block-extra dropbear-bin busybox-static; "+
				"or build without the rescue login: --no-rescue): %w", bin, err)
		}
		deps, err := sharedLibs(ctx, bin)
		if err != nil {
			return err
		}
		for _, l := range deps {
			libs[l] = true
		}
	}
	libList := make([]string, 0, len(libs))
	for l := range libs {
		libList = append(libList, l)
	}
	sort.Strings(libList)
	for _, l := range libList {
		if err := t.copyFile(strings.TrimPrefix(l, "/"), l, 0o755); err != nil {
			return err
		}
	}
	for _, f := range []struct{ name, src string }{{"init", cfg.Init}, {"usr/bin/ferric-agent", cfg.Agent}} {
		if err := t.copyFile(f.name, f.src, 0o755); err != nil {
			return fmt.Errorf("%s: %w", f.name, err)
		}
	}
	return nil
}

// write compresses the archive and writes vmlinuz and initramfs.gz into out, filling in the sizes.
func write(out, kernel string, raw []byte, res *Result) error {
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestSpeed)
	if _, err := zw.Write(raw); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	res.Kernel, res.Initramfs = filepath.Join(out, "vmlinuz"), filepath.Join(out, "initramfs.gz")
	res.UncompressedInitramfs, res.InitBytes = int64(len(raw)), int64(gz.Len())
	kb, err := os.ReadFile(kernel)
	if err != nil {
		return err
	}
	res.KernelBytes = int64(len(kb))
	if err := os.WriteFile(res.Kernel, kb, 0o644); err != nil {
		return err
	}
	return os.WriteFile(res.Initramfs, gz.Bytes(), 0o644)
}

// etcFile is the content of the ramdisk's configuration files.
func etcFile(name string) string {
	return map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\n", "etc/group": "root:x:0:\n", "etc/hosts": "127.0.0.1 localhost\n",
		"etc/resolv.conf": "", "etc/containers/policy.json": `{"default":[{"type":"insecureAcceptAnything"}]}` + "\n",
		"etc/containers/registries.conf": "unqualified-search-registries = []\n",
		"etc/containers/containers.conf": "[engine]\nno_pivot_root = true\nruntime = \"runc\"\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n",
	}[name]
}

// sharedLibs lists a binary's shared libraries (and the loader) as ldd resolves them.
func sharedLibs(ctx context.Context, bin string) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ldd", bin).CombinedOutput()
	if err != nil {
		if strings.Contains(string(out), "not a dynamic executable") {
			return nil, nil
		}
		return nil, fmt.Errorf("ldd %s: %v: %s", bin, err, out)
	}
	var libs []string
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 3 && f[1] == "=>" && strings.HasPrefix(f[2], "/"):
			libs = append(libs, f[2])
		case len(f) >= 1 && strings.HasPrefix(f[0], "/"):
			libs = append(libs, f[0])
		}
	}
	return libs, nil
}

// Minimal builds a small initramfs (gzip newc) with init as /init and the named modules (with dependencies,
// listed in /etc/ferric-modules), and returns it with the kernel from kernelDeb. Test operating systems use it.
// extra is added as given after the base entries (/dev, /proc, /sys, /mnt, /etc, /lib): the kernel does not make
// missing parent directories while it unpacks, so extra must list its directories before their files.
func Minimal(kernelDeb, init string, modules []string, extra ...CpioEntry) (kernel, initramfs []byte, err error) {
	work, err := os.MkdirTemp("", "ferric-minimal-")
	if err != nil {
		return nil, nil, err
	}
	defer os.RemoveAll(work)
	if err := extractDeb(context.Background(), kernelDeb, work); err != nil {
		return nil, nil, err
	}
	kernels, _ := filepath.Glob(filepath.Join(work, "boot", "vmlinuz-*"))
	if len(kernels) != 1 {
		return nil, nil, fmt.Errorf("%s holds %d kernels, want 1", kernelDeb, len(kernels))
	}
	version := strings.TrimPrefix(filepath.Base(kernels[0]), "vmlinuz-")
	mods, err := resolveModules(filepath.Join(work, "lib", "modules", version), modules)
	if err != nil {
		return nil, nil, err
	}
	entries := []CpioEntry{{Name: "dev", Mode: 0o040755}, {Name: "dev/console", Mode: 0o020600, Major: 5, Minor: 1},
		{Name: "proc", Mode: 0o040755}, {Name: "sys", Mode: 0o040755}, {Name: "mnt", Mode: 0o040755}, {Name: "etc", Mode: 0o040755},
		{Name: "lib", Mode: 0o040755}, {Name: "lib/modules", Mode: 0o040755}}
	var order []string
	for i, m := range mods.files {
		b, err := os.ReadFile(m)
		if err != nil {
			return nil, nil, err
		}
		name := fmt.Sprintf("lib/modules/%02d-%s", i, filepath.Base(m))
		entries = append(entries, CpioEntry{Name: name, Mode: 0o100644, Data: b})
		order = append(order, "/"+name)
	}
	initData, err := os.ReadFile(init)
	if err != nil {
		return nil, nil, err
	}
	entries = append(entries, CpioEntry{Name: "etc/ferric-modules", Mode: 0o100644, Data: []byte(strings.Join(order, "\n") + "\n")},
		CpioEntry{Name: "init", Mode: 0o100755, Data: initData})
	entries = append(entries, extra...)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(Cpio(entries))
	zw.Close()
	kernel, err = os.ReadFile(kernels[0])
	return kernel, gz.Bytes(), err
}
