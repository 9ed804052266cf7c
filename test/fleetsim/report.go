package fleetsim

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"
)

// Report is what one scenario run measured.
type Report struct {
	Conductors, Nodes, Deploys int
	// ClusterFlags says whether the conductors were given --conductor-dead-after (the binary has the cluster).
	ClusterFlags bool
	DeadAfter    time.Duration
	Timing       Timing

	// Create is the time to create every node and its port; Enroll the time from then until all are available.
	Create, Enroll time.Duration
	// BMC is Scenario.BMC: the nodes' power went through the fleet's Redfish BMC.
	BMC bool
	// Boot is the time from powering every agent on until each had looked its node up (a token issued).
	Boot, BootSpread time.Duration
	// SteadyBeats are the heartbeats of every agent in the steady-state window; DeployBeats those during deploys.
	SteadyBeats, DeployBeats Summary
	// Deploy is request -> active of the deploys that ended active.
	Deploy Summary
	// APIGet is GET /v1/nodes/{uuid} latency during the deploys.
	APIGet Summary
	// DeployRequest is the latency of the accepted deploy requests (PUT .../states/provision, retries included):
	// with several conductors, most are handed to the node's conductor and answered once it accepted.
	DeployRequest Summary
	RSS           []ProcRSS

	// Killed is the host killed with SIGKILL ("" when none), KilledAt its time after the first deploy request.
	Killed   string
	KilledAt time.Duration
	// Orphans are the deploying nodes the killed conductor held at the kill; Takeover the time until each was
	// driven again (state or provision_updated_at moved, reservation off the dead host), NotDriven those never.
	Orphans   int
	Takeover  Summary
	NotDriven []string
	// OrphanStates counts the orphans by their provision state at the kill (deploying: the killed conductor was
	// running one of their deploy steps); OrphansActive counts those whose deploy ended active all the same.
	OrphanStates  map[string]int
	OrphansActive int

	Active        int
	Failed        map[string]string // uuid -> last_error of the deploys that ended in deploy failed
	DeployedTwice map[string]int    // uuid -> install commands, for the nodes that got more than one
	Stuck         map[string]string // uuid -> provision state, for the deploys that ended neither active nor failed
	// Refused are the deploy requests no conductor accepted within 2 minutes (uuid -> the last answer).
	Refused map[string]string
}

// ProcRSS is one conductor's resident memory.
type ProcRSS struct {
	Host        string
	Peak, Final int64
	Killed      bool
}

// CreateRate is nodes (with their port) created per second.
func (r *Report) CreateRate() float64 {
	if r.Create <= 0 {
		return 0
	}
	return float64(r.Nodes) / r.Create.Seconds()
}

// Markdown renders the report as the README's table.
func (r *Report) Markdown() string {
	var b strings.Builder
	cluster := "no (binary without --conductor-dead-after)"
	if r.ClusterFlags {
		cluster = "yes, --conductor-dead-after " + r.DeadAfter.String()
	}
	fmt.Fprintf(&b, "| measure | value |\n|---|---|\n")
	row := func(k, format string, args ...any) { fmt.Fprintf(&b, "| %s | %s |\n", k, fmt.Sprintf(format, args...)) }
	row("conductors / nodes / concurrent deploys", "%d / %d / %d", r.Conductors, r.Nodes, r.Deploys)
	row("cluster membership", "%s", cluster)
	power := "fake (the harness boots each agent around its deploy request)"
	if r.BMC {
		power = fmt.Sprintf("redfish, %d Systems on one simulated BMC (an agent boots when a conductor powers its node on)", r.Nodes)
	}
	row("power", "%s", power)
	row("simulated timing", "boot %s, install %s, heartbeat %s", r.Timing.BootDelay, r.Timing.Install, beatTiming(r.Timing))
	row("create (node + port)", "%s, %.0f nodes/s", round(r.Create), r.CreateRate())
	row("enroll -> available (manage, provide)", "%s", round(r.Enroll))
	row("first boot of every agent (powered on over "+r.BootSpread.String()+") -> every lookup answered", "%s", round(r.Boot))
	row("heartbeat, steady state", "%s", r.SteadyBeats)
	row("heartbeat, during deploys", "%s", r.DeployBeats)
	row("deploy request answered (PUT states/provision)", "%s", r.DeployRequest)
	row("deploy request -> active", "%s", r.Deploy)
	row("API GET /v1/nodes/{uuid} during deploys", "%s", r.APIGet)
	for _, p := range r.RSS {
		note := ""
		if p.Killed {
			note = " (killed; final = at the kill)"
		}
		row("RSS "+p.Host, "peak %d MiB, final %d MiB%s", p.Peak>>20, p.Final>>20, note)
	}
	if r.Killed != "" {
		row("kill -9", "%s at %s into the deploys; it held %d deploying nodes", r.Killed, round(r.KilledAt), r.Orphans)
		row("take-over (kill -> node driven again)", "%s; never driven: %d", r.Takeover, len(r.NotDriven))
		row("killed conductor's nodes: state at the kill -> ended active", "%s -> %d of %d", stateCounts(r.OrphanStates),
			r.OrphansActive, r.Orphans)
	}
	row("deploys active / deploy failed / stuck / request refused", "%d / %d / %d / %d", r.Active, len(r.Failed), len(r.Stuck), len(r.Refused))
	row("nodes deployed twice", "%d", len(r.DeployedTwice))
	for _, c := range r.FailureCauses() {
		row("deploy failed because", "%d x %s", c.Count, c.Error)
	}
	return b.String()
}

