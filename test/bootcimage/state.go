package bootcimage

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/bootchost"
)

// StandinState is a state file for the stand-in's day-2 commands (FERRIC_STANDIN_STATE): a host that boots
// booted and follows its reference, with rollback as its rollback deployment when given, last finalized on the
// boot bootID (writing another id into the stand-in's boot id file is then a reboot).
func StandinState(t testing.TB, bootID string, booted bootchost.ImageStatus, rollback ...bootchost.ImageStatus) []byte {
	t.Helper()
	typ := "bootcHost"
	host := bootchost.Host{
		APIVersion: bootchost.APIVersionV1, Kind: bootchost.Kind, Metadata: bootchost.Metadata{Name: "host"},
		Spec:   bootchost.HostSpec{Image: &booted.Image, BootOrder: "default"},
		Status: bootchost.HostStatus{Booted: &bootchost.BootEntry{Image: &booted}, Type: &typ}}
	if len(rollback) > 0 {
		host.Status.Rollback = &bootchost.BootEntry{Image: &rollback[0]}
	}
	// The shape of the stand-in's State (package main there): the BootcHost document and its boot id.
	b, err := json.Marshal(map[string]any{"boot_id": bootID, "host": host})
	require.NoError(t, err)
	return b
}
