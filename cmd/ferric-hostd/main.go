// Command ferric-hostd is the day-2 reporter of image-mode hosts deployed by Ferric: it reports `bootc status`
// to the conductor and runs the upgrades, switches and rollbacks the conductor hands out (package hostd). Every
// flag can also be set as FERRIC_HOSTD_<FLAG> (dashes as underscores); the command line wins. The credential is
// never a flag: it is read from --config, which the config drive fills on first start.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/sirupsen/logrus"

	"github.com/ferric-metal/ferric/hostd"
)

// version is set at build time (-ldflags "-X main.version=...").
var version = "dev"

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "ferric-hostd:", err)
		os.Exit(1)
	}
}

// parse turns flags and FERRIC_HOSTD_* variables into a Config and the log level.
func parse(args []string, getenv func(string) (string, bool)) (hostd.Config, string, error) {
	cfg := hostd.Config{Version: version}
	fs := flag.NewFlagSet("ferric-hostd", flag.ContinueOnError)
	fs.StringVar(&cfg.ConfigPath, "config", "/etc/ferric/hostd.json", "reporter configuration (mode 0600); copied from the config drive when absent")
	fs.StringVar(&cfg.ByLabelDir, "by-label-dir", "/dev/disk/by-label", "where the config drive (label config-2) is looked up")
	fs.StringVar(&cfg.StateDir, "state-dir", "/var/lib/ferric-hostd", "keeps the action in flight across the reboot")
	fs.StringVar(&cfg.Bootc, "bootc", "bootc", "the bootc binary")
	reboot := fs.String("reboot-command", "systemctl reboot", "command that reboots into the staged deployment (split on spaces)")
	fs.DurationVar(&cfg.ReportInterval, "report-interval", 0, "longest time between two reports of an unchanged status (default 15m)")
	fs.DurationVar(&cfg.PollInterval, "poll-interval", 0, "poll interval when the conductor names none (default 1m)")
	fs.DurationVar(&cfg.BackoffMax, "backoff-max", 0, "longest wait after failed calls to the conductor (default 5m)")
	fs.DurationVar(&cfg.HTTPTimeout, "http-timeout", 0, "time-out of each call to the conductor (default 30s)")
	fs.DurationVar(&cfg.CommandTimeout, "bootc-timeout", 0, "time-out of bootc upgrade/switch/rollback, which pull the image (default 1h)")
	level := fs.String("log-level", "info", "log level (debug, info, warn, error)")
	var setErr error
	// Environment variables go through fs.Set before Parse, so a flag on the command line overrides its variable.
	fs.VisitAll(func(f *flag.Flag) {
		name := "FERRIC_HOSTD_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := getenv(name); ok && setErr == nil {
			if err := fs.Set(f.Name, v); err != nil {
				setErr = fmt.Errorf("%s: %w", name, err)
			}
		}
	})
	if setErr != nil {
		return cfg, "", setErr
	}
	if err := fs.Parse(args); err != nil {
		return cfg, "", err
	}
	if fs.NArg() > 0 {
		return cfg, "", fmt.Errorf("unexpected argument %q (ferric-hostd takes only flags)", fs.Arg(0))
	}
	// Split on spaces, no shell: the command is run directly, so nothing in it is interpreted.
	cfg.RebootCommand = strings.Fields(*reboot)
	if len(cfg.RebootCommand) == 0 {
		return cfg, "", fmt.Errorf("--reboot-command is empty; the default is %q", "systemctl reboot")
	}
	return cfg, *level, nil
}

func run(args []string) error {
	cfg, level, err := parse(args, os.LookupEnv)
	if err != nil {
		return err
	}
	log := logrus.New()
	lvl, err := logrus.ParseLevel(level)
	if err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	log.SetLevel(lvl)
	// systemd stops the service with SIGTERM (also during the reboot hostd asked for): Run returns nil then.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	return hostd.Run(ctx, cfg, logrus.NewEntry(log).WithField("version", version))
}
