// Command fleetbench runs the many-conductors benchmark: K ferric-conductor processes on one PostgreSQL database,
// N fake-hardware nodes with simulated agents, D concurrent bootc deploys, and optionally one conductor killed
// with SIGKILL in the middle; it prints the figures as a markdown table (test/fleetsim does the work).
//
//	FERRIC_FLEETBENCH_DB=postgres://ferric:ferric@127.0.0.1:5432/fleet?sslmode=disable \
//	  fleetbench --nodes 10000 --deploys 1000 --conductors 3 --kill-at 20s
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/ferric-metal/ferric/test/fleetsim"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "fleetbench:", err)
		os.Exit(1)
	}
}

// run parses the flags, prepares a fresh schema and runs the scenario; the report goes to stdout (or --out) even
// when the run ended early, with the problems listed after it.
func run(args []string) error {
	fs := flag.NewFlagSet("fleetbench", flag.ContinueOnError)
	var (
		s       fleetsim.Scenario
		db      = fs.String("db", "", "PostgreSQL URL (better: FERRIC_FLEETBENCH_DB, which keeps the password out of ps)")
		keep    = fs.Bool("keep-schema", false, "keep the run's schema (fleetsim_<time>) instead of dropping it")
		dir     = fs.String("dir", "", "directory for the conductors' state and logs (default: a new temporary directory, kept)")
		out     = fs.String("out", "", "also write the markdown report to this file")
		verbose = fs.Bool("v", false, "log each phase")
	)
	fs.StringVar(&s.Procs.Binary, "conductor-binary", "bin/ferric-conductor", "ferric-conductor executable (make build)")
	fs.IntVar(&s.Conductors, "conductors", 3, "conductor processes (K)")
	fs.IntVar(&s.Nodes, "nodes", 2000, "nodes, each with a simulated agent (N)")
	fs.IntVar(&s.Deploys, "deploys", 200, "concurrent deploys (D, at most --nodes)")
	fs.DurationVar(&s.KillAt, "kill-at", 15*time.Second, "kill the second conductor with SIGKILL this long after the first deploy request (0: no kill)")
	fs.DurationVar(&s.Procs.DeadAfter, "dead-after", 10*time.Second, "--conductor-dead-after for the conductors (passed when the binary has it)")
	fs.DurationVar(&s.Procs.BeatEvery, "conductor-heartbeat", 2*time.Second, "--conductor-heartbeat-interval (passed when the binary has it)")
	fs.DurationVar(&s.Procs.HeartbeatTimeout, "heartbeat-timeout", 60*time.Second, "--heartbeat-timeout for the conductors (agents heartbeat every 30-60 % of it)")
	fs.DurationVar(&s.Timing.Heartbeat, "agent-heartbeat", 0, "fixed agent heartbeat interval (0: IPA's rule from --heartbeat-timeout)")
	fs.DurationVar(&s.Timing.BootDelay, "boot-delay", 3*time.Second, "power on to the agent's first lookup")
	fs.DurationVar(&s.BootSpread, "boot-spread", 0, "power the agents on over this long at first (0: 10 ms per node)")
	fs.DurationVar(&s.Timing.Install, "install", 20*time.Second, "duration of the simulated bootc install")
	fs.DurationVar(&s.Timing.PowerOn, "power-on", 0, "time the simulated BMC takes to power a machine on (with --bmc)")
	fs.DurationVar(&s.Steady, "steady", 60*time.Second, "heartbeat measurement window once every agent looked its node up (longer than the agents' heartbeat interval)")
	fs.BoolVar(&s.BMC, "bmc", true, "power the nodes through one simulated Redfish BMC, a System per node (false: fake power, the harness boots each agent)")
	fs.IntVar(&s.Workers, "workers", 32, "concurrent API clients for creation and deploy requests")
	fs.DurationVar(&s.Timeout, "timeout", 10*time.Minute, "longest wait for the deploys to end")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *db == "" {
		*db = os.Getenv("FERRIC_FLEETBENCH_DB")
	}
	if *db == "" {
		return errors.New("no database: set FERRIC_FLEETBENCH_DB=postgres://user:password@127.0.0.1:5432/db?sslmode=disable (or --db)")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := logrus.New()
	log.SetLevel(logrus.WarnLevel)
	if *verbose {
		log.SetLevel(logrus.InfoLevel)
	}
	s.Log = logrus.NewEntry(log)
	if s.Procs.Dir = *dir; s.Procs.Dir == "" {
		d, err := os.MkdirTemp("", "fleetbench-")
		if err != nil {
			return err
		}
		s.Procs.Dir = d
	}
	dsn, drop, err := fleetsim.FreshSchema(ctx, *db)
	if err != nil {
		return err
	}
	if !*keep {
		defer drop()
	}
	s.Procs.DB = dsn
	rep, runErr := fleetsim.Run(ctx, s)
	if rep != nil {
		text := rep.Markdown()
		if p := rep.Problems(); len(p) > 0 {
			text += "\nProblems:\n- " + strings.Join(p, "\n- ") + "\n"
		}
		fmt.Print(text)
		if *out != "" {
			if err := os.WriteFile(*out, []byte(text), 0o644); err != nil {
				return err
			}
		}
	}
	fmt.Fprintf(os.Stderr, "conductor logs: %s\n", s.Procs.Dir)
	return runErr
}
