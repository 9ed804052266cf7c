// Package directdeploy owns the conductor's `direct` deploy interface, Ironic's AgentDeploy for whole-disk images:
// the agent streams a raw or qcow2 image from an http(s) URL, or the blob of an oci:// disk image artifact, onto the
// node's root device (IPA's write_image deploy step), verifying its checksum on the way, writes the config drive,
// and the node boots the disk. Validation, the checksum (a digest or a URL to a checksum file, resolved by the
// conductor; an artifact's blob digest), the artifact's identification (oci.go) and the write_image arguments
// live here; booting the agent, following its command and the steps after the write are agentdeploy's.
package directdeploy

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/ferric-metal/ferric/conductor/internal/agentclient"
	"github.com/ferric-metal/ferric/conductor/internal/artifact"
	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/driver/agentdeploy"
	"github.com/ferric-metal/ferric/conductor/internal/steps"
	"github.com/ferric-metal/ferric/conductor/internal/store"
	"github.com/ferric-metal/ferric/conductor/internal/transport"
	"github.com/ferric-metal/ferric/deploy"
)

// StepWriteImage is IPA's deploy step that writes a whole-disk image (standby.py), and Ironic's conductor-side
// step of the same name (priority 80) that hands it over.
const StepWriteImage = "write_image"

// Config tunes the interface.
type Config struct {
	// AgentTimeout bounds each call to the agent (default 30 s).
	AgentTimeout time.Duration
	// NoCleaning skips the agent-driven disk metadata wipe during automated cleaning.
	NoCleaning bool
	// Transports are the conductor's shared HTTP transports to agents (nil: a transport per agent client).
	Transports *transport.Cache
	// AllowMD5 accepts md5 checksums (--allow-md5-checksum, Ironic's [agent]allow_md5_checksum; off by default).
	AllowMD5 bool
	// Artifacts fetches checksum files named by URL; nil refuses checksum URLs.
	Artifacts *artifact.Fetcher
	// Registry holds the registry settings shared with the bootc interface, for oci:// disk artifacts: registries
	// reached over plain http (--insecure-registry), the conductor's address of a registry as nodes name it
	// (--registry-alias), the site's CAs, proxies and mirrors, and the reject scopes of --image-policy.
	agentdeploy.Registry
	// Local is image_download_source: the default and the conductor's image cache (local.go).
	Local LocalConfig
}

// Deploy implements driver.Deploy, the step provider and the engine's agent hand-off for the direct interface.
type Deploy struct {
	// The shared agent machinery: boot, client, progress, in-band steps, the flow after the write.
	*agentdeploy.Agent
	cfg Config
}

// New returns the direct deploy interface.
func New(cfg Config) *Deploy {
	return &Deploy{Agent: agentdeploy.New(cfg.AgentTimeout, cfg.NoCleaning, cfg.Transports), cfg: cfg}
}

// Keys in driver_internal_info. keyChecksum (the digest the agent verifies, resolved once at the core step) lives
// as long as one deploy; keyInstalled records what the instance runs until it is torn down.
const (
	keyChecksum  = "direct_image_checksum"
	keyInstalled = "direct_installed"
)

// diskFormats are the image_disk_format values the agent writes (unset: detected from the image's header).
var diskFormats = map[string]bool{"raw": true, "qcow2": true}

// Validate checks everything that can be checked before a deploy without fetching: the image source, the
// checksum fields, the disk format. Each error names the field and the fix; the engine makes it a 400.
func (d *Deploy) Validate(ctx context.Context, n *store.Node) error {
	src, _ := n.InstanceInfo["image_source"].(string)
	if src == "" {
		return errInvalid(fmt.Errorf("instance_info.image_source is missing: set it to the http(s) URL of a raw or qcow2 whole-disk image, or an oci:// disk image artifact"))
	}
	if err := checkDiskFormat(n.InstanceInfo); err != nil {
		return err
	}
	if err := d.validateSource(ctx, n); err != nil {
		return errInvalid(err)
	}
	if isOCI(src) {
		return d.validateOCI(n, src)
	}
	u, err := url.Parse(src)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errInvalid(fmt.Errorf("instance_info.image_source %q is not an http(s) URL: give the http(s) URL of a raw or qcow2 whole-disk image", redact(src)))
	}
	c, err := readChecksum(n.InstanceInfo, d.cfg.AllowMD5)
	if err != nil {
		return errInvalid(err)
	}
	// A checksum URL is fetched at deploy time; its address is refused now if the conductor may not fetch it.
	if c.url {
		if d.cfg.Artifacts == nil {
			return errInvalid(fmt.Errorf("instance_info.image_checksum is a URL but this conductor fetches no artifacts: give the digest itself"))
		}
		if err := d.cfg.Artifacts.Check(ctx, "instance_info.image_checksum", c.value); err != nil {
			return errInvalid(err)
		}
	}
	return nil
}

