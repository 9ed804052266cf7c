// Package ramdisk builds the agent ramdisk from Debian packages on a Debian host, without debootstrap: the Debian
// kernel, and an initramfs (newc cpio, gzip) holding a Go /init, the kernel modules the hardware needs with their
// dependencies (read from each module's .modinfo), the podman stack copied from the host with its libraries, and
// ferric-agent.
package ramdisk

import (
	"bytes"
	"compress/gzip"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"github.com/sirupsen/logrus"
)

// DefaultModules is the module set for VMs and common hardware (environment.md §4): storage, network,
// filesystems, overlay, dm-crypt and TPM. Soft dependencies (crc32c, nls_ascii) are listed explicitly because
// there is no modprobe in the ramdisk.
func DefaultModules() []string {
	return []string{"crc32c_generic", "crc32c_intel", "libcrc32c", "nls_ascii", "virtio_pci", "virtio_net", "e1000", "e1000e",
		"virtio_blk", "virtio_scsi", "ahci", "ata_piix", "sd_mod", "sr_mod", "nvme", "isofs", "vfat", "nls_cp437",
		"nls_iso8859_1", "nls_utf8", "ext4", "xfs", "overlay", "loop", "dm_crypt", "xts", "aesni_intel", "efivarfs",
		"tpm_tis", "tpm_crb"}
}

// DefaultBinaries are copied from the host with their shared libraries.
func DefaultBinaries() []string {
	return []string{"/usr/bin/podman", "/usr/bin/conmon", "/usr/sbin/runc", "/sbin/ip"}
}

// Config configures a build.
type Config struct {
	KernelDeb string   // linux-image-*.deb
	Agent     string   // ferric-agent binary (static)
	Init      string   // the /init binary (static), built from ./init
	Modules   []string // module names; default DefaultModules
	Binaries  []string // host binaries; default DefaultBinaries
	Out       string   // output directory: vmlinuz, initramfs.gz
}

// Result names the outputs and their sizes.
type Result struct {
	Kernel, Initramfs      string
	KernelBytes, InitBytes int64
	Modules                int
	UncompressedInitramfs  int64
}

