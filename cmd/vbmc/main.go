// Command ferric-vbmc is a Redfish virtual BMC for QEMU/OVMF VMs (development and CI).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/sirupsen/logrus"

	"github.com/ferric-metal/ferric/test/vbmc"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "ferric-vbmc:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("ferric-vbmc", flag.ContinueOnError)
	cfgPath := fs.String("config", "", "YAML file: listen, username, password, state_dir, vms [{name, uuid, memory_mib, disk_gib, mac, tpm, agent_port}]")
	listen := fs.String("listen", "", "address (overrides the file; default 127.0.0.1:8000)")
	stateDir := fs.String("state-dir", "", "state directory (overrides the file)")
	user := fs.String("username", "", "HTTP Basic user (overrides the file)")
	pass := fs.String("password", "", "HTTP Basic password (overrides the file; or FERRIC_VBMC_PASSWORD)")
	accel := fs.String("accel", "tcg", "QEMU accelerator: tcg, or kvm where it works")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cfgPath == "" {
		return fmt.Errorf("--config vms.yaml is required")
	}
	cfg, err := vbmc.LoadConfig(*cfgPath)
	if err != nil {
		return err
	}
	for dst, v := range map[*string]string{&cfg.Listen: *listen, &cfg.StateDir: *stateDir, &cfg.Username: *user, &cfg.Password: *pass} {
		if v != "" {
			*dst = v
		}
	}
	if p := os.Getenv("FERRIC_VBMC_PASSWORD"); p != "" && *pass == "" {
		cfg.Password = p
	}
	cfg.Runner = &vbmc.QEMU{Accel: *accel}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	return vbmc.Run(ctx, cfg, logrus.NewEntry(logrus.New()))
}
