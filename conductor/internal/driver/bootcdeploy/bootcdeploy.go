// Package bootcdeploy owns the conductor's `bootc` deploy interface: validation of bootc_* options at deploy
// time, digest pinning, and the interface's steps: the deploy steps of Ironic's bootc interface (boot the agent,
// drive `standby.execute_bootc_install` on it while copying its progress and log into the node, boot the installed
// disk) and the agent's in-band clean and service steps (erase_devices_metadata, erase_devices), which it boots
// the agent for and runs through clean.execute_clean_step and friends.
package bootcdeploy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/ferric-metal/ferric/conductor/internal/agentclient"
	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/driver/agentdeploy"
	"github.com/ferric-metal/ferric/conductor/internal/steps"
	"github.com/ferric-metal/ferric/conductor/internal/store"
	"github.com/ferric-metal/ferric/conductor/internal/transport"
	"github.com/ferric-metal/ferric/deploy"
	"github.com/ferric-metal/ferric/deploy/bootc"
	"github.com/ferric-metal/ferric/images"
)

// Config tunes the interface.
type Config struct {
	// Registry holds the site's registry settings, shared with the direct interface: registries reached over
	// plain http (--insecure-registry, development and CI), the conductor's address of a registry as nodes see it
	// (--registry-alias), the site's CAs, proxies and mirrors (agents get the same), and the reject scopes of the
	// operator's signature policy (--image-policy), checked before the agent boots.
	agentdeploy.Registry
	// AgentTimeout bounds each call to the agent (default 30 s).
	AgentTimeout time.Duration
	// NoCleaning skips the agent-driven disk metadata wipe during automated cleaning.
	NoCleaning bool
	// Transports are the conductor's shared HTTP transports to agents (nil: a transport per agent client).
	Transports *transport.Cache
	// Reporter configures the image-mode reporter of deployed hosts (reporter.go); zero: none.
	Reporter Reporter
}

// Deploy implements driver.Deploy and the engine's agent hand-off.
type Deploy struct {
	// The shared agent machinery: boot, client, progress, in-band steps, the flow after the install.
	*agentdeploy.Agent
	cfg Config
}

// New returns the bootc deploy interface.
func New(cfg Config) *Deploy {
	if cfg.AgentTimeout == 0 {
		cfg.AgentTimeout = 30 * time.Second
	}
	return &Deploy{Agent: agentdeploy.New(cfg.AgentTimeout, cfg.NoCleaning, cfg.Transports), cfg: cfg}
}

// Keys in driver_internal_info. They live only as long as one deploy (TearDown and the next Deploy delete
// them) except keyInstalled, which records what the instance runs until it is torn down.
const (
	keyRun       = agentdeploy.KeyRun
	keyPinned    = "bootc_image_pinned"
	keyDigest    = "bootc_image_digest"
	keyTag       = "bootc_target_imgref"
	keyCommand   = "bootc_command_id"
	keyOffset    = agentdeploy.KeyOffset
	keyProgress  = agentdeploy.KeyProgress
	keyInstalled = "bootc_installed"
	// keyPlatform is the OCI platform the pinned digest was resolved for (from properties.cpu_arch).
	keyPlatform = "bootc_image_platform"
)

// Validate checks everything that can be checked before a deploy: the image source, the bootc_* options, the
// boot mode.
func (d *Deploy) Validate(_ context.Context, n *store.Node) error {
	src, _ := n.InstanceInfo["image_source"].(string)
	if src == "" {
		return fmt.Errorf("instance_info.image_source is missing: set it to oci://registry/org/image:tag: %w", driver.ErrInvalid)
	}
	if _, err := bootc.ValidateImageSource(src); err != nil {
		return fmt.Errorf("%v: %w", err, driver.ErrInvalid)
	}
	opts, err := bootc.ParseOptions(n.InstanceInfo)
	if err != nil {
		return fmt.Errorf("%v: %w", err, driver.ErrInvalid)
	}
	if opts.InstallHostd && d.cfg.Reporter.Hostd == nil {
		return fmt.Errorf("instance_info.bootc_install_hostd is set, but this conductor serves no ferric-hostd; start "+
			"it with --hostd-binary, or unset the option: %w", driver.ErrInvalid)
	}
	if _, err := agentdeploy.NodePlatform(n); err != nil {
		return fmt.Errorf("%v: %w", err, driver.ErrInvalid)
	}
	// bootc installs an EFI system partition and a UEFI boot entry only; a BIOS node would not boot it.
	if caps, _ := n.Properties["capabilities"].(string); strings.Contains(caps, "boot_mode:bios") {
		return fmt.Errorf("bootc deploys need UEFI; properties.capabilities says boot_mode:bios: %w", driver.ErrInvalid)
	}
	return nil
}

