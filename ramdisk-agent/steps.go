package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"strings"

	"github.com/ferric-metal/ferric/deploy"
	"github.com/ferric-metal/ferric/ramdisk-agent/internal/api"
	"github.com/ferric-metal/ferric/ramdisk-agent/internal/erase"
)

// The agent's steps, as IPA's generic hardware manager offers them (ironic_python_agent/hardware.py) and runs
// them through its clean, deploy and service extensions: get_*_steps answers at once with the steps by hardware
// manager; execute_*_step runs one step asynchronously and answers {"<kind>_result": ..., "<kind>_step": step}.
//
// The erase steps act on the install disk only (targetDisk: the configured local-agent target device, else the
// disk the root device hints choose), where IPA erases every disk: the disk Ferric installs to is the one whose
// data it answers for, and a local agent must never touch another.

// agentSteps returns the steps offered for kind ("clean", "deploy", "service"). IPA's priorities: erase_devices 10,
// erase_devices_metadata 99 (the conductor's overrides decide what automated cleaning runs);
// execute_bootc_install and write_image 0 (run only when a conductor asks for them). write_image is 80 in
// Ironic only as the conductor's out-of-band step of the same name, which shadows this one and calls it with
// image_info; IPA reports 0 because an in-band 80 would make a deploy interface without that out-of-band step
// (bootc, custom-agent) run it on its own, without args.
func agentSteps(kind string) []deploy.Step {
	install := deploy.Step{Interface: "deploy", Step: deploy.StepBootcInstall, Priority: 0}
	switch kind {
	case "clean":
		return []deploy.Step{
			{Interface: "deploy", Step: deploy.StepEraseDevices, Priority: 10, Abortable: true},
			{Interface: "deploy", Step: deploy.StepEraseDevicesMetadata, Priority: 99, Abortable: true},
		}
	case "deploy":
		return []deploy.Step{install, {Interface: "deploy", Step: deploy.StepWriteImage, Priority: 0}}
	case "service":
		return []deploy.Step{install}
	}
	return nil
}

// stepCommands returns the get_*_steps and execute_*_step commands of the clean, deploy and service extensions.
func (a *Agent) stepCommands() map[string]api.Spec {
	out := map[string]api.Spec{}
	for kind, names := range map[string][2]string{
		"clean":   {deploy.CmdGetCleanSteps, deploy.CmdExecuteCleanStep},
		"deploy":  {deploy.CmdGetDeploySteps, deploy.CmdExecuteDeployStep},
		"service": {deploy.CmdGetServiceSteps, deploy.CmdExecuteServiceStep},
	} {
		// get_*_steps is synchronous in IPA. As there, the steps are keyed by hardware manager class name and
		// the versions by manager name; the conductor sends the versions back with execute_*_step.
		kind := kind
		out[names[0]] = api.Spec{Handler: func(context.Context, json.RawMessage, *api.Command) (any, error) {
			return map[string]any{kind + "_steps": map[string]any{deploy.HardwareManager: agentSteps(kind)},
				"hardware_manager_version": map[string]string{"generic_hardware_manager": deploy.HardwareManagerVersion}}, nil
		}}
		out[names[1]] = api.Spec{Async: true, Handler: func(ctx context.Context, raw json.RawMessage, c *api.Command) (any, error) {
			// The *_version the conductor returns is not compared: this agent has one built-in manager,
			// whose version cannot change within a boot (IPA checks because its managers are plugins).
			var p deploy.StepParams
			if err := json.Unmarshal(raw, &p); err != nil {
				return nil, &api.ClientError{Err: fmt.Errorf("params: %w", err)}
			}
			res, err := a.runStep(ctx, kind, p, c)
			if err != nil {
				return nil, err
			}
			// IPA's result shape; Ironic reads <kind>_step back to tell which step the result belongs to, comparing
			// only interface and step (conductor/steps.py is_equivalent). The args are not echoed: write_image's
			// carry the image server's credentials and the config drive, which must not sit in the command
			// results anyone with the token can list.
			echo := p.Step
			echo.Args = nil
			return map[string]any{kind + "_result": res, kind + "_step": echo}, nil
		}}
	}
	return out
}