// checkDiskFormat refuses an image_disk_format the agent does not write.
func checkDiskFormat(ii map[string]any) error {
	if f, set := ii["image_disk_format"]; set && f != nil && f != "" {
		if s, _ := f.(string); !diskFormats[s] {
			return errInvalid(fmt.Errorf("instance_info.image_disk_format %v is not supported: use raw or qcow2, or unset it to detect the format", f))
		}
	}
	return nil
}

// Steps lists the interface's steps. Deploy: Ironic's direct interface (deploy, write_image, then the shared
// steps that boot the disk). Clean: the agent's erase steps, as bootc offers them.
func (d *Deploy) Steps(kind steps.Kind) []steps.Step {
	switch kind {
	case steps.Deploy:
		return agentdeploy.DeploySteps(StepWriteImage)
	case steps.Clean:
		return d.CleanSteps()
	}
	return nil
}

// ResumeStep says how another conductor carries on a deploy step after the one running it died
// (agentdeploy.ResumeStep): write_image is followed on the agent, never started twice.
func (d *Deploy) ResumeStep(kind steps.Kind, s steps.Step) driver.Resume {
	return agentdeploy.ResumeStep(kind, s, StepWriteImage)
}

// ExecuteStep runs one step: the core step boots the agent (Wait); write_image starts IPA's write_image on the
// agent (Wait until it finished); the shared steps finish at once; in-band clean steps are agentdeploy's.
func (d *Deploy) ExecuteStep(ctx context.Context, t *driver.Task, kind steps.Kind, s steps.Step) (driver.Outcome, error) {
	if kind != steps.Deploy || s.InBand {
		return d.ExecuteInBand(ctx, t, kind, s)
	}
	switch s.Step {
	case agentdeploy.StepDeploy:
		return d.Deploy(ctx, t)
	case StepWriteImage:
		// Start afresh: a command id left from an earlier attempt names a command of another agent boot.
		delete(t.Node.DriverInternalInfo, agentdeploy.KeyStepCmd)
		c, err := d.Client(t.Node)
		if err != nil {
			return driver.Wait, nil // no agent yet: Continue starts the write on its heartbeat
		}
		defer c.Close()
		return d.continueWrite(ctx, t, c, s)
	}
	if out, ok, err := d.FlowStep(ctx, t, s.Step); ok {
		return out, err
	}
	return driver.Done, fmt.Errorf("the direct deploy interface has no deploy step %s: %w", s.ID(), driver.ErrInvalid)
}

// Deploy is the core deploy step: it validates again, resolves the checksum (fetching a checksum file once, so
// the agent verifies the digest the deploy began with) or identifies the oci:// disk artifact, and boots the agent; the node then waits for its call-back.
func (d *Deploy) Deploy(ctx context.Context, t *driver.Task) (driver.Outcome, error) {
	n := t.Node
	dii := n.DriverInternalInfo
	// A rebuild or a retried deploy must not reuse the previous checksum, command or progress.
	for _, k := range []string{keyChecksum, keyOCI, keyInstalled, agentdeploy.KeyStepCmd, agentdeploy.KeyOffset, agentdeploy.KeyProgress} {
		delete(dii, k)
	}
	// The step engine started this deploy's log run before its first step; called on its own, Deploy starts one.
	if cur, _ := n.DeployStep["step"].(string); cur != agentdeploy.StepDeploy || dii[agentdeploy.KeyRun] == nil {
		dii[agentdeploy.KeyRun] = time.Now().UTC().Format("20060102T150405Z") + "-" + uuid.NewString()[:8]
	}
	if err := d.Validate(ctx, n); err != nil {
		return driver.Done, err
	}
	src, _ := n.InstanceInfo["image_source"].(string)
	t.Logf(ctx, "deploy %s started: writing %s", dii[agentdeploy.KeyRun], redact(src))
	// An oci:// source is identified in its registry; its blob's digest is the checksum.
	if isOCI(src) {
		if err := d.identifyOCI(ctx, t, src); err != nil {
			return driver.Done, fmt.Errorf("cannot deploy: %w", err)
		}
		if err := d.prepareLocalOCI(ctx, t, src); err != nil {
			return driver.Done, fmt.Errorf("cannot deploy: %w", err)
		}
		return d.StartBoot(ctx, t)
	}
	c, err := d.resolveChecksum(ctx, n)
	if err != nil {
		return driver.Done, fmt.Errorf("cannot deploy: %w", err)
	}
	dii[keyChecksum] = c.record()
	if err := d.prepareLocal(ctx, t, c); err != nil {
		return driver.Done, fmt.Errorf("cannot deploy: %w", err)
	}
	return d.StartBoot(ctx, t)
}