// Deploy pins the image digest and boots the agent; the node then waits for its call-back. It is the core
// deploy step (deploy.deploy). Pinning here, in the conductor, means the agent installs exactly the image the
// operator's tag named when the deploy began, even if the tag moves while the agent boots, and that a missing
// image or a rejected policy fails before any machine is powered. The node is saved before the power cycle,
// so a crash during it leaves the pinned digest recorded.
func (d *Deploy) Deploy(ctx context.Context, t *driver.Task) (driver.Outcome, error) {
	n := t.Node
	dii := n.DriverInternalInfo
	// A rebuild or a retried deploy must not reuse the previous pin, command or progress.
	for _, k := range []string{keyCommand, agentdeploy.KeySending, keyOffset, keyProgress, keyInstalled, keyPinned, keyDigest, keyTag, keyPlatform} {
		delete(dii, k)
	}
	// The step engine started this deploy's log run before its first step; called on its own, Deploy starts one.
	if cur, _ := n.DeployStep["step"].(string); cur != "deploy" || dii[keyRun] == nil {
		dii[keyRun] = time.Now().UTC().Format("20060102T150405Z") + "-" + uuid.NewString()[:8]
	}
	if err := d.Validate(ctx, n); err != nil {
		return driver.Done, err
	}
	src, _ := n.InstanceInfo["image_source"].(string)
	t.Logf(ctx, "deploy %s started: resolving %s", dii[keyRun], src)
	im, err := d.image(ctx, t, src)
	if err != nil {
		return driver.Done, fmt.Errorf("cannot deploy: %w", err)
	}
	// The agent pulls the digest (of the node's platform's manifest) from the registry as the node sees it.
	dii[keyPinned], dii[keyDigest], dii[keyPlatform] = im.Pinned(), im.Digest, im.Platform
	if im.Node.Tag != "" {
		dii[keyTag] = im.Node.String()
	}
	t.Logf(ctx, "pinned %s to %s for %s (%d layers, %d MiB compressed)%s", im.Node, im.Digest, im.Platform, im.Layers,
		im.CompressedBytes>>20, labelNote(im.Labels))
	return d.StartBoot(ctx, t)
}

// Continue advances a node waiting for its agent (called on heartbeats and polls, with the node locked): it
// reports Done once the node's current step (clean_step, deploy_step or service_step) finished on the agent.
func (d *Deploy) Continue(ctx context.Context, t *driver.Task) (driver.Outcome, error) {
	return d.ContinueWith(ctx, t, deploy.StepBootcInstall,
		func(ctx context.Context, t *driver.Task, c *agentclient.Client, _ steps.Step) (driver.Outcome, error) {
			return d.continueInstall(ctx, t, c)
		})
}