// Cause is one last_error of failed deploys, with node UUIDs in it replaced by "<node>", and how many had it.
type Cause struct {
	Error string
	Count int
}

// uuidPattern matches a UUID in a last_error, so that one cause of many nodes groups as one line.
var uuidPattern = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)

// FailureCauses groups the failed deploys' last_error (node UUIDs masked), most frequent first: a benchmark
// report says why deploys failed, not only how many.
func (r *Report) FailureCauses() []Cause {
	counts := map[string]int{}
	for _, e := range r.Failed {
		counts[uuidPattern.ReplaceAllString(e, "<node>")]++
	}
	out := make([]Cause, 0, len(counts))
	for e, n := range counts {
		out = append(out, Cause{Error: e, Count: n})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Error < out[j].Error
	})
	return out
}

// String renders a latency summary for the table.
func (s Summary) String() string {
	if s.Count == 0 {
		return fmt.Sprintf("no samples (%d errors)", s.Errors)
	}
	return fmt.Sprintf("p50 %s, p99 %s, max %s (%d samples, %d errors)", round(s.P50), round(s.P99), round(s.Max), s.Count, s.Errors)
}

// round shortens a duration for the table: ms below 10 s, 0.1 s above.
func round(d time.Duration) time.Duration {
	if d < 10*time.Second {
		return d.Round(100 * time.Microsecond)
	}
	return d.Round(100 * time.Millisecond)
}

func beatTiming(t Timing) string {
	if t.Heartbeat > 0 {
		return "every " + t.Heartbeat.String() + " ±20 %"
	}
	return "IPA's (30-60 % of --heartbeat-timeout)"
}

// Problems lists what the run got wrong, one line each, sorted (empty: nothing).
func (r *Report) Problems() []string {
	var out []string
	for u, n := range r.DeployedTwice {
		out = append(out, fmt.Sprintf("node %s received %d install commands", u, n))
	}
	for u, st := range r.Stuck {
		out = append(out, fmt.Sprintf("node %s ended in %q, neither active nor deploy failed", u, st))
	}
	for u, e := range r.Failed {
		if e == "" {
			out = append(out, fmt.Sprintf("node %s failed without a last_error", u))
		}
	}
	for u, e := range r.Refused {
		out = append(out, fmt.Sprintf("node %s: the deploy request was refused for 2 minutes: %s", u, e))
	}
	for _, u := range r.NotDriven {
		out = append(out, fmt.Sprintf("node %s of the killed conductor was never driven again", u))
	}
	sort.Strings(out)
	return out
}

// stateCounts renders counts by state, most first ("46 deploying, 39 wait call-back").
func stateCounts(m map[string]int) string {
	states := make([]string, 0, len(m))
	for st := range m {
		states = append(states, st)
	}
	sort.Slice(states, func(i, j int) bool {
		if m[states[i]] != m[states[j]] {
			return m[states[i]] > m[states[j]]
		}
		return states[i] < states[j]
	})
	parts := make([]string, len(states))
	for i, st := range states {
		parts[i] = fmt.Sprintf("%d %s", m[st], st)
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}
