package driver

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ferric-metal/ferric/conductor/internal/agentclient"
	"github.com/ferric-metal/ferric/conductor/internal/store"
	"github.com/ferric-metal/ferric/conductor/internal/transport"
	"github.com/ferric-metal/ferric/deploy"
)

// RescueAgent is the name of Ironic's agent rescue interface.
const RescueAgent = "agent"

// KeyHashedRescuePassword is the instance_info key of the rescue password's crypt(3) hash (Ironic's name). The
// conductor never keeps the clear password: the rescue verb hashes it before anything is stored.
const KeyHashedRescuePassword = "hashed_rescue_password"

// EnableAgentRescue offers the agent rescue interface on hardware type h, after the interfaces it has: the default
// stays what it was (Ironic's enabled_rescue_interfaces defaults to no-rescue, so no hardware type rescues through
// the agent unless a node asks for rescue_interface=agent).
func EnableAgentRescue(h *HardwareType) *HardwareType {
	h.Enabled["rescue"] = append(h.Enabled["rescue"], RescueAgent)
	return h
}

// RemoveRescuePassword deletes the rescue password (hash and, from nodes stored by older conductors, clear text)
// from the node's instance_info: when the rescue environment is set up, when rescue fails, and at unrescue.
func RemoveRescuePassword(n *store.Node) {
	delete(n.InstanceInfo, KeyHashedRescuePassword)
	delete(n.InstanceInfo, "rescue_password")
}

// AgentRescue is Ironic's agent rescue interface: rescue boots the agent ramdisk (through the node's boot
// interface, as for a deploy), and once the agent calls back, rescue.finalize_rescue hands it the password hash;
// the agent sets it for its `rescue` user, starts a login service and stops serving its command API. Unrescue
// boots the instance again.
type AgentRescue struct {
	// Timeout bounds each call to the agent (0: agentclient's default, Ironic's command_timeout).
	Timeout time.Duration
	// Transports are the conductor's shared HTTP transports to agents (nil: a transport per call).
	Transports *transport.Cache
}

// Validate checks what the node itself must hold: the hashed rescue password the verb stored.
func (AgentRescue) Validate(_ context.Context, n *store.Node) error {
	if h, _ := n.InstanceInfo[KeyHashedRescuePassword].(string); h == "" {
		return fmt.Errorf("Node %s is missing 'instance_info/rescue_password'. It is required for rescuing node.: %w",
			n.UUID, ErrInvalid)
	}
	return nil
}

// ValidateTask checks the node and its boot interface, which must be able to boot the agent ramdisk (Ironic's
// AgentRescue.validate calls boot.validate too).
func (r AgentRescue) ValidateTask(ctx context.Context, t *Task) error {
	if err := t.Boot.Validate(ctx, t.Node); err != nil {
		return fmt.Errorf("the boot interface cannot boot the rescue agent: %w", err)
	}
	return r.Validate(ctx, t.Node)
}

// Rescue powers the node off, boots the agent ramdisk and powers it on; the node then waits ("rescue wait") for
// the agent's call-back, which Continue answers.
func (r AgentRescue) Rescue(ctx context.Context, t *Task) (Outcome, error) {
	n := t.Node
	if err := r.ValidateTask(ctx, t); err != nil {
		return Done, err
	}
	if err := t.Power.SetPowerState(ctx, n, PowerOff, 0); err != nil {
		return Done, fmt.Errorf("power off before booting the rescue agent: %w", err)
	}
	if err := t.Boot.CleanUpInstance(ctx, t); err != nil {
		return Done, fmt.Errorf("clean up the instance boot: %w", err)
	}
	forgetAgentKeys(n)
	if err := t.Boot.PrepareRamdisk(ctx, t); err != nil {
		return Done, fmt.Errorf("prepare the rescue agent boot: %w", err)
	}
	if err := t.Power.SetPowerState(ctx, n, PowerOn, 0); err != nil {
		return Done, fmt.Errorf("power on into the rescue agent: %w", err)
	}
	t.Logf(ctx, "rescue agent booting; waiting for its call-back")
	return Wait, t.Save(ctx)
}