// continueInstall starts standby.execute_bootc_install on the agent, or follows it, copying its progress and log;
// Done once the agent installed the pinned digest.
func (d *Deploy) continueInstall(ctx context.Context, t *driver.Task, c *agentclient.Client) (driver.Outcome, error) {
	n := t.Node
	dii := n.DriverInternalInfo
	id, _ := dii[keyCommand].(string)
	if id == "" {
		id, adopted, err := agentdeploy.StartOnce(ctx, t, c, "install", deploy.CmdBootcInstall, func() (any, error) {
			return d.installParams(ctx, t)
		})
		switch {
		case errors.Is(err, agentclient.ErrBusy):
			return driver.Wait, nil
		case errors.Is(err, agentclient.ErrIdentity):
			return driver.Done, agentdeploy.IdentityError(n, err)
		case err != nil:
			return driver.Done, fmt.Errorf("start the install on the agent: %w", err)
		}
		dii[keyCommand] = id
		if adopted {
			// A conductor that died after sending the install, before saving its id, left the agent installing
			// (or done installing) with nothing recorded: follow that install rather than run a second one.
			t.Logf(ctx, "agent at %s already received install command %s from a conductor that stopped before "+
				"recording it; following it", dii["agent_url"], id)
		} else {
			t.Logf(ctx, "agent at %s is installing %s", dii["agent_url"], dii[keyPinned])
		}
		return driver.Wait, t.Save(ctx)
	}
	r, out, err := d.Follow(ctx, t, c, id)
	if out != driver.Done || err != nil {
		return out, err
	}
	delete(dii, keyCommand)
	if r.CommandStatus == deploy.StatusFailed {
		msg := r.Failure()
		t.Logf(ctx, "bootc install failed on the node: %s", msg)
		d.StopAgent(ctx, t, c)
		return driver.Done, fmt.Errorf("bootc install failed on node %s: %s", n.UUID, msg)
	}
	var res deploy.InstallResult
	if err := json.Unmarshal(r.CommandResult, &res); err != nil {
		return driver.Done, fmt.Errorf("the agent's install result is unreadable: %w", err)
	}
	// The agent reports what it actually installed; anything but the pinned digest is a failure, not a warning.
	if want, _ := dii[keyDigest].(string); res.ImageDigest != want {
		return driver.Done, fmt.Errorf("the agent installed %s but %s was pinned", res.ImageDigest, want)
	}
	phases := map[string]float64{}
	var summary []string
	for _, p := range res.Phases {
		phases[p.Name] = round(p.Seconds)
		summary = append(summary, fmt.Sprintf("%s %.1fs", p.Name, p.Seconds))
	}
	dii[keyInstalled] = map[string]any{"image": res.ImageRef, "digest": res.ImageDigest, "device": res.Device,
		"device_reason": res.DeviceReason, "root_size_mib": res.RootSizeMiB, "configdrive": res.ConfigDrive, "phases": phases}
	t.Logf(ctx, "installed %s on %s (%s)", res.ImageDigest, res.Device, strings.Join(summary, ", "))
	agentdeploy.SetProgress(n, deploy.Progress{Phase: "booting instance", Percent: 100})
	return driver.Done, nil
}

// round keeps one decimal of a phase's seconds for driver_internal_info.
func round(f float64) float64 { return float64(int(f*10+0.5)) / 10 }

// installParams builds standby.execute_bootc_install's params: the pinned image, the options, the secret in
// Ironic's transport form, and the config drive (from the task, never from instance_info) as a string.
func (d *Deploy) installParams(ctx context.Context, t *driver.Task) (deploy.BootcInstallParams, error) {
	n := t.Node
	pinned, _ := n.DriverInternalInfo[keyPinned].(string)
	ii := map[string]any{}
	// Only the bootc_* options go to the agent; the rest of instance_info (image_source, secrets) does not.
	for k, v := range n.InstanceInfo {
		if strings.HasPrefix(k, "bootc_") {
			ii[k] = v
		}
	}
	// The installed system tracks the tag (bootc upgrade) while the install uses the digest.
	if tag, _ := n.DriverInternalInfo[keyTag].(string); tag != "" {
		if _, set := ii["bootc_target_imgref"]; !set {
			ii["bootc_target_imgref"] = tag
		}
	}
	platform, _ := n.DriverInternalInfo[keyPlatform].(string)
	p := deploy.BootcInstallParams{ImageSource: "oci://" + pinned, InstanceInfo: ii, ImagePlatform: platform}
	if s := agentdeploy.PullSecret(n); s != "" {
		enc := images.EncodeTransportSecret(s)
		p.PullSecret = &enc
	}
	cd, err := d.configDrive(ctx, t)
	if err != nil {
		return p, err
	}
	p.ConfigDrive = cd
	return p, nil
}

// TearDown powers the node off and forgets the instance boot (undeploy). The disk is left as it is: automated
// cleaning, which follows unless disabled, wipes it.
func (d *Deploy) TearDown(ctx context.Context, t *driver.Task) error {
	if err := t.Power.SetPowerState(ctx, t.Node, driver.PowerOff, 0); err != nil {
		return err
	}
	for _, k := range []string{keyInstalled, keyProgress, keyPinned, keyDigest, keyTag, keyCommand, keyOffset, keyPlatform} {
		delete(t.Node.DriverInternalInfo, k)
	}
	// The instance is gone, and its reporter credential with it.
	if st := d.cfg.Reporter.Store; st != nil {
		if err := st.DeleteBootcReporter(ctx, t.Node.UUID); err != nil {
			return err
		}
	}
	return t.Boot.CleanUpInstance(ctx, t)
}

// Clean is not used for this interface: the engine runs its clean steps (Steps, ExecuteStep) instead.
func (d *Deploy) Clean(context.Context, *driver.Task) (driver.Outcome, error) {
	return driver.Done, nil
}
