package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/sirupsen/logrus"

	"github.com/ferric-metal/ferric/images/ramdisk"
)

// runRamdisk handles `ferric ramdisk build`.
func runRamdisk(_ context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "build" {
		return errors.New("ramdisk: use ferric ramdisk build --kernel-deb DEB --agent BIN --init BIN -o DIR")
	}
	fs := flag.NewFlagSet("ramdisk build", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg ramdisk.Config
	fs.StringVar(&cfg.KernelDeb, "kernel-deb", "", "Debian kernel package (apt-get download linux-image-6.1.0-NN-amd64)")
	fs.StringVar(&cfg.Agent, "agent", "bin/ferric-agent", "static ferric-agent binary")
	fs.StringVar(&cfg.Init, "init", "bin/ferric-init", "static init binary (images/ramdisk/init)")
	fs.StringVar(&cfg.Out, "o", "out/ramdisk", "output directory")
	if _, err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if cfg.KernelDeb == "" {
		return errors.New("ramdisk build: --kernel-deb is required")
	}
	log := logrus.New()
	log.SetOutput(stderr)
	res, err := ramdisk.Build(cfg, logrus.NewEntry(log))
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s  %d MiB\n%s  %d MiB (%d MiB uncompressed, %d modules)\n", res.Kernel, res.KernelBytes>>20,
		res.Initramfs, res.InitBytes>>20, res.UncompressedInitramfs>>20, res.Modules)
	return nil
}
