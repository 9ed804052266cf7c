package agent

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/ferric-metal/ferric/deploy"
	"github.com/ferric-metal/ferric/deploy/bootc"
	"github.com/ferric-metal/ferric/images"
	"github.com/ferric-metal/ferric/ramdisk-agent/internal/api"
	"github.com/ferric-metal/ferric/ramdisk-agent/internal/hardware"
	"github.com/ferric-metal/ferric/ramdisk-agent/internal/install"
)

// clientErr marks errors caused by the request's content (a bad image reference, a failed preflight, no disk
// matching the root device hints) so the command fails with code 400 rather than 500: the conductor then
// reports the operator's mistake instead of a hardware or agent fault. Other errors pass unchanged.
func clientErr(err error) error {
	if errors.Is(err, bootc.ErrInvalid) || errors.Is(err, images.ErrInvalid) || errors.Is(err, install.ErrPreflight) ||
		errors.Is(err, install.ErrNoBootc) || errors.Is(err, hardware.ErrNoDisk) {
		return &api.ClientError{Err: err}
	}
	return err
}

// stepPlatform is the image platform of an install asked by Ironic's conductor (a deploy step), which pins none:
// IPA pulls for its own architecture, so the agent does the same (hostArch), unless the node's
// properties.cpu_arch names a platform (then the install refuses a machine of another architecture).
func stepPlatform(node map[string]any, hostArch string) (string, error) {
	props, _ := node["properties"].(map[string]any)
	if ca, _ := props["cpu_arch"].(string); ca != "" {
		return images.PlatformForCPUArch(ca)
	}
	return "linux/" + hostArch, nil
}

// commands is the agent's command table, keyed by IPA's "extension.command" names: the conductor posts
// to /v1/commands/ with that name and, for Async commands, polls the result. Names in the ferric.
// namespace are Ferric's own; the rest answer as IPA's commands of the same name do.
func (a *Agent) commands() map[string]api.Spec {
	cmds := map[string]api.Spec{
		deploy.CmdBootcInstall: {Async: true, Handler: func(ctx context.Context, raw json.RawMessage, c *api.Command) (any, error) {
			var p deploy.BootcInstallParams
			if err := json.Unmarshal(raw, &p); err != nil {
				return nil, &api.ClientError{Err: fmt.Errorf("params: %w", err)}
			}
			return a.install(ctx, p, c)
		}},
		// ferric.progress: the last command's log lines after index since, for the deploy's
		// progress in the conductor's log; IPA has no equivalent.
		deploy.CmdProgress: {Handler: func(_ context.Context, raw json.RawMessage, _ *api.Command) (any, error) {
			var p struct {
				Since int `json:"since"`
			}
			json.Unmarshal(raw, &p)
			last := a.api.Last()
			if last == nil {
				return deploy.Progress{Status: "NONE"}, nil
			}
			return last.Progress(p.Since), nil
		}},
		// standby.sync: synchronous in IPA too; the conductor flushes the disks this way before it
		// powers the node off out of band, so nothing written is lost.
		deploy.CmdSync: {Handler: func(context.Context, json.RawMessage, *api.Command) (any, error) {
			syscall.Sync()
			return map[string]string{"result": "sync completed"}, nil
		}},
		// standby.power_off: asynchronous, as in IPA, so the conductor gets its answer before the
		// machine goes. A local agent (PowerOff "exit") only ends its process.
		deploy.CmdPowerOff: {Async: true, Handler: func(context.Context, json.RawMessage, *api.Command) (any, error) {
			syscall.Sync()
			go func() {
				time.Sleep(500 * time.Millisecond) // let the answer and the forced heartbeat go out
				if a.cfg.PowerOff == "system" {
					syscall.Reboot(syscall.LINUX_REBOOT_CMD_POWER_OFF)
				}
				a.log.Info("powering off: the agent stops")
				a.quit()
			}()
			return map[string]string{"result": "powering off"}, nil
		}},
		// ferric.wipe_disk is erase_devices_metadata for conductors that predate the clean steps.
		deploy.CmdWipeDisk: {Async: true, Handler: func(ctx context.Context, raw json.RawMessage, c *api.Command) (any, error) {
			return a.eraseMetadata(ctx, c)
		}},
		// The conductor may ask for the inventory over the command API too (an agent it already knows).
		deploy.CmdInventory: {Handler: func(ctx context.Context, _ json.RawMessage, _ *api.Command) (any, error) {
			return a.inventory(ctx)
		}},
		// rescue.finalize_rescue: sets the rescue password and hands the machine over (rescue.go).
		deploy.CmdFinalizeRescue: {Handler: a.finalizeRescue},
		// log.collect_system_logs: what Ironic keeps under its [agent]deploy_logs_* options.
		deploy.CmdCollectLogs: {Async: true, Handler: func(context.Context, json.RawMessage, *api.Command) (any, error) {
			return a.collectLogs()
		}},
	}
	// The clean, deploy and service step extensions (steps.go).
	for name, spec := range a.stepCommands() {
		cmds[name] = spec
	}
	return cmds
}