// Build builds the ramdisk.
func Build(cfg Config, log *logrus.Entry) (*Result, error) {
	if cfg.Modules == nil {
		cfg.Modules = DefaultModules()
	}
	if cfg.Binaries == nil {
		cfg.Binaries = DefaultBinaries()
	}
	work, err := os.MkdirTemp("", "ferric-ramdisk-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	if out, err := exec.Command("dpkg-deb", "-x", cfg.KernelDeb, work).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("extract %s: %v: %s", cfg.KernelDeb, err, out)
	}
	kernels, _ := filepath.Glob(filepath.Join(work, "boot", "vmlinuz-*"))
	if len(kernels) != 1 {
		return nil, fmt.Errorf("%s holds %d kernels, want 1", cfg.KernelDeb, len(kernels))
	}
	version := strings.TrimPrefix(filepath.Base(kernels[0]), "vmlinuz-")
	modRoot := filepath.Join(work, "lib", "modules", version)
	mods, err := resolveModules(modRoot, cfg.Modules)
	if err != nil {
		return nil, err
	}
	var entries []CpioEntry
	dirs := map[string]bool{}
	addDir := func(p string) {
		var chain []string
		for d := p; d != "." && d != "/" && d != ""; d = filepath.Dir(d) {
			chain = append([]string{d}, chain...)
		}
		for _, d := range chain {
			if !dirs[d] {
				dirs[d] = true
				entries = append(entries, CpioEntry{Name: d, Mode: 0o040755})
			}
		}
	}
	addFile := func(name string, data []byte, mode uint32) {
		addDir(filepath.Dir(name))
		entries = append(entries, CpioEntry{Name: name, Mode: 0o100000 | mode, Data: data})
	}
	for _, d := range []string{"dev", "proc", "sys", "run", "tmp", "etc", "var/lib/containers", "var/tmp", "root"} {
		addDir(d)
	}
	entries = append(entries, CpioEntry{Name: "dev/console", Mode: 0o020600, Major: 5, Minor: 1})
	var order []string
	for _, m := range mods {
		rel, _ := filepath.Rel(work, m)
		b, err := os.ReadFile(m)
		if err != nil {
			return nil, err
		}
		addFile(rel, b, 0o644)
		order = append(order, "/"+rel)
	}
	addFile("etc/ferric-modules", []byte(strings.Join(order, "\n")+"\n"), 0o644)
	for _, f := range []string{"etc/passwd", "etc/group", "etc/hosts", "etc/resolv.conf", "etc/containers/policy.json",
		"etc/containers/registries.conf", "etc/containers/containers.conf"} {
		addFile(f, []byte(etcFile(f)), 0o644)
	}
	libs := map[string]bool{}
	for _, bin := range cfg.Binaries {
		b, err := os.ReadFile(bin)
		if err != nil {
			return nil, fmt.Errorf("%s is needed in the ramdisk (apt-get install podman conmon runc iproute2): %w", bin, err)
		}
		addFile(strings.TrimPrefix(bin, "/"), b, 0o755)
		deps, err := sharedLibs(bin)
		if err != nil {
			return nil, err
		}
		for _, l := range deps {
			libs[l] = true
		}
	}
	var libList []string
	for l := range libs {
		libList = append(libList, l)
	}
	sort.Strings(libList)
	for _, l := range libList {
		b, err := os.ReadFile(l)
		if err != nil {
			return nil, err
		}
		addFile(strings.TrimPrefix(l, "/"), b, 0o755)
	}
	for name, src := range map[string]string{"init": cfg.Init, "usr/bin/ferric-agent": cfg.Agent} {
		b, err := os.ReadFile(src)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		addFile(name, b, 0o755)
	}
	raw := Cpio(entries)
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestSpeed)
	zw.Write(raw)
	zw.Close()
	if err := os.MkdirAll(cfg.Out, 0o755); err != nil {
		return nil, err
	}
	res := &Result{Kernel: filepath.Join(cfg.Out, "vmlinuz"), Initramfs: filepath.Join(cfg.Out, "initramfs.gz"),
		Modules: len(mods), UncompressedInitramfs: int64(len(raw)), InitBytes: int64(gz.Len())}
	kb, err := os.ReadFile(kernels[0])
	if err != nil {
		return nil, err
	}
	res.KernelBytes = int64(len(kb))
	if err := os.WriteFile(res.Kernel, kb, 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(res.Initramfs, gz.Bytes(), 0o644); err != nil {
		return nil, err
	}
	log.WithFields(logrus.Fields{"kernel": version, "modules": res.Modules, "kernel_mb": res.KernelBytes >> 20,
		"initramfs_mb": res.InitBytes >> 20, "uncompressed_mb": res.UncompressedInitramfs >> 20}).Info("agent ramdisk built")
	return res, nil
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

func normalize(name string) string {
	return strings.ReplaceAll(strings.TrimSuffix(name, ".ko"), "-", "_")
}

// resolveModules returns the module files for names and all their dependencies, dependencies first.
func resolveModules(root string, names []string) ([]string, error) {
	index := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".ko") {
			index[normalize(filepath.Base(p))] = p
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	var out []string
	seen := map[string]bool{}
	var visit func(n string) error
	visit = func(n string) error {
		n = normalize(n)
		if seen[n] {
			return nil
		}
		seen[n] = true
		p, ok := index[n]
		if !ok {
			return nil // built into the kernel
		}
		deps, err := moduleDeps(p)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		for _, d := range deps {
			if err := visit(d); err != nil {
				return err
			}
		}
		out = append(out, p)
		return nil
	}
	for _, n := range names {
		if err := visit(n); err != nil {
			return nil, err
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no modules found")
	}
	return out, nil
}

// moduleDeps reads "depends=" from a module's .modinfo section.
func moduleDeps(path string) ([]string, error) {
	f, err := elf.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	s := f.Section(".modinfo")
	if s == nil {
		return nil, nil
	}
	data, err := s.Data()
	if err != nil {
		return nil, err
	}
	for _, kv := range bytes.Split(data, []byte{0}) {
		if v, ok := bytes.CutPrefix(kv, []byte("depends=")); ok && len(v) > 0 {
			return strings.Split(string(v), ","), nil
		}
	}
	return nil, nil
}

// sharedLibs lists a binary's shared libraries (and the loader) as ldd resolves them.
func sharedLibs(bin string) ([]string, error) {
	out, err := exec.Command("ldd", bin).CombinedOutput()
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
func Minimal(kernelDeb, init string, modules []string) (kernel, initramfs []byte, err error) {
	work, err := os.MkdirTemp("", "ferric-minimal-")
	if err != nil {
		return nil, nil, err
	}
	defer os.RemoveAll(work)
	if out, err := exec.Command("dpkg-deb", "-x", kernelDeb, work).CombinedOutput(); err != nil {
		return nil, nil, fmt.Errorf("extract %s: %v: %s", kernelDeb, err, out)
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
	for i, m := range mods {
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
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(Cpio(entries))
	zw.Close()
	kernel, err = os.ReadFile(kernels[0])
	return kernel, gz.Bytes(), err
}
