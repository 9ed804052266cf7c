package main

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/images/ramdisk"
)

// TestVolumeLabel reads the label of a real ferric-cfg ISO (as the conductor's virtual media is built) and of an
// ESP; volumeLabel duplicates configdrive.Detect's offsets, so this pins them to real images.
func TestVolumeLabel(t *testing.T) {
	esp, err := ramdisk.FATImage(map[string][]byte{"/EFI/BOOT/BOOTX64.EFI": []byte("x")})
	require.NoError(t, err)
	iso, err := ramdisk.BootISO(esp, mediaLabel, map[string][]byte{"/network_data.json": []byte("{}")})
	require.NoError(t, err)
	for _, tc := range []struct {
		name string
		img  []byte
		want string
	}{
		{name: "ferric-cfg ISO", img: iso, want: "ferric-cfg"},
		{name: "empty disk", img: make([]byte, 1<<20), want: ""},
		{name: "short read", img: []byte("CD001"), want: ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, volumeLabel(bytes.NewReader(tc.img)))
		})
	}
	assert.Equal(t, "FERRICBOOT", volumeLabel(bytes.NewReader(esp)), "the FAT32 ESP's label (set by ramdisk.FATImage)")
}
