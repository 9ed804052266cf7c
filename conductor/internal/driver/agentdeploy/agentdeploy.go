// Package agentdeploy is the machinery every agent-driven deploy interface shares (bootc, direct): booting the
// agent ramdisk and stopping it, the agent client built from its heartbeat, following an agent command while
// copying its progress and log into the node, the in-band steps run through execute_*_step, and the
// conductor-side steps of Ironic's AgentDeploy flow (set_boot_to_disk, prepare_instance_boot, tear_down_agent,
// boot_instance). An interface embeds *Agent and adds its own steps (the bootc install, the image write).
package agentdeploy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/ferric-metal/ferric/conductor/internal/agentclient"
	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/store"
	"github.com/ferric-metal/ferric/conductor/internal/transport"
	"github.com/ferric-metal/ferric/deploy"
)

// Keys in driver_internal_info shared by the agent-driven interfaces. Their values are kept as the bootc
// interface first stored them, so a node in the middle of a deploy keeps its state across an upgrade.
const (
	KeyRun      = "deploy_run"
	KeyOffset   = "bootc_log_offset"
	KeyProgress = "deploy_progress"
	// KeyStepCmd is the agent command of the running in-band step; KeyStepAgent marks an agent booted for the
	// steps of a clean or service (FinishSteps stops it).
	KeyStepCmd   = "agent_step_command_id"
	KeyStepAgent = "agent_booted_for_steps"
)

// Agent drives the agent ramdisk of one interface. The zero value is not usable: build it with New.
type Agent struct {
	// Timeout bounds each call to the agent.
	Timeout time.Duration
	// NoCleaning skips the agent-driven disk metadata wipe during automated cleaning.
	NoCleaning bool
	// Transports are the conductor's shared HTTP transports: the client built for each one-second poll reuses
	// the agent's keep-alive connection. nil: a transport per client (tests).
	Transports *transport.Cache
}

// New returns an Agent; timeout 0 means 30 s, transports nil a transport per agent client.
func New(timeout time.Duration, noCleaning bool, transports *transport.Cache) *Agent {
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	return &Agent{Timeout: timeout, NoCleaning: noCleaning, Transports: transports}
}

// BootAgent prepares the agent boot and power-cycles the node into it. Powering off before the media are
// prepared makes sure the machine boots them afresh rather than carrying on with whatever ran; the old
// agent's URL and token are forgotten so only the new agent can call back.
func (a *Agent) BootAgent(ctx context.Context, t *driver.Task) error {
	n := t.Node
	if err := t.Power.SetPowerState(ctx, n, driver.PowerOff, 0); err != nil {
		return fmt.Errorf("power off before booting the agent: %w", err)
	}
	WipeAgent(n)
	if err := t.Boot.PrepareRamdisk(ctx, t); err != nil {
		return fmt.Errorf("prepare the agent boot: %w", err)
	}
	if err := t.Power.SetPowerState(ctx, n, driver.PowerOn, 0); err != nil {
		return fmt.Errorf("power on into the agent: %w", err)
	}
	t.Logf(ctx, "agent booting; waiting for its call-back")
	return t.Save(ctx)
}

// WipeAgent forgets a previous agent's URL and certificate, and its token's issue (a pre-generated token stays).
func WipeAgent(n *store.Node) {
	delete(n.DriverInternalInfo, "agent_url")
	delete(n.DriverInternalInfo, "agent_verify_ca")
	delete(n.DriverInternalInfo, driver.KeyTokenIssuedAt)
	delete(n.DriverInternalInfo, driver.KeyTokenReboots)
	if pre, _ := n.DriverInternalInfo["agent_secret_token_pregenerated"].(bool); !pre {
		delete(n.DriverInternalInfo, "agent_secret_token")
	}
}

// SetProgress records p under deploy_progress, stamped with the time, for the API and the deploy log.
func SetProgress(n *store.Node, p deploy.Progress) {
	m := map[string]any{"phase": p.Phase, "percent": p.Percent, "bytes_done": p.BytesDone, "bytes_total": p.BytesTotal,
		"updated_at": time.Now().UTC().Format(time.RFC3339)}
	n.DriverInternalInfo[KeyProgress] = m
}

// Client builds an agent client from what the agent's heartbeat recorded: its URL, the token it was given and
// the certificate its first heartbeat pinned. No URL or token means the agent has not called back yet.
func (a *Agent) Client(n *store.Node) (*agentclient.Client, error) {
	u, _ := n.DriverInternalInfo["agent_url"].(string)
	tok, _ := n.DriverInternalInfo["agent_secret_token"].(string)
	ca, _ := n.DriverInternalInfo["agent_verify_ca"].(string)
	if u == "" || tok == "" {
		return nil, errors.New("the agent has not called back yet")
	}
	return agentclient.New(agentclient.Config{URL: u, Token: tok, VerifyCA: ca, Timeout: a.Timeout, Transports: a.Transports})
}

