package conductor_test

import (
	"context"
	"io"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/drivers"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/nodes"
	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/conductor"
	"github.com/ferric-metal/ferric/test/conductortest"
)

// TestAutodetectDrivers: autodetect is enabled on every hardware type and is redfish's and ipmi's default deploy interface (as
// Ironic's generic hardware types have it), so a node created as Metal3 creates it (no deploy_interface) gets it;
// fake-hardware's default stays fake (Ironic's fake-hardware lists FakeDeploy first).
func TestAutodetectDrivers(t *testing.T) {
	c := conductortest.Start(t)
	cl := c.Client("1.89")
	ctx := context.Background()
	for _, tc := range []struct{ hw, def string }{{"redfish", "autodetect"}, {"ipmi", "autodetect"}, {"fake-hardware", "fake"}} {
		d, err := drivers.GetDriverDetails(ctx, cl, tc.hw).Extract()
		require.NoError(t, err)
		assert.Equal(t, tc.def, d.DefaultDeployInterface, tc.hw)
		assert.Subset(t, d.EnabledDeployInterfaces, []string{"autodetect", "bootc", "direct"}, tc.hw)
	}
	n, err := nodes.Create(ctx, cl, nodes.CreateOpts{Driver: "redfish",
		DriverInfo: map[string]any{"redfish_address": "https://192.0.2.9"}}).Extract()
	require.NoError(t, err)
	assert.Equal(t, "autodetect", n.DeployInterface)
}

// TestAutodetectFlagRefused: the conductor does not start with an --autodetect-deploy-interfaces it cannot honour,
// and says which flag to fix.
func TestAutodetectFlagRefused(t *testing.T) {
	log := logrus.New()
	log.SetOutput(io.Discard)
	for _, tc := range []struct {
		name  string
		names []string
		want  string
	}{
		{"unknown", []string{"bootc", "pxe"}, `"pxe" is not a deploy interface of this conductor`},
		{"itself", []string{"autodetect", "direct"}, "names autodetect itself"},
		{"twice", []string{"direct", "direct"}, `names "direct" twice`},
		{"empty", []string{}, "at least one"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			require.NoError(t, err)
			dir := t.TempDir()
			// Bounded: a conductor that wrongly starts serves until its context ends, and then returns nil.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			err = conductor.Run(ctx, conductor.Config{Listener: ln, DB: "sqlite://" + filepath.Join(dir, "x.db"),
				MediaDir: filepath.Join(dir, "media"), AutodetectDeployInterfaces: tc.names}, logrus.NewEntry(log))
			require.Error(t, err)
			assert.Contains(t, err.Error(), "--autodetect-deploy-interfaces")
			assert.Contains(t, err.Error(), tc.want)
			assert.Contains(t, err.Error(), "e.g. --autodetect-deploy-interfaces bootc,direct", "the message says how to fix it")
		})
	}
}