// hints returns the node's properties.root_device as the conductor sent it at lookup, or nil before
// lookup or when the node has none. The map is the node's: callers must not change it.
func (a *Agent) hints() map[string]any {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.node == nil {
		return nil
	}
	h, _ := a.node.Node.Properties["root_device"].(map[string]any)
	return h
}

// install runs standby.execute_bootc_install: it waits for podman to be set up (in the background from
// start-up), then installs p onto the disk the root device hints choose, logging into c. The result's
// phases are kept on c for ferric.progress. It fails without touching a disk when podman is unavailable.
func (a *Agent) install(ctx context.Context, p deploy.BootcInstallParams, c *api.Command) (any, error) {
	select {
	case <-a.podmanReady:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if a.inst == nil {
		return nil, fmt.Errorf("podman is not available on this node: %v", a.podmanErr)
	}
	res, err := a.inst.Run(ctx, p, a.hints(), c)
	if err != nil {
		c.Line("error: " + err.Error())
		return nil, clientErr(err)
	}
	c.SetPhases(res.Phases)
	return res, nil
}

// targetDisk is the disk steps and installs act on, with the reason it was chosen for the logs. A
// configured TargetDevice (a local agent's loop device, which disk listing skips as virtual) wins over
// root device hints and must exist; otherwise hardware.Choose applies Ironic's hint semantics, and
// no match is an error (ErrNoDisk) rather than a guess: a wrong guess would erase the wrong disk.
func (a *Agent) targetDisk() (hardware.Disk, string, error) {
	src := a.hw
	if a.cfg.TargetDevice != "" {
		src.IncludeVirtual = []string{a.cfg.TargetDevice}
		disks, err := src.Disks()
		if err != nil {
			return hardware.Disk{}, "", err
		}
		for _, d := range disks {
			if d.Name == a.cfg.TargetDevice {
				return d, "configured target device", nil
			}
		}
		return hardware.Disk{}, "", fmt.Errorf("target device %s not found: %w", a.cfg.TargetDevice, hardware.ErrNoDisk)
	}
	disks, err := src.Disks()
	if err != nil {
		return hardware.Disk{}, "", err
	}
	ch, err := hardware.Choose(disks, a.hints())
	if err != nil {
		return hardware.Disk{}, "", err
	}
	return ch.Disk, ch.Reason, nil
}

// collectLogs returns IPA's {"system_logs": base64(tar.gz)} with the agent's command logs and the inventory.
func (a *Agent) collectLogs() (any, error) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	add := func(name string, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), ModTime: time.Now()}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	var lines []string
	if last := a.api.Last(); last != nil {
		lines = last.Lines()
	}
	if err := add("agent-command.log", []byte(strings.Join(lines, "\n")+"\n")); err != nil {
		return nil, err
	}
	// The inventory and cmdline are best effort: logs are collected after a failure, which may be the
	// reason they cannot be read.
	if inv, err := a.hw.Inventory(); err == nil {
		b, _ := json.MarshalIndent(inv, "", "  ")
		if err := add("inventory.json", b); err != nil {
			return nil, err
		}
	}
	if b, err := os.ReadFile("/proc/cmdline"); err == nil {
		add("cmdline", b)
	}
	tw.Close()
	zw.Close()
	return map[string]string{"system_logs": base64.StdEncoding.EncodeToString(buf.Bytes())}, nil
}
