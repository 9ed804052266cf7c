package store_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// TestBIOSFirmwareConformance runs the BIOS settings and firmware component cache contract on every backend.
func TestBIOSFirmwareConformance(t *testing.T) {
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) { testBIOSFirmware(t, open(t, store.Limits{})) })
	}
}

func strp(s string) *string { return &s }

func testBIOSFirmware(t *testing.T, s store.Store) {
	ctx := context.Background()
	n := newNode("bios-node")
	require.NoError(t, s.CreateNode(ctx, n))

	got, err := s.BIOSSettings(ctx, n.UUID)
	require.NoError(t, err)
	assert.Empty(t, got)
	assert.NotNil(t, got, "an empty list, not null")

	ro := true
	require.NoError(t, s.SetBIOSSettings(ctx, n.UUID, []store.BIOSSetting{
		{Name: "ProcVirtualization", Value: strp("Enabled"), AttributeType: "Enumeration", AllowableValues: []string{"Enabled", "Disabled"}},
		{Name: "BootMode", Value: strp("Uefi"), ReadOnly: &ro},
	}))
	got, err = s.BIOSSettings(ctx, n.UUID)
	require.NoError(t, err)
	require.Len(t, got, 2)
	assert.Equal(t, "BootMode", got[0].Name, "sorted by name")
	assert.Equal(t, true, *got[0].ReadOnly)
	assert.Equal(t, []string{"Enabled", "Disabled"}, got[1].AllowableValues)
	assert.Nil(t, got[1].UpdatedAt)
	assert.False(t, got[1].CreatedAt.IsZero())

	// A changed value gets updated_at; a setting no longer reported goes.
	require.NoError(t, s.SetBIOSSettings(ctx, n.UUID, []store.BIOSSetting{{Name: "ProcVirtualization", Value: strp("Disabled")}}))
	got, err = s.BIOSSettings(ctx, n.UUID)
	require.NoError(t, err)
	require.Len(t, got, 1)
	assert.Equal(t, "Disabled", *got[0].Value)
	assert.NotNil(t, got[0].UpdatedAt)

	assert.ErrorIs(t, s.SetBIOSSettings(ctx, "00000000-0000-0000-0000-000000000000",
		[]store.BIOSSetting{{Name: "x"}}), store.ErrNotFound)

	// Firmware: initial_version stays the first seen version.
	require.NoError(t, s.SetFirmwareComponents(ctx, n.UUID, []store.FirmwareComponent{
		{Component: "bmc", CurrentVersion: "1.0"}, {Component: "bios", CurrentVersion: "2.0"}}))
	require.NoError(t, s.SetFirmwareComponents(ctx, n.UUID, []store.FirmwareComponent{{Component: "bios", CurrentVersion: "2.1"}}))
	fw, err := s.FirmwareComponents(ctx, n.UUID)
	require.NoError(t, err)
	require.Len(t, fw, 2)
	assert.Equal(t, "bios", fw[0].Component)
	assert.Equal(t, "2.0", fw[0].InitialVersion)
	assert.Equal(t, "2.1", fw[0].CurrentVersion)
	assert.NotNil(t, fw[0].UpdatedAt)
	assert.Equal(t, "1.0", fw[1].InitialVersion)
	assert.Nil(t, fw[1].UpdatedAt)

	// Both go with the node.
	require.NoError(t, s.DeleteNode(ctx, n.UUID))
	got, err = s.BIOSSettings(ctx, n.UUID)
	require.NoError(t, err)
	assert.Empty(t, got)
	fw, err = s.FirmwareComponents(ctx, n.UUID)
	require.NoError(t, err)
	assert.Empty(t, fw)
}
