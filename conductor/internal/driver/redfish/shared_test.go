package redfish_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/transport"
)

// TestSessionsShareTheBMCConnection: every Redfish call opens a session (service root, system, logout); with
// the conductor's shared transports, N power reads and a power change reuse one TCP+TLS connection to the BMC
// (gofish's Logout must not close it), where a transport per session opened one per session.
func TestSessionsShareTheBMCConnection(t *testing.T) {
	const reads = 10
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		shared bool
		want   func(sessions int64) bool
	}{
		{"shared transports", true, func(n int64) bool { return n == 1 }},
		{"transport per session", false, func(n int64) bool { return n >= reads }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var accepted atomic.Int64
			srv := httptest.NewUnstartedServer(newBMC(t, "ilo-system.json"))
			srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
				if s == http.StateNew {
					accepted.Add(1)
				}
			}
			srv.StartTLS()
			defer srv.Close()
			d := fastDriver()
			if tc.shared {
				d.Transports = transport.NewCache(transport.Config{})
				defer d.Transports.Close()
			}
			n := node(srv.URL, "")
			for range reads {
				_, err := d.PowerState(ctx, n)
				require.NoError(t, err)
			}
			require.NoError(t, d.SetPowerState(ctx, n, driver.PowerOff, 0))
			assert.True(t, tc.want(accepted.Load()), "%d connections", accepted.Load())
		})
	}
}

// TestSharedTransportStillChecksTheBMCCertificate: a node that verifies the BMC's certificate against the
// system roots gets no connection opened for a node of the same BMC with redfish_verify_ca=false.
func TestSharedTransportStillChecksTheBMCCertificate(t *testing.T) {
	srv := httptest.NewTLSServer(newBMC(t, "ilo-system.json"))
	defer srv.Close()
	d := fastDriver()
	d.Transports = transport.NewCache(transport.Config{})
	defer d.Transports.Close()
	ctx := context.Background()
	_, err := d.PowerState(ctx, node(srv.URL, ""))
	require.NoError(t, err)
	verifying := node(srv.URL, "")
	verifying.DriverInfo["redfish_verify_ca"] = true
	_, err = d.PowerState(ctx, verifying)
	assert.ErrorContains(t, err, "redfish_verify_ca", "the self-signed BMC is not trusted although an unverified connection is open")
}
