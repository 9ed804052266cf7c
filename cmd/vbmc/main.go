// Command ferric-vbmc is a Redfish virtual BMC for QEMU/OVMF VMs (development and CI).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/sirupsen/logrus"

	"github.com/ferric-metal/ferric/test/vbmc"
)

// passwordEnv carries the HTTP Basic password; it wins over the config file's password and password_file.
const passwordEnv = "FERRIC_VBMC_PASSWORD"

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "ferric-vbmc:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	cfg, err := config(args, os.Getenv)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	return vbmc.Run(ctx, cfg, logrus.NewEntry(logrus.New()))
}

// config builds the BMC's configuration from flags, the YAML file and the environment (getenv). The password
// is never taken from argv, where any local user can read it (ps, /proc/PID/cmdline).
func config(args []string, getenv func(string) string) (vbmc.Config, error) {
	fs := flag.NewFlagSet("ferric-vbmc", flag.ContinueOnError)
	cfgPath := fs.String("config", "", "YAML file: listen, username, password_file (or password), state_dir, max_media_bytes, media_timeout, session_timeout (default 30m), graceful_restart_timeout (default 60s), vms [{name, uuid, memory_mib, cpus, disk_gib, mac, tpm, agent_port, ipmi_port}]")
	listen := fs.String("listen", "", "address (overrides the file; default 127.0.0.1:8000)")
	stateDir := fs.String("state-dir", "", "state directory (overrides the file)")
	user := fs.String("username", "", "HTTP Basic user (overrides the file)")
	pass := fs.String("password", "", "refused: a password in argv is visible to every local user; use password_file in the config or "+passwordEnv)
	accel := fs.String("accel", "tcg", "QEMU accelerator: tcg, or kvm where it works")
	if err := fs.Parse(args); err != nil {
		return vbmc.Config{}, err
	}
	if *pass != "" {
		return vbmc.Config{}, errors.New("--password is refused (argv is visible to every local user): put the password in a file named by password_file in the config, or in " + passwordEnv)
	}
	if *cfgPath == "" {
		return vbmc.Config{}, errors.New("--config vms.yaml is required")
	}
	cfg, err := vbmc.LoadConfig(*cfgPath)
	if err != nil {
		return cfg, err
	}
	for dst, v := range map[*string]string{&cfg.Listen: *listen, &cfg.StateDir: *stateDir, &cfg.Username: *user} {
		if v != "" {
			*dst = v
		}
	}
	if p := getenv(passwordEnv); p != "" {
		cfg.Password, cfg.PasswordFile = p, ""
	}
	cfg.Runner = &vbmc.QEMU{Accel: *accel}
	return cfg, nil
}
