package hostdeploy_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/nodes"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// stepDisk is the size of the loop device the step tests erase: small, since erase_devices writes all of it.
const stepDisk = 64 << 20

// pattern fills the device with a non-zero pattern, through the device (as the agent writes: one page cache).
func pattern(t testing.TB, dev string) {
	f, err := os.OpenFile(dev, os.O_WRONLY, 0)
	require.NoError(t, err)
	defer f.Close()
	block := bytes.Repeat([]byte("ferric-step-pattern\n"), 1<<20/20+1)[:1<<20]
	for off := int64(0); off < stepDisk; off += 1 << 20 {
		_, err := f.WriteAt(block, off)
		require.NoError(t, err)
	}
	require.NoError(t, f.Sync())
}

// nonZero returns the offsets of the MiB blocks of the device holding any non-zero byte.
func nonZero(t testing.TB, dev string) []int64 {
	f, err := os.Open(dev)
	require.NoError(t, err)
	defer f.Close()
	var out []int64
	buf := make([]byte, 1<<20)
	zero := make([]byte, 1<<20)
	for off := int64(0); ; off += 1 << 20 {
		n, err := f.ReadAt(buf, off)
		if n > 0 && !bytes.Equal(buf[:n], zero[:n]) {
			out = append(out, off)
		}
		if err == io.EOF || n < len(buf) {
			return out
		}
		require.NoError(t, err)
	}
}

// clean asks for a manual clean with the given steps.
func (r *rig) clean(t testing.TB, id string, steps ...map[string]any) error {
	return nodes.ChangeProvisionState(context.Background(), r.cl, id, nodes.ProvisionStateOpts{Target: nodes.TargetClean,
		CleanSteps: toCleanSteps(steps)}).ExtractErr()
}

func toCleanSteps(in []map[string]any) []nodes.CleanStep {
	out := make([]nodes.CleanStep, 0, len(in))
	for _, s := range in {
		cs := nodes.CleanStep{Interface: nodes.StepInterface(s["interface"].(string)), Step: s["step"].(string)}
		if a, ok := s["args"].(map[string]any); ok {
			cs.Args = a
		}
		out = append(out, cs)
	}
	return out
}

// TestCleanStepsThroughTheAgent runs the clean steps through a real agent on a loop device: automated cleaning
// (provide) wipes the metadata only, through clean.execute_clean_step; a manual clean with erase_devices zeroes
// every byte, showing its progress; an unknown step is refused before anything changes; a step the device refuses
// ends in clean failed with the step named. On today's code a manual clean ran ferric.wipe_disk whatever it asked,
// leaving the middle of the disk as it was.
func TestCleanStepsThroughTheAgent(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	dev, _ := loop(t, stepDisk)
	pattern(t, dev)
	require.Len(t, nonZero(t, dev), stepDisk>>20, "the pattern is on the device")

	// Automated cleaning: erase_devices_metadata (priority 99), not erase_devices (0 by default).
	n := r.enroll(t, "steps", dev, nil)
	left := nonZero(t, dev)
	assert.NotContains(t, left, int64(0), "the first MiB (partition tables) is wiped")
	assert.NotContains(t, left, int64(stepDisk-1<<20), "the last MiB (GPT backup) is wiped")
	assert.Len(t, left, stepDisk>>20-2, "automated cleaning erases the metadata only")
	text := r.logText(t, n.UUID)
	assert.Contains(t, text, "clean steps: deploy.erase_devices_metadata (priority 99)")
	assert.Contains(t, text, "runs clean step deploy.erase_devices_metadata (clean.execute_clean_step")
	assert.Contains(t, text, "[agent]")
	assert.NotContains(t, text, "erase_devices (")

	// An unknown step: 400 naming it, the node stays available (a manual clean needs manageable: manage first).
	require.NoError(t, nodes.ChangeProvisionState(ctx, r.cl, n.UUID, nodes.ProvisionStateOpts{Target: nodes.TargetManage}).ExtractErr())
	r.wait(t, n.UUID, "manageable", time.Minute)
	err := r.clean(t, n.UUID, map[string]any{"interface": "deploy", "step": "erase_everything"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "node does not support this clean step: {'interface': 'deploy', 'step': 'erase_everything'}")
	assert.Contains(t, err.Error(), "deploy.erase_devices, deploy.erase_devices_metadata")
	got, err := nodes.Get(ctx, r.cl, n.UUID).Extract()
	require.NoError(t, err)
	assert.Equal(t, "manageable", got.ProvisionState)

	// A manual clean with erase_devices: every byte of the device is zero afterwards.
	pattern(t, dev)
	require.NoError(t, r.clean(t, n.UUID, map[string]any{"interface": "deploy", "step": "erase_devices"}))
	got = r.wait(t, n.UUID, "manageable", 3*time.Minute)
	assert.Empty(t, nonZero(t, dev), "erase_devices zeroed the whole device")
	assert.Equal(t, map[string]any{}, got.CleanStep)
	assert.Equal(t, "power off", got.PowerState, "the agent is stopped after the steps")
	text = r.logText(t, n.UUID)
	assert.Contains(t, text, "clean steps: deploy.erase_devices (priority 10)")
	assert.Contains(t, text, "runs clean step deploy.erase_devices (clean.execute_clean_step")
	assert.Contains(t, text, fmt.Sprintf("erased %s: %d bytes", dev, stepDisk))

	// A step that fails on the node: the device is read-only, the agent cannot open it for writing.
	pattern(t, dev)
	out, err := exec.Command("blockdev", "--setro", dev).CombinedOutput()
	require.NoError(t, err, string(out))
	t.Cleanup(func() { exec.Command("blockdev", "--setrw", dev).Run() })
	require.NoError(t, r.clean(t, n.UUID, map[string]any{"interface": "deploy", "step": "erase_devices"}))
	got = r.wait(t, n.UUID, "clean failed", 3*time.Minute)
	assert.Contains(t, got.LastError, "failed clean step deploy.erase_devices: ")
	assert.Contains(t, got.LastError, dev)
	assert.Len(t, nonZero(t, dev), stepDisk>>20, "nothing was erased")
	assert.Equal(t, "power off", got.PowerState)
}