// Continue advances a node waiting for its agent (heartbeats and polls, node locked): Done once the node's
// current step finished on the agent.
func (d *Deploy) Continue(ctx context.Context, t *driver.Task) (driver.Outcome, error) {
	return d.ContinueWith(ctx, t, StepWriteImage, d.continueWrite)
}

// continueWrite starts IPA's write_image on the agent with Ironic's arguments, or follows it; once it succeeded
// it records what was written.
func (d *Deploy) continueWrite(ctx context.Context, t *driver.Task, c *agentclient.Client, s steps.Step) (driver.Outcome, error) {
	n := t.Node
	scrub := hideToken(t) // image_download_source local: the agent shows the conductor's URL (local.go)
	// The arguments (config drive included) are built for the agent only: they are never stored in deploy_step.
	if id, _ := n.DriverInternalInfo[agentdeploy.KeyStepCmd].(string); id == "" {
		args, err := d.writeImageArgs(ctx, t)
		if err != nil {
			return driver.Done, err
		}
		s.Args = args
	}
	r, out, err := d.ContinueInBandResult(ctx, t, c, steps.Deploy, s)
	if err != nil {
		msg := scrub(err.Error())
		t.Logf(ctx, "write_image failed: %s", msg)
		// As a failed bootc install: the agent that failed (checksum, format, size) is powered off.
		if r != nil {
			d.StopAgent(ctx, t, c)
		}
		return out, fmt.Errorf("writing the image failed on node %s: %s", n.UUID, msg)
	}
	if out != driver.Done || r == nil {
		return out, nil
	}
	d.recordWritten(ctx, t, r)
	d.endLocal(n)
	agentdeploy.SetProgress(n, deploy.Progress{Phase: "booting instance", Percent: 100})
	return driver.Done, nil
}

// recordWritten keeps what the deploy wrote under direct_installed: the image (credentials hidden), the checksum
// verified, and what the agent reports (device, format) when its result names them.
func (d *Deploy) recordWritten(ctx context.Context, t *driver.Task, r *agentclient.Result) {
	n := t.Node
	src, _ := n.InstanceInfo["image_source"].(string)
	rec := map[string]any{"image": redact(src), "checksum": n.DriverInternalInfo[keyChecksum]}
	if f, _ := n.InstanceInfo["image_disk_format"].(string); f != "" {
		rec["format"] = f
	}
	// IPA's execute_deploy_step answers {"deploy_result": ..., "deploy_step": ...}; Ferric's agent puts the
	// device, the detected format and the bytes written in deploy_result (deploy.WriteImageResult's JSON names).
	// An older agent's result lacks them: nothing is guessed.
	var res struct {
		DeployResult map[string]any `json:"deploy_result"`
	}
	if err := json.Unmarshal(r.CommandResult, &res); err == nil {
		for _, k := range []string{"device", "format", "disk_format", "compression", "written_bytes", "seconds"} {
			if v, ok := res.DeployResult[k]; ok && v != nil {
				rec[strings.TrimPrefix(k, "disk_")] = v
			}
		}
	}
	n.DriverInternalInfo[keyInstalled] = rec
	t.Logf(ctx, "wrote %s to %v (format %v)", rec["image"], rec["device"], rec["format"])
}

// TearDown powers the node off and forgets the instance boot (undeploy); automated cleaning wipes the disk.
func (d *Deploy) TearDown(ctx context.Context, t *driver.Task) error {
	if err := t.Power.SetPowerState(ctx, t.Node, driver.PowerOff, 0); err != nil {
		return err
	}
	for _, k := range []string{keyInstalled, keyChecksum, keyOCI, agentdeploy.KeyProgress, agentdeploy.KeyStepCmd, agentdeploy.KeyOffset} {
		delete(t.Node.DriverInternalInfo, k)
	}
	d.endLocal(t.Node)
	return t.Boot.CleanUpInstance(ctx, t)
}

// Clean is not used for this interface: the engine runs its clean steps (Steps, ExecuteStep) instead.
func (d *Deploy) Clean(context.Context, *driver.Task) (driver.Outcome, error) {
	return driver.Done, nil
}
