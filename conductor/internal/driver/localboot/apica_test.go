package localboot_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/driver/localboot"
	"github.com/ferric-metal/ferric/conductor/internal/store"
	"github.com/ferric-metal/ferric/test/testenv"
)

// blockDevice returns a block device node the interface's validation accepts (nothing opens it here).
func blockDevice(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "disk")
	if err := unix.Mknod(p, unix.S_IFBLK|0o600, int(unix.Mkdev(7, 250))); err == nil {
		return p
	}
	for _, d := range []string{"/dev/loop0", "/dev/vda", "/dev/sda"} {
		if st, err := os.Stat(d); err == nil && st.Mode()&os.ModeDevice != 0 && st.Mode()&os.ModeCharDevice == 0 {
			return d
		}
	}
	testenv.Missing(t, "cannot make a block device node (not root) and /dev has none to name")
	return ""
}

// TestLocalAgentGetsTheAPICA starts a stand-in agent that records its argv: the CA reaches it as a file path
// (--api-ca), the PEM itself never in argv.
func TestLocalAgentGetsTheAPICA(t *testing.T) {
	dir := t.TempDir()
	argsOut := filepath.Join(dir, "args")
	bin := filepath.Join(dir, "fake-agent")
	require.NoError(t, os.WriteFile(bin, []byte("#!/bin/sh\nfor a; do echo \"$a\"; done > "+argsOut+".tmp && mv "+argsOut+".tmp "+argsOut+"\n"), 0o700))
	const ca = "-----BEGIN CERTIFICATE-----\nQ0E=\n-----END CERTIFICATE-----\n"
	dev := blockDevice(t)
	state, err := os.MkdirTemp("/tmp", "lb") // short: podman limits the agent's run root to 50 characters
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(state) })
	b := localboot.New(localboot.Config{AgentBinary: bin, APIURL: "https://127.0.0.1:6385", StateDir: state,
		TokenFunc: func() string { return "token-0123456789abcdef0123456789ab" }, APICA: func() string { return ca },
		Devices: []string{dev}}) // not named /dev/loopN: allowed as --local-agent-devices would
	n := &store.Node{UUID: "0862e37f-c229-4fe3-aa45-d637b29e7b5e", DriverInfo: map[string]any{"local_agent_device": dev}}
	n.Normalize()
	l := logrus.New()
	l.SetOutput(io.Discard)
	task := &driver.Task{Node: n, Log: logrus.NewEntry(l)}
	require.NoError(t, b.PrepareRamdisk(context.Background(), task))
	defer b.CleanUpRamdisk(context.Background(), task)

	var args []string
	require.Eventually(t, func() bool {
		raw, err := os.ReadFile(argsOut)
		args = strings.Split(strings.TrimSpace(string(raw)), "\n")
		return err == nil
	}, 10*time.Second, 20*time.Millisecond, "the stand-in agent ran")
	i := -1
	for j, a := range args {
		if a == "--api-ca" {
			i = j
		}
		assert.NotContains(t, a, "BEGIN CERTIFICATE", "PEM in argv")
	}
	require.GreaterOrEqual(t, i, 0, "--api-ca in %q", args)
	require.Less(t, i+1, len(args))
	got, err := os.ReadFile(args[i+1])
	require.NoError(t, err)
	assert.Equal(t, ca, string(got))
}
