package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/sirupsen/logrus"

	"github.com/ferric-metal/ferric/images/ramdisk"
)

// runRamdisk handles `ferric ramdisk build`: flags become a ramdisk.Config; the builder checks the profile and
// the --ca-cert files before it reads the kernel package, so a typo fails at once.
func runRamdisk(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "build" {
		return errors.New("ramdisk: use ferric ramdisk build --kernel-deb DEB --agent BIN --init BIN -o DIR " +
			"[--profile server|vm] [--module NAME]... [--ca-cert FILE]... [--firmware-deb DEB]... [--cache DIR]")
	}
	fs := flag.NewFlagSet("ramdisk build", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		cfg                     ramdisk.Config
		modules, cas, firmwares multiFlag
	)
	fs.StringVar(&cfg.KernelDeb, "kernel-deb", "", "Debian kernel package (apt-get download linux-image-6.1.0-NN-amd64)")
	fs.StringVar(&cfg.Agent, "agent", "bin/ferric-agent", "static ferric-agent binary")
	fs.StringVar(&cfg.Init, "init", "bin/ferric-init", "static init binary (images/ramdisk/init)")
	fs.StringVar(&cfg.Out, "o", "out/ramdisk", "output directory")
	fs.StringVar(&cfg.Profile, "profile", ramdisk.ProfileServer, "module set: "+strings.Join(ramdisk.Profiles(), " or ")+
		" (server adds NIC, RAID/HBA and USB drivers of common servers, with their firmware)")
	fs.Var(&modules, "module", "another kernel module to carry, with its dependencies (repeatable; e.g. bnx2x)")
	fs.Var(&cas, "ca-cert", "PEM file of a CA to trust in the ramdisk, added to Debian's bundle (repeatable)")
	fs.BoolVar(&cfg.NoRescue, "no-rescue", false, "leave out the rescue login (dropbear, busybox sh): rescue through the agent is then refused")
	fs.Var(&firmwares, "firmware-deb", "Debian package to take firmware from, besides the profile's (repeatable)")
	// Packages are cached like the kernel package (make kernel-deb): a rebuild downloads nothing.
	fs.StringVar(&cfg.Cache, "cache", "out/cache", "directory firmware and ca-certificates packages are downloaded to "+
		"and reused from (apt-get download); empty: download nothing")
	if _, err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if cfg.KernelDeb == "" {
		return errors.New("ramdisk build: --kernel-deb is required")
	}
	cfg.Modules, cfg.CACerts, cfg.FirmwareDebs = modules, cas, firmwares
	log := logrus.New()
	log.SetOutput(stderr)
	res, err := ramdisk.Build(ctx, cfg, logrus.NewEntry(log))
	if err != nil {
		return fmt.Errorf("ramdisk build: %w", err)
	}
	fmt.Fprintf(stdout, "%s  %d MiB\n%s  %d MiB (%d MiB uncompressed; profile %s: %d modules, %d firmware files, %d CA certificates)\n",
		res.Kernel, res.KernelBytes>>20, res.Initramfs, res.InitBytes>>20, res.UncompressedInitramfs>>20, res.Profile,
		res.Modules, res.Firmware, res.CACerts)
	// Also on stdout (the log has it as a warning): the operator decides whether the hardware needs it.
	if len(res.MissingFirmware) > 0 {
		fmt.Fprintf(stdout, "firmware not included (no package provided it): %s\n", strings.Join(res.MissingFirmware, " "))
	}
	return nil
}
