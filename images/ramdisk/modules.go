package ramdisk

import (
	"bufio"
	"bytes"
	"debug/elf"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Profiles name the module sets a ramdisk is built with.
const (
	// ProfileServer (the default) carries the VM set plus the NIC, RAID/HBA, NVMe and USB drivers common servers
	// need to boot the agent, see their disks and reach the conductor, with their firmware.
	ProfileServer = "server"
	// ProfileVM carries only what QEMU/KVM and common hypervisors present: the smallest ramdisk.
	ProfileVM = "vm"
)

// Profiles lists the profile names, the default first.
func Profiles() []string { return []string{ProfileServer, ProfileVM} }

// ProfileModules returns the module names of a profile ("" is the default, server). Their dependencies are
// resolved from each module's .modinfo at build time, so only the drivers themselves are listed.
func ProfileModules(profile string) ([]string, error) {
	switch profile {
	case ProfileVM:
		return vmModules(), nil
	case ProfileServer, "":
		return append(vmModules(), serverModules()...), nil
	}
	return nil, fmt.Errorf("unknown ramdisk profile %q: use one of %s", profile, strings.Join(Profiles(), ", "))
}

// vmModules is the module set for VMs (environment.md §4): storage, network, filesystems, overlay, dm-crypt and
// TPM. Soft dependencies (crc32c, nls_ascii) are listed explicitly because there is no modprobe in the ramdisk.
// tpm_tis and tpm_crb are built into Debian's kernel; they stay listed for kernels that build them as modules.
func vmModules() []string {
	return []string{"crc32c_generic", "crc32c_intel", "libcrc32c", "nls_ascii", "virtio_pci", "virtio_net", "e1000", "e1000e",
		"virtio_blk", "virtio_scsi", "ahci", "ata_piix", "sd_mod", "sr_mod", "nvme", "isofs", "vfat", "nls_cp437",
		"nls_iso8859_1", "nls_utf8", "ext4", "xfs", "overlay", "loop", "dm_crypt", "xts", "aesni_intel", "efivarfs",
		"tpm_tis", "tpm_crb",
		// The ACPI power button as an input device: /init powers off when a BMC's graceful power off presses it.
		"button", "evdev"}
}

// serverModules are the drivers of common server hardware. Debian 12's kernel does not build ionic (AMD
// Pensando), so it is not listed; `--module` adds any other driver the kernel package carries.
func serverModules() []string {
	return []string{
		// NICs: Intel 1/10/25/40/100G, Broadcom NetXtreme-C/E and tg3, Mellanox ConnectX-4+, Emulex, QLogic FastLinQ.
		"igb", "igc", "ixgbe", "i40e", "ice", "bnxt_en", "mlx5_core", "tg3", "be2net", "qede",
		// RAID controllers and HBAs: Broadcom/LSI MegaRAID and SAS3, Microchip SmartPQI, HPE Smart Array, Adaptec.
		"megaraid_sas", "mpt3sas", "smartpqi", "hpsa", "aacraid",
		// USB: BMC virtual media is often a USB CD-ROM or disk behind an xHCI or EHCI controller.
		"xhci_pci", "xhci_hcd", "ehci_pci", "ehci_hcd", "usb_storage", "uas",
	}
}

// modinfo is what the builder reads from a module's .modinfo section.
type modinfo struct {
	depends  []string // hard dependencies: loaded first
	firmware []string // firmware files the driver may request (names below /lib/firmware, sometimes globs)
}

// moduleSet is a resolved module list.
type moduleSet struct {
	files    []string // module files, dependencies first (the load order)
	firmware []string // firmware names requested by those modules, sorted, unique
}

func normalize(name string) string {
	return strings.ReplaceAll(strings.TrimSuffix(name, ".ko"), "-", "_")
}

// builtinModules reads modules.builtin (paths of modules built into the kernel image), so that naming one of
// them is not mistaken for a typo.
func builtinModules(root string) (map[string]bool, error) {
	f, err := os.Open(filepath.Join(root, "modules.builtin"))
	if err != nil {
		if os.IsNotExist(err) {
			return map[string]bool{}, nil
		}
		return nil, err
	}
	defer f.Close()
	out := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" {
			out[normalize(filepath.Base(line))] = true
		}
	}
	return out, sc.Err()
}

// resolveModules returns the module files for names and all their dependencies, dependencies first, with the
// firmware they request. A name that is neither a module file under root nor built into the kernel is an error
// naming it: a typo in --module must not produce a ramdisk that silently lacks the driver.
func resolveModules(root string, names []string) (*moduleSet, error) {
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
	builtin, err := builtinModules(root)
	if err != nil {
		return nil, err
	}
	set := &moduleSet{}
	firmware := map[string]bool{}
	seen := map[string]bool{}
	var visit func(n, from string) error
	visit = func(n, from string) error {
		n = normalize(n)
		if seen[n] {
			return nil
		}
		seen[n] = true
		p, ok := index[n]
		if !ok {
			if builtin[n] {
				return nil
			}
			if from != "" {
				return fmt.Errorf("module %s needs %q, which kernel %s neither ships nor builds in", from, n, filepath.Base(root))
			}
			return fmt.Errorf("module %q is not in kernel %s (neither a .ko file nor built in): check the name "+
				"given to --module or the profile (names as in lsmod, e.g. mpt3sas, usb_storage)", n, filepath.Base(root))
		}
		info, err := readModinfo(p)
		if err != nil {
			return fmt.Errorf("read .modinfo of %s: %w", p, err)
		}
		for _, d := range info.depends {
			if err := visit(d, n); err != nil {
				return err
			}
		}
		for _, fw := range info.firmware {
			firmware[fw] = true
		}
		set.files = append(set.files, p)
		return nil
	}
	for _, n := range names {
		if err := visit(n, ""); err != nil {
			return nil, err
		}
	}
	if len(set.files) == 0 {
		return nil, fmt.Errorf("no module files found for %s under %s", strings.Join(names, ","), root)
	}
	for fw := range firmware {
		set.firmware = append(set.firmware, fw)
	}
	sort.Strings(set.firmware)
	return set, nil
}

// readModinfo reads "depends=" and "firmware=" from a module's .modinfo section (NUL-separated key=value).
func readModinfo(path string) (modinfo, error) {
	var info modinfo
	f, err := elf.Open(path)
	if err != nil {
		return info, err
	}
	defer f.Close()
	s := f.Section(".modinfo")
	if s == nil {
		return info, nil
	}
	data, err := s.Data()
	if err != nil {
		return info, err
	}
	for _, kv := range bytes.Split(data, []byte{0}) {
		if v, ok := bytes.CutPrefix(kv, []byte("depends=")); ok && len(v) > 0 {
			info.depends = strings.Split(string(v), ",")
		}
		if v, ok := bytes.CutPrefix(kv, []byte("firmware=")); ok && len(v) > 0 {
			info.firmware = append(info.firmware, string(v))
		}
	}
	return info, nil
}
