package ramdisk

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/test/testenv"
)

// TestBuildProfiles builds both profiles from the Debian kernel package with the real agent, init and podman
// stack, and guards what an operator relies on: the compressed sizes (vm < 60 MB, server < 120 MB), the server
// drivers and their firmware, the operator's CA in the bundle, and an unknown --module refused by name.
func TestBuildProfiles(t *testing.T) {
	deb := kernelDeb(t)
	testenv.Tool(t, "dpkg-deb", "dpkg")
	for _, p := range append(DefaultBinaries(), RescueBinaries()...) {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%s missing: .ci/run installs podman conmon runc iproute2 qemu-utils qemu-block-extra dropbear-bin busybox-static", p)
		}
	}
	dir := t.TempDir()
	agent, initBin := filepath.Join(dir, "ferric-agent"), filepath.Join(dir, "init")
	testBinary(t, agent, "./cmd/ramdisk-agent", true)
	testBinary(t, initBin, "./images/ramdisk/init", false)
	now := time.Now()
	ca, _ := testCert(t, "Ferric Test Site CA", now.Add(-time.Hour), now.Add(time.Hour))
	caFile := filepath.Join(dir, "site-ca.pem")
	require.NoError(t, os.WriteFile(caFile, ca, 0o644))
	// Stands in for firmware-misc-nonfree, which this host's apt sources may not offer.
	fwDeb := fakeDeb(t, dir, "firmware-test", map[string]string{"lib/firmware/tigon/tg3.bin": "tg3 firmware"})
	log, _ := quietLog()
	ctx := context.Background()
	build := func(cfg Config) (*Result, map[string]CpioEntry) {
		cfg.KernelDeb, cfg.Agent, cfg.Init, cfg.Out = deb, agent, initBin, filepath.Join(t.TempDir(), "out")
		res, err := Build(ctx, cfg, log)
		require.NoError(t, err)
		t.Logf("profile %s: initramfs %.1f MB compressed (%d MiB uncompressed), %d modules, %d firmware files, %d CA certificates",
			res.Profile, float64(res.InitBytes)/1e6, res.UncompressedInitramfs>>20, res.Modules, res.Firmware, res.CACerts)
		return res, readCpio(t, res.Initramfs)
	}

	vm, vmFiles := build(Config{Profile: ProfileVM}) // lists tpm_tis, built into Debian's kernel: not an error
	assert.Less(t, vm.InitBytes, int64(60e6), "vm initramfs under 60 MB compressed")
	assert.Zero(t, vm.Firmware)
	assert.Empty(t, vm.MissingFirmware, "no vm driver asks for firmware")
	assert.Contains(t, vmFiles, caBundlePath)
	assert.False(t, hasModule(vmFiles, "mpt3sas"))

	// The rescue login: dropbear with its libraries (libcrypt verifies the shadow hash), busybox as /bin/sh; what
	// it costs is measured against a build without it (--no-rescue).
	for _, f := range []string{"usr/sbin/dropbear", "bin/busybox", "etc/shells"} {
		assert.Contains(t, vmFiles, f)
	}
	assert.True(t, hasPrefixIn(keys(vmFiles), "lib/x86_64-linux-gnu/libcrypt.so"), "dropbear's libcrypt")
	assert.Equal(t, "/bin/busybox", string(vmFiles["bin/sh"].Data))
	assert.Equal(t, uint32(0o120777), vmFiles["bin/sh"].Mode, "/bin/sh is a symlink")
	bare, bareFiles := build(Config{Profile: ProfileVM, NoRescue: true})
	assert.NotContains(t, bareFiles, "usr/sbin/dropbear")
	assert.NotContains(t, bareFiles, "bin/sh")
	t.Logf("rescue login costs %.2f MB compressed, %.2f MB uncompressed", float64(vm.InitBytes-bare.InitBytes)/1e6,
		float64(vm.UncompressedInitramfs-bare.UncompressedInitramfs)/1e6)
	assert.Less(t, vm.InitBytes-bare.InitBytes, int64(3e6), "the rescue login adds under 3 MB compressed")

	server, files := build(Config{CACerts: []string{caFile}, FirmwareDebs: []string{fwDeb}, Modules: []string{"bnx2x"}})
	assert.Equal(t, ProfileServer, server.Profile, "server is the default")
	assert.Less(t, server.InitBytes, int64(120e6), "server initramfs under 120 MB compressed")
	assert.Greater(t, server.Modules, vm.Modules)
	for _, m := range []string{"igb", "ixgbe", "i40e", "ice", "bnxt_en", "mlx5_core", "tg3", "e1000e", "be2net", "qede", "megaraid_sas",
		"mpt3sas", "smartpqi", "hpsa", "nvme", "ahci", "aacraid", "usb_storage", "uas", "xhci_pci", "xhci_hcd", "ehci_pci", "bnx2x",
		"mlxfw", "qed", "usbcore"} { // the last three come in as dependencies
		assert.True(t, hasModule(files, m), "module %s in the server ramdisk", m)
	}
	assert.Contains(t, string(files["etc/ferric-modules"].Data), "/mpt3sas.ko\n")
	assert.Equal(t, "tg3 firmware", string(files["lib/firmware/tigon/tg3.bin"].Data))
	assert.Equal(t, 1, server.Firmware)
	assert.Contains(t, server.MissingFirmware, "intel/ice/ddp/ice.pkg", "missing firmware is reported, not fatal")
	assert.True(t, hasPrefixIn(server.MissingFirmware, "bnx2x/"), "--module bnx2x adds its firmware requests")

	bundle := files[caBundlePath].Data
	assert.True(t, bytes.HasSuffix(bundle, ca), "the operator CA ends the bundle")
	assert.Greater(t, countCerts(bundle), 100, "Debian's bundle is there too")
	assert.Equal(t, vm.CACerts+1, server.CACerts)
	link := files[caBundleAlias]
	assert.Equal(t, uint32(0o120777), link.Mode, "ca-bundle.crt is a symlink")
	assert.Equal(t, "/"+caBundlePath, string(link.Data))

	_, err := Build(ctx, Config{KernelDeb: deb, Agent: agent, Init: initBin, Out: t.TempDir(), Profile: ProfileVM,
		Modules: []string{"mpt3sas", "no_such_driver"}}, log)
	assert.ErrorContains(t, err, `module "no_such_driver" is not in kernel`)
}

// hasModule says whether a module file of that name is in the archive.
func hasModule(files map[string]CpioEntry, name string) bool {
	for p := range files {
		if strings.HasPrefix(p, "lib/modules/") && normalize(filepath.Base(p)) == name {
			return true
		}
	}
	return false
}

func keys(files map[string]CpioEntry) []string {
	out := make([]string, 0, len(files))
	for k := range files {
		out = append(out, k)
	}
	return out
}

func hasPrefixIn(list []string, prefix string) bool {
	for _, s := range list {
		if strings.HasPrefix(s, prefix) {
			return true
		}
	}
	return false
}
