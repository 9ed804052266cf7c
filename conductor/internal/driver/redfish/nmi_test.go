package redfish_test

import (
	"context"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestInjectNMI: the redfish management injects an NMI as a ComputerSystem.Reset of type Nmi (Ironic's
// reset_system(NMI)), and nothing else.
func TestInjectNMI(t *testing.T) {
	b := newBMC(t, "idrac-system.json")
	srv := httptest.NewTLSServer(b)
	defer srv.Close()
	d := fastDriver()
	n := node(srv.URL, "/redfish/v1/Systems/System.Embedded.1")
	require.NoError(t, d.InjectNMI(context.Background(), n))
	assert.Equal(t, []string{"Nmi"}, b.resets)
}
