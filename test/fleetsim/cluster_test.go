package fleetsim_test

import (
	"context"
	"database/sql"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/test/fleetsim"
	"github.com/ferric-metal/ferric/test/testenv"
)

// TestConductorProcesses runs the fleet scenario on ferric-conductor processes sharing one PostgreSQL database
// (a fresh schema each): one conductor, then three with one killed by SIGKILL in the middle of the deploys. Every
// deploy must end once: active, or deploy failed with a last_error; no node may receive two install commands; and
// the killed conductor's deploying nodes must be driven again by the others. The three-conductor case needs the
// cluster (--conductor-dead-after): without it nothing takes a dead conductor's nodes over.
func TestConductorProcesses(t *testing.T) {
	dsn := os.Getenv("FERRIC_TEST_POSTGRES")
	if dsn == "" {
		testenv.Missing(t, "FERRIC_TEST_POSTGRES is not set (postgres://user:password@127.0.0.1:5432/db?sslmode=disable)")
	}
	bin := conductorBinary(t)
	flags, err := fleetsim.Flags(bin)
	require.NoError(t, err)
	timing := fleetsim.Timing{BootDelay: time.Second, LookupRetry: 500 * time.Millisecond, Heartbeat: time.Second,
		Install: 8 * time.Second}
	tests := []struct {
		name       string
		conductors int
		nodes      int
		killAt     time.Duration
		powerOn    time.Duration
	}{
		{name: "one conductor", conductors: 1, nodes: 10},
		// The kill lands in the installs: boot 1 s, then 8 s of install.
		{name: "three conductors, one killed", conductors: 3, nodes: 30, killAt: 5 * time.Second},
		// The kill lands in deploy steps the conductor runs: the BMC takes 4 s to power a machine on, so the
		// deploys requested first are still in their core step (booting the agent) when the conductor dies.
		{name: "three conductors, one killed mid-step", conductors: 3, nodes: 30, killAt: 1500 * time.Millisecond,
			powerOn: 4 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.killAt > 0 && !flags["conductor-dead-after"] {
				testenv.Missing(t, "%s has no --conductor-dead-after: the take-over test needs the conductor cluster", bin)
			}
			timing := timing
			timing.PowerOn = tc.powerOn
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			db, drop, err := fleetsim.FreshSchema(ctx, dsn)
			require.NoError(t, err)
			t.Cleanup(drop)
			log := logrus.New()
			log.SetLevel(logrus.WarnLevel)
			// The conductors' logs are kept when the case fails (a TempDir would be gone before anyone reads them).
			dir, err := os.MkdirTemp("", "fleetsim-")
			require.NoError(t, err)
			t.Cleanup(func() {
				if !t.Failed() {
					os.RemoveAll(dir)
				}
			})
			rep, err := fleetsim.Run(ctx, fleetsim.Scenario{Conductors: tc.conductors, Nodes: tc.nodes, Deploys: tc.nodes,
				KillAt: tc.killAt, Timing: timing, Steady: 2 * time.Second, Workers: 8, Timeout: 90 * time.Second, BMC: true,
				Log: logrus.NewEntry(log), Procs: fleetsim.ProcConfig{Binary: bin, DB: db, Dir: dir,
					HeartbeatTimeout: 10 * time.Second, DeadAfter: 10 * time.Second, BeatEvery: 2 * time.Second,
					// A node whose token the killed conductor handed out and never delivered gets its agent booted
					// again once a heartbeat time-out (10 s) passed without the token used; the 30 s call-back
					// time-out bounds anything else inside the test's window instead of 30 min.
					Extra: []string{"--deploy-callback-timeout", "30s", "--log-level", "info"}}})
			if rep != nil {
				t.Logf("report:\n%s", rep.Markdown())
			}
			require.NoError(t, err, "conductor logs in %s", dir)
			for u, e := range rep.Failed {
				t.Logf("deploy failed: node %s: %s", u, e)
			}
			assert.Empty(t, rep.Problems(), "conductor logs in %s", dir)
			assert.Equal(t, tc.nodes, rep.Active+len(rep.Failed), "every deploy ended active or deploy failed")
			if !assert.Empty(t, rep.DeployedTwice) {
				for u := range rep.DeployedTwice {
					logLinesOf(t, dir, u)
				}
			}
			assert.Positive(t, rep.SteadyBeats.Count, "heartbeats measured in the steady state")
			for _, p := range rep.RSS {
				assert.Positive(t, p.Peak, "RSS of %s sampled", p.Host)
			}
			// Requests go round-robin over the conductors, so with three most deploys were handed to the node's
			// conductor through a job row (issue 17), and every one was answered.
			jobs := handOffs(ctx, t, db)
			if tc.conductors > 1 {
				assert.Positive(t, jobs["accepted"], "deploy requests were handed to the conductor that drives the node")
			} else {
				assert.Empty(t, jobs, "one conductor drives every node: nothing to hand off")
			}
			assert.Zero(t, jobs["queued"]+jobs["claimed"], "every handed-off request was answered")
			if tc.killAt > 0 {
				assert.Equal(t, "fleet-c2", rep.Killed)
				assert.Positive(t, rep.Orphans, "the killed conductor held deploying nodes (else the kill proved nothing)")
				assert.Empty(t, rep.NotDriven, "every node of the killed conductor was driven again")
				assert.Equal(t, rep.Orphans, rep.Takeover.Count)
				// Every node of the killed conductor ends active: its deploy steps are carried on by the others
				// (resumed, or followed on the agent), none failed for the kill, as Ironic would fail them.
				assert.Equal(t, rep.Orphans, rep.OrphansActive, "orphans by state at the kill: %v", rep.OrphanStates)
				if tc.powerOn > 0 {
					assert.Positive(t, rep.OrphanStates["deploying"], "the kill caught deploy steps in progress (else it proved no resume)")
				}
			}
		})
	}
}

// handOffs counts the run's node jobs by state. (A job's claimer may be the conductor that queued it: the ring
// moved the node to it after the kill.)
func handOffs(ctx context.Context, t *testing.T, dsn string) map[string]int {
	db, err := sql.Open("pgx", dsn)
	require.NoError(t, err)
	defer db.Close()
	rows, err := db.QueryContext(ctx, `SELECT state, count(*) FROM node_jobs GROUP BY state`)
	require.NoError(t, err)
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var state string
		var k int
		require.NoError(t, rows.Scan(&state, &k))
		out[state] = k
	}
	require.NoError(t, rows.Err())
	t.Logf("handed-off requests by state: %v", out)
	return out
}

// logLinesOf logs the conductors' log lines that name node u (at most 60): CI keeps the test's output, not the
// log files, so a failed run must carry what explains it.
func logLinesOf(t *testing.T, dir, u string) {
	paths, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	var lines []string
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(data), "\n") {
			if strings.Contains(l, u) && len(lines) < 60 {
				lines = append(lines, filepath.Base(p)+": "+l)
			}
		}
	}
	t.Logf("conductor log lines of node %s:\n%s", u, strings.Join(lines, "\n"))
}

// conductorBinary returns FERRIC_TEST_CONDUCTOR_BINARY, or builds ferric-conductor into the test's directory.
func conductorBinary(t *testing.T) string {
	if p := os.Getenv("FERRIC_TEST_CONDUCTOR_BINARY"); p != "" {
		return p
	}
	out := filepath.Join(t.TempDir(), "ferric-conductor")
	cmd := exec.Command("go", "build", "-o", out, "github.com/ferric-metal/ferric/cmd/conductor")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, "go build ./cmd/conductor: %s", b)
	return out
}
