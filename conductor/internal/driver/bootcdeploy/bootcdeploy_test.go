package bootcdeploy

import (
	"context"
	"errors"
	"io"
	"testing"

	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/store"
)

func quietLog() *logrus.Entry {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return logrus.NewEntry(l)
}

// TestInstallParamsConfigDrive: the config drive comes from the task (kept apart from the node), never from
// instance_info.
func TestInstallParamsConfigDrive(t *testing.T) {
	drive := func(v any, err error) func(context.Context) (any, error) {
		return func(context.Context) (any, error) { return v, err }
	}
	tests := []struct {
		name    string
		drive   func(context.Context) (any, error)
		want    string // "" = no config drive sent; "iso" = a built ISO
		wantErr string
	}{
		{"no drive kept", drive(nil, nil), "", ""},
		{"engine keeps none", nil, "", ""},
		{"string form", drive("H4sIAAAAAAAA/wMAAAAAAAAAAAA=", nil), "H4sIAAAAAAAA/wMAAAAAAAAAAAA=", ""},
		{"dict form is built", drive(map[string]any{"meta_data": map[string]any{"hostname": "h1"}}, nil), "iso", ""},
		{"store error", drive(nil, errors.New("database is closed")), "", "read the config drive of node n1: database is closed"},
		{"wrong type", drive(42.0, nil), "", "unexpected type float64"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := &store.Node{UUID: "n1", Name: "n1", DriverInternalInfo: map[string]any{keyPinned: "r/i@sha256:abc"},
				InstanceInfo: map[string]any{"configdrive": "stale-from-instance-info", "bootc_tpm2_luks": true}}
			p, err := (&Deploy{}).installParams(context.Background(), &driver.Task{Node: n, ConfigDrive: tc.drive})
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, "oci://r/i@sha256:abc", p.ImageSource)
			assert.NotContains(t, p.InstanceInfo, "configdrive")
			switch tc.want {
			case "":
				assert.Nil(t, p.ConfigDrive, "instance_info.configdrive is never sent")
			case "iso":
				require.NotNil(t, p.ConfigDrive)
				assert.NotEqual(t, "stale-from-instance-info", *p.ConfigDrive)
				assert.Greater(t, len(*p.ConfigDrive), 100)
			default:
				require.NotNil(t, p.ConfigDrive)
				assert.Equal(t, tc.want, *p.ConfigDrive)
			}
		})
	}
}
