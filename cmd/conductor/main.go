// Command ferric-conductor serves Ferric's Ironic-compatible bare-metal API and runs the conductor engine.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/ferric-metal/ferric/conductor"
)

// main is the only place that exits: run returns its errors, so its deferred signal clean-up runs first.
func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "ferric-conductor:", err)
		os.Exit(1)
	}
}

// defaultStateDir is /var/lib/ferric for root, else $XDG_STATE_HOME/ferric or ~/.local/state/ferric.
func defaultStateDir() string {
	if os.Geteuid() == 0 {
		return "/var/lib/ferric"
	}
	if x := os.Getenv("XDG_STATE_HOME"); x != "" {
		return filepath.Join(x, "ferric")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "ferric")
	}
	return filepath.Join(home, ".local", "state", "ferric")
}

// listFlag collects repeated (or comma-separated) values.
type listFlag struct{ dst *[]string }

// String implements flag.Value: the values joined with commas, as they would be passed back.
func (l *listFlag) String() string {
	if l.dst == nil {
		return ""
	}
	return strings.Join(*l.dst, ",")
}

// Set implements flag.Value: every occurrence appends, so repeating the flag and listing values
// with commas are equivalent (as an oslo.config ListOpt/MultiStrOpt would accept either).
func (l *listFlag) Set(v string) error {
	*l.dst = append(*l.dst, strings.Split(v, ",")...)
	return nil
}

// run parses args (flags.go) and runs the conductor until SIGTERM or SIGINT; SIGHUP re-reads the TLS files
// (certificate renewal without a restart).
func run(args []string) error {
	cfg, log, err := parse(args)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	reload := make(chan struct{}, 1)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				select {
				case reload <- struct{}{}:
				default: // a reload is already pending
				}
			}
		}
	}()
	cfg.Reload = reload
	return conductor.Run(ctx, cfg, log)
}
