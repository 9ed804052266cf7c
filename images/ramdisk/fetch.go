package ramdisk

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// downloadTimeout bounds one `apt-get download`: firmware packages are tens of MB on a slow mirror.
const downloadTimeout = 5 * time.Minute

// Downloader fetches the Debian package pkg into dir (as `apt-get download` names it: pkg_VERSION_ARCH.deb).
// Build uses AptDownload unless Config.Download says otherwise (tests pass a fake).
type Downloader func(ctx context.Context, dir, pkg string) error

// ErrNoPackage says the package manager has no candidate for a package (for firmware: its component, such as
// non-free-firmware, is not in the apt sources).
var ErrNoPackage = errors.New("no installation candidate")

// AptDownload runs `apt-get download pkg` in dir under a deadline.
func AptDownload(ctx context.Context, dir, pkg string) error {
	ctx, cancel := context.WithTimeout(ctx, downloadTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "apt-get", "download", "-q", pkg)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err == nil {
		return nil
	}
	msg := strings.TrimSpace(string(out))
	if strings.Contains(msg, "Unable to locate package") || strings.Contains(msg, "has no installation candidate") ||
		strings.Contains(msg, "Can't select candidate version") {
		return fmt.Errorf("apt-get download %s: %w (%s)", pkg, ErrNoPackage, msg)
	}
	if ctx.Err() != nil {
		return fmt.Errorf("apt-get download %s: no answer within %s: %w", pkg, downloadTimeout, ctx.Err())
	}
	return fmt.Errorf("apt-get download %s: %v: %s", pkg, err, msg)
}

// cachedDeb returns the newest-named pkg_*.deb in cache, downloading it first when there is none, so that a
// second build (and CI) reuses what the first fetched, like the kernel package in out/cache.
func cachedDeb(ctx context.Context, cache, pkg string, download Downloader) (string, error) {
	find := func() string {
		m, _ := filepath.Glob(filepath.Join(cache, pkg+"_*.deb"))
		if len(m) == 0 {
			return ""
		}
		return m[len(m)-1]
	}
	if p := find(); p != "" {
		return p, nil
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return "", fmt.Errorf("package cache %s: %w", cache, err)
	}
	if err := download(ctx, cache, pkg); err != nil {
		return "", err
	}
	if p := find(); p != "" {
		return p, nil
	}
	return "", fmt.Errorf("downloaded %s, but no %s_*.deb appeared in %s", pkg, pkg, cache)
}