// runStep runs one offered step; a step this agent does not offer for kind is the caller's mistake.
func (a *Agent) runStep(ctx context.Context, kind string, p deploy.StepParams, c *api.Command) (any, error) {
	offered := agentSteps(kind)
	var names []string
	found := false
	for _, s := range offered {
		names = append(names, s.Interface+"."+s.Step)
		if s.Interface == p.Step.Interface && s.Step == p.Step.Step {
			found = true
		}
	}
	// The conductor's mistake, not the machine's: naming what is offered shows a version skew at once.
	if !found {
		return nil, &api.ClientError{Err: fmt.Errorf("%s step %s.%s is not supported by this agent; it offers: %s",
			kind, p.Step.Interface, p.Step.Step, strings.Join(names, ", "))}
	}
	switch p.Step.Step {
	case deploy.StepEraseDevicesMetadata:
		return a.eraseMetadata(ctx, c)
	case deploy.StepEraseDevices:
		return a.eraseDevices(ctx, c)
	case deploy.StepWriteImage:
		return a.writeImageStep(ctx, p, c)
	}
	return a.bootcInstallStep(ctx, p, c)
}

// eraseMetadata wipes the partition tables and filesystem signatures of the install disk.
func (a *Agent) eraseMetadata(ctx context.Context, c *api.Command) (any, error) {
	disk, reason, err := a.targetDisk()
	if err != nil {
		return nil, clientErr(err)
	}
	c.Phase("erasing the metadata of " + disk.Name)
	if err := erase.Metadata(ctx, disk.Name, disk.Size); err != nil {
		return nil, err
	}
	c.Line(fmt.Sprintf("wiped the metadata of %s (%s)", disk.Name, reason))
	return map[string]string{"result": "erased metadata of " + disk.Name}, nil
}

// eraseDevices erases every byte of the install disk, reporting bytes erased as the command's progress.
func (a *Agent) eraseDevices(ctx context.Context, c *api.Command) (any, error) {
	disk, reason, err := a.targetDisk()
	if err != nil {
		return nil, clientErr(err)
	}
	c.Phase(fmt.Sprintf("erasing %s (%s, %d MiB)", disk.Name, reason, disk.Size>>20))
	res, err := erase.Device(ctx, disk.Name, disk.Size, erase.Options{Progress: c.Bytes})
	if err != nil {
		return nil, err
	}
	c.Line(fmt.Sprintf("erased %s: %d bytes by %s in %.1fs", res.Device, res.Bytes, res.Method, res.Seconds))
	return map[string]any{"erased": []deploy.EraseResult{{Device: res.Device, Method: res.Method, Bytes: res.Bytes,
		Seconds: res.Seconds}}}, nil
}

// bootcInstallStep runs execute_bootc_install as Ironic's conductor calls it: image_source, configdrive and
// oci_pull_secret come as step args, the bootc_* options in the node's instance_info.
func (a *Agent) bootcInstallStep(ctx context.Context, p deploy.StepParams, c *api.Command) (any, error) {
	str := func(k string) *string {
		if s, ok := p.Step.Args[k].(string); ok && s != "" {
			return &s
		}
		return nil
	}
	// The pull secret is a step arg here, where the standby command carries it in its own field; an empty
	// arg counts as absent.
	ii, _ := p.Node["instance_info"].(map[string]any)
	src := ""
	if s := str("image_source"); s != nil {
		src = *s
	}
	platform, err := stepPlatform(p.Node, runtime.GOARCH)
	if err != nil {
		return nil, &api.ClientError{Err: err}
	}
	return a.install(ctx, deploy.BootcInstallParams{ImageSource: src, InstanceInfo: ii, PullSecret: str("oci_pull_secret"),
		ConfigDrive: str("configdrive"), ImagePlatform: platform}, c)
}