// Follow copies a running agent command's progress and reads its status: Wait while it runs (or the agent did
// not answer this time), Done with the finished result. It does not save the node: it runs inside the engine's
// continuation of a waiting node (a poll or a heartbeat), which saves the node once afterwards whatever the
// outcome; a save here too cost every poll of every installing node a second write transaction.
func (a *Agent) Follow(ctx context.Context, t *driver.Task, c *agentclient.Client, id string) (*agentclient.Result, driver.Outcome, error) {
	if err := a.CopyProgress(ctx, t, c); errors.Is(err, agentclient.ErrIdentity) {
		return nil, driver.Done, IdentityError(t.Node, err)
	} else if errors.Is(err, agentclient.ErrUnreachable) {
		// One silent call is enough: asking again would only hold the node's lock for another deadline.
		t.Log.WithError(err).Debug("the agent did not answer; retrying on the next poll")
		return nil, driver.Wait, nil
	}
	r, err := c.Command(ctx, id)
	if errors.Is(err, agentclient.ErrIdentity) {
		return nil, driver.Done, IdentityError(t.Node, err)
	}
	if err != nil {
		t.Log.WithError(err).Debug("could not read the agent's command; retrying on the next poll")
		return nil, driver.Wait, nil
	}
	if r.CommandStatus == deploy.StatusRunning {
		return r, driver.Wait, nil
	}
	return r, driver.Done, nil
}

// IdentityError is the last_error of a node whose agent stopped presenting the certificate its first heartbeat
// pinned: the operation stops at once rather than waiting for the call-back timeout.
func IdentityError(n *store.Node, err error) error {
	u, _ := n.DriverInternalInfo["agent_url"].(string)
	return fmt.Errorf("the agent at %s no longer presents the TLS certificate pinned by its first heartbeat (%v): "+
		"another host may hold the agent's address, or the agent restarted with a new key; stopped before sending it anything", u, err)
}

// CopyProgress copies the agent's progress and new log lines into the node and its deploy log. Its errors only
// matter when the agent did not answer at all (an agent without the progress extension still installs).
func (a *Agent) CopyProgress(ctx context.Context, t *driver.Task, c *agentclient.Client) error {
	n := t.Node
	since := 0
	if f, ok := n.DriverInternalInfo[KeyOffset].(float64); ok {
		since = int(f)
	} else if i, ok := n.DriverInternalInfo[KeyOffset].(int); ok {
		since = i
	}
	r, err := c.Execute(ctx, deploy.CmdProgress, map[string]any{"since": since}, true)
	if err != nil {
		return err
	}
	var p deploy.Progress
	if err := json.Unmarshal(r.CommandResult, &p); err != nil {
		return fmt.Errorf("the agent's progress is unreadable: %w", err)
	}
	if len(p.Lines) > 0 && t.DeployLog != nil {
		t.DeployLog(ctx, "agent", capLines(p.Lines)...)
	}
	// The offset advances past dropped lines too: the agent must not send them again.
	n.DriverInternalInfo[KeyOffset] = p.LineOffset
	p.Phase = truncateLine(p.Phase, maxPhaseBytes)
	SetProgress(n, p)
	return nil
}

// Bounds on what one progress poll copies from the agent into the conductor's database: an agent that logs a
// lot (or lies) costs at most this much per poll, whatever it sends.
const (
	maxPollLines  = 1000      // lines per poll, the "dropped" note included
	maxPollBytes  = 256 << 10 // bytes of lines per poll
	maxLineBytes  = 4 << 10   // bytes per line; longer lines are cut
	maxPhaseBytes = 256       // bytes of the phase name kept in deploy_progress
)

// capLines cuts every line to maxLineBytes and keeps the first lines within maxPollLines and maxPollBytes; when
// lines are dropped, the last kept line says how many.
func capLines(lines []string) []string {
	out := make([]string, 0, min(len(lines), maxPollLines))
	total := 0
	for i, l := range lines {
		l = truncateLine(l, maxLineBytes)
		if (len(out) == maxPollLines-1 && i < len(lines)-1) || total+len(l) > maxPollBytes {
			dropped := len(lines) - i
			return append(out, fmt.Sprintf("%d agent log lines dropped: the agent sent more than %d lines or %d KiB "+
				"in one poll (its own log on the node has them all)", dropped, maxPollLines, maxPollBytes>>10))
		}
		out = append(out, l)
		total += len(l)
	}
	return out
}

// truncateLine cuts s to at most max bytes on a UTF-8 boundary, marking the cut.
func truncateLine(s string, max int) string {
	const mark = " [truncated]"
	if len(s) <= max {
		return s
	}
	i := max - len(mark)
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + mark
}

// StopAgent asks the agent to power off, then makes sure through the power interface, and cleans up its boot.
func (a *Agent) StopAgent(ctx context.Context, t *driver.Task, c *agentclient.Client) {
	n := t.Node
	// The agent's own power off syncs its disks first; the out-of-band power off below is the guarantee.
	if c != nil {
		if _, err := c.Execute(ctx, deploy.CmdPowerOff, nil, false); err != nil {
			t.Log.WithError(err).Debug("agent power off request failed; powering off out of band")
		}
	}
	if err := t.Power.SetPowerState(ctx, n, driver.PowerOff, 0); err != nil {
		t.Log.WithError(err).Warn("power off after the agent failed")
	}
	if err := t.Boot.CleanUpRamdisk(ctx, t); err != nil {
		t.Log.WithError(err).Warn("could not clean up the agent boot")
	}
	WipeAgent(n)
}