// Continue finishes a rescue once the agent called back: finalize_rescue with the hash (as Ironic sends it,
// {"rescue_password": <hash>, "hashed": true}); on success the password hash and every credential of the agent
// are forgotten (the agent stops serving its API; nothing may talk to it as the conductor any more) and the node
// is rescued. Wait means the agent has not called back yet, is busy, or did not answer this time.
func (r AgentRescue) Continue(ctx context.Context, t *Task) (Outcome, error) {
	n := t.Node
	hash, _ := n.InstanceInfo[KeyHashedRescuePassword].(string)
	if hash == "" {
		return Done, errors.New("the rescue password hash is gone from instance_info; request rescue again")
	}
	u, _ := n.DriverInternalInfo["agent_url"].(string)
	tok, _ := n.DriverInternalInfo["agent_secret_token"].(string)
	ca, _ := n.DriverInternalInfo["agent_verify_ca"].(string)
	if u == "" || tok == "" {
		return Wait, nil // no call-back yet
	}
	c, err := agentclient.New(agentclient.Config{URL: u, Token: tok, VerifyCA: ca, Timeout: r.Timeout, Transports: r.Transports})
	if err != nil {
		return Done, fmt.Errorf("reach the rescue agent: %w", err)
	}
	defer c.Close()
	res, err := c.Execute(ctx, deploy.CmdFinalizeRescue, deploy.FinalizeRescueParams{RescuePassword: hash, Hashed: true}, true)
	switch {
	case errors.Is(err, agentclient.ErrBusy), errors.Is(err, agentclient.ErrUnreachable):
		t.Log.WithError(err).Debug("finalize_rescue not accepted yet; retrying on the next heartbeat")
		return Wait, nil
	case err != nil:
		return Done, fmt.Errorf("Agent returned error for command finalize_rescue: %w", err)
	case res.CommandStatus != deploy.StatusSucceeded:
		return Done, fmt.Errorf("Agent returned bad result for command finalize_rescue: %s", res.Failure())
	}
	RemoveRescuePassword(n)
	forgetAgentKeys(n)
	t.Logf(ctx, "rescue environment ready: log in as user \"rescue\" with the rescue password")
	return Done, nil
}

// Unrescue powers the node off, undoes the agent boot, makes the disk the boot device, prepares the instance boot
// and powers the node on; the rescue password is removed whatever happens.
func (r AgentRescue) Unrescue(ctx context.Context, t *Task) (Outcome, error) {
	n := t.Node
	RemoveRescuePassword(n)
	forgetAgentKeys(n)
	if err := t.Power.SetPowerState(ctx, n, PowerOff, 0); err != nil {
		return Done, fmt.Errorf("power off the rescue environment: %w", err)
	}
	if err := t.Boot.CleanUpRamdisk(ctx, t); err != nil {
		return Done, fmt.Errorf("clean up the rescue agent boot: %w", err)
	}
	if err := t.Management.SetBootDevice(ctx, n, BootDisk, true); err != nil {
		return Done, fmt.Errorf("set the boot device to disk: %w", err)
	}
	if err := t.Boot.PrepareInstance(ctx, t); err != nil {
		return Done, fmt.Errorf("prepare the instance boot: %w", err)
	}
	if err := t.Power.SetPowerState(ctx, n, PowerOn, 0); err != nil {
		return Done, fmt.Errorf("power on the instance: %w", err)
	}
	return Done, nil
}

// forgetAgentKeys wipes the agent's URL, certificate and token (pre-generated ones too) from driver_internal_info:
// before a new agent boot (which brings its own token) and once the rescue agent stopped serving its API.
func forgetAgentKeys(n *store.Node) {
	for _, k := range []string{"agent_url", "agent_verify_ca", "agent_version", "agent_status", "agent_secret_token",
		"agent_secret_token_pregenerated"} {
		delete(n.DriverInternalInfo, k)
	}
}
