package ramdisk

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// extractTimeout bounds one `dpkg-deb -x` (the kernel package unpacks ~400 MB).
const extractTimeout = 5 * time.Minute

// FirmwarePackages are the Debian packages holding the firmware the profile's drivers request. Only
// firmware-linux-free is in Debian's "main"; the others are in "non-free-firmware", which a host's apt sources
// must list for them to be fetched (Debian may redistribute them; Ferric does not vendor them).
//
//	firmware-misc-nonfree: tigon/tg3*.bin (tg3), intel/ice/ddp/ice.pkg (ice)
//	firmware-qlogic:       qed/qed_init_values_zipped-*.bin (qede via qed)
//
// Drivers added with --module may need others (bnx2x: firmware-bnx2x): pass those with Config.FirmwareDebs.
func FirmwarePackages(profile string) []string {
	if profile == ProfileVM {
		return nil
	}
	return []string{"firmware-linux-free", "firmware-misc-nonfree", "firmware-qlogic"}
}

// extractDeb unpacks a .deb into dir under a deadline.
func extractDeb(ctx context.Context, deb, dir string) error {
	ctx, cancel := context.WithTimeout(ctx, extractTimeout)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "dpkg-deb", "-x", deb, dir).CombinedOutput(); err != nil {
		return fmt.Errorf("extract %s (is it a .deb? dpkg-deb comes with the dpkg package): %v: %s", deb, err, out)
	}
	return nil
}

// firmwareIndex maps firmware names (relative to /lib/firmware) to files under root, for the layouts before and
// after Debian's /usr merge. Symlinks are followed only when they stay inside root: a package's link must never
// pull a build-host file into the ramdisk.
func firmwareIndex(root string) (map[string]string, error) {
	index := map[string]string{}
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		return nil, err
	}
	for _, base := range []string{"lib/firmware", "usr/lib/firmware"} {
		dir := filepath.Join(root, base)
		if _, err := os.Lstat(dir); err != nil {
			continue
		}
		err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			real, err := filepath.EvalSymlinks(p)
			if err != nil || !strings.HasPrefix(real, realRoot+string(filepath.Separator)) {
				return nil // dangling, or pointing out of the package
			}
			if st, err := os.Stat(real); err == nil && st.Mode().IsRegular() {
				rel, _ := filepath.Rel(dir, p)
				index[filepath.ToSlash(rel)] = real
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return index, nil
}

// firmwareFiles are the firmware files found for a module set.
type firmwareFiles struct {
	files   map[string]string // name below /lib/firmware -> file on the build host
	missing []string          // requested names (or globs) no package provided, sorted
}

// collectFirmware unpacks debs under work and picks the files wanted (names or globs from .modinfo, also in
// their .xz/.zst forms, which the kernel's loader reads too). Later packages do not override earlier ones.
func collectFirmware(ctx context.Context, work string, debs, wanted []string) (*firmwareFiles, error) {
	index := map[string]string{}
	for i, deb := range debs {
		dir := filepath.Join(work, fmt.Sprintf("firmware-%d", i))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		if err := extractDeb(ctx, deb, dir); err != nil {
			return nil, err
		}
		idx, err := firmwareIndex(dir)
		if err != nil {
			return nil, fmt.Errorf("firmware in %s: %w", deb, err)
		}
		for name, p := range idx {
			if _, ok := index[name]; !ok {
				index[name] = p
			}
		}
	}
	names := make([]string, 0, len(index))
	for n := range index {
		names = append(names, n)
	}
	sort.Strings(names)
	out := &firmwareFiles{files: map[string]string{}}
	for _, want := range wanted {
		found := false
		for _, n := range names {
			base := strings.TrimSuffix(strings.TrimSuffix(n, ".xz"), ".zst")
			if ok, _ := filepath.Match(want, base); ok || base == want {
				out.files[n] = index[n]
				found = true
			}
		}
		if !found {
			out.missing = append(out.missing, want)
		}
	}
	sort.Strings(out.missing)
	return out, nil
}
