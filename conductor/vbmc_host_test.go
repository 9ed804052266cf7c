package conductor_test

import (
	"context"
	"io"
	"net"
	"path/filepath"
	"testing"

	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/test/vbmc"
)

// startHostVBMC runs ferric-vbmc on 127.0.0.1 with the given VMs, never booted (vbmc.IdleRunner: the BMC keeps their
// state, downloads media and answers Redfish as for real VMs), with user admin / password pw, until the test
// ends. It returns the BMC's URL.
func startHostVBMC(t *testing.T, vms ...vbmc.VMConfig) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	l := logrus.New()
	l.SetOutput(io.Discard)
	ctx, cancel := context.WithCancel(context.Background())
	done, ready := make(chan error, 1), make(chan string, 1)
	go func() {
		done <- vbmc.Run(ctx, vbmc.Config{Username: "admin", Password: "pw", StateDir: filepath.Join(t.TempDir(), "vbmc"),
			Runner: vbmc.IdleRunner{}, Listener: ln, Ready: func(u string) { ready <- u }, VMs: vms}, logrus.NewEntry(l))
	}()
	t.Cleanup(func() { cancel(); <-done })
	return <-ready
}
