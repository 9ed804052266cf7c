package redfish_test

import (
	"context"
	"io"
	"net/http/httptest"
	"testing"

	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/steps"
)

// set_boot_mode is offered for every step kind and patches the BMC's boot mode, keeping the override target.
func TestSetBootModeStep(t *testing.T) {
	d := fastDriver()
	for _, k := range []steps.Kind{steps.Clean, steps.Deploy, steps.Service} {
		got := d.Steps(k)
		require.Len(t, got, 1)
		assert.Equal(t, "management.set_boot_mode", got[0].ID())
		assert.Equal(t, 0, got[0].Priority, "runs only when asked for")
		assert.True(t, got[0].ArgsInfo["mode"].Required)
	}
	l := logrus.New()
	l.SetOutput(io.Discard)
	for _, tc := range []struct {
		mode, want, caps string
		err              string
	}{
		{"bios", "Legacy", "boot_mode:bios", ""},
		{"uefi", "UEFI", "boot_mode:uefi", ""},
		{"legacy", "", "", "args.mode must be uefi or bios"},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			b := newBMC(t, "supermicro-system.json")
			srv := httptest.NewTLSServer(b)
			defer srv.Close()
			n := node(srv.URL, "")
			n.Properties["capabilities"] = "secure_boot:false,boot_mode:uefi"
			target := b.system["Boot"].(map[string]any)["BootSourceOverrideTarget"]
			task := &driver.Task{Node: n, Log: logrus.NewEntry(l)}
			out, err := d.ExecuteStep(context.Background(), task, steps.Clean, steps.Step{Interface: "management", Step: "set_boot_mode",
				Args: map[string]any{"mode": tc.mode}})
			if tc.err != "" {
				require.ErrorIs(t, err, driver.ErrInvalid)
				assert.Contains(t, err.Error(), tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, driver.Done, out)
			boot := b.system["Boot"].(map[string]any)
			assert.Equal(t, tc.want, boot["BootSourceOverrideMode"])
			assert.Equal(t, target, boot["BootSourceOverrideTarget"], "the override target is kept")
			assert.Equal(t, "secure_boot:false,"+tc.caps, n.Properties["capabilities"])
		})
	}
}
