package layout

import (
	"path/filepath"
	"strings"
	"testing"

	diskfs "github.com/diskfs/go-diskfs"
	"github.com/diskfs/go-diskfs/partition/gpt"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWrite(t *testing.T) {
	for _, tc := range []struct {
		name             string
		sizeMiB          int64
		spec             Spec
		wantRootEnd      uint64 // last sector of the root partition, 0: the disk's last usable one
		wantErr          string
		wantESPEndSector uint64
	}{
		{name: "bootc's ESP, root to the end", sizeMiB: 600, spec: Spec{}, wantESPEndSector: 513*2048 - 1},
		{name: "small ESP, sized root", sizeMiB: 200, spec: Spec{ESPMiB: 64, RootMiB: 40}, wantESPEndSector: 65*2048 - 1,
			wantRootEnd: 65*2048 + 40*2048 - 1},
		{name: "root too large", sizeMiB: 200, spec: Spec{ESPMiB: 64, RootMiB: 200}, wantErr: "too small for a 64 MiB ESP"},
		{name: "ESP too large", sizeMiB: 200, spec: Spec{}, wantErr: "too small for a 512 MiB ESP"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "disk.raw")
			d, err := diskfs.Create(p, tc.sizeMiB<<20, diskfs.SectorSizeDefault)
			require.NoError(t, err)
			var said []string
			tc.spec.ESP = map[string][]byte{"/EFI/BOOT/BOOTX64.EFI": []byte("efi"), "/loader/entries/os.conf": []byte("title x\n")}
			tc.spec.Root = map[string][]byte{"/root/.ssh/authorized_keys": []byte("ssh-ed25519 AAAA k\n")}
			tc.spec.Say = func(s string) { said = append(said, s) }
			err = Write(d, tc.spec)
			require.NoError(t, d.Close())
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, []string{"Initializing partitions", "Creating ESP filesystem", "Installed 2 files to the ESP",
				"Creating root filesystem"}, said)

			d, err = diskfs.Open(p, diskfs.WithOpenMode(diskfs.ReadOnly))
			require.NoError(t, err)
			defer d.Close()
			tbl, err := d.GetPartitionTable()
			require.NoError(t, err)
			g := tbl.(*gpt.Table)
			require.NoError(t, g.Verify(d.Backend, uint64(d.Size)))
			require.Len(t, g.Partitions, 2)
			assert.Equal(t, uint64(2048), g.Partitions[0].Start)
			assert.Equal(t, tc.wantESPEndSector, g.Partitions[0].End)
			assert.Equal(t, gpt.EFISystemPartition, g.Partitions[0].Type)
			assert.Equal(t, "root", g.Partitions[1].Name)
			assert.Equal(t, tc.wantESPEndSector+1, g.Partitions[1].Start)
			wantEnd := tc.wantRootEnd
			if wantEnd == 0 {
				wantEnd = uint64(tc.sizeMiB<<20)/512 - gptTailSectors
			}
			assert.Equal(t, wantEnd, g.Partitions[1].End)
			for _, c := range []struct {
				part       int
				path, want string
			}{{1, "/EFI/BOOT/BOOTX64.EFI", "efi"}, {1, "/loader/entries/os.conf", "title x\n"},
				{2, "/root/.ssh/authorized_keys", "ssh-ed25519 AAAA k\n"}} {
				fs, err := d.GetFilesystem(c.part)
				require.NoError(t, err)
				b, err := fs.ReadFile(c.path)
				require.NoError(t, err, c.path)
				assert.Equal(t, c.want, strings.TrimRight(string(b), "\x00"), c.path)
			}
			root, err := d.GetFilesystem(2)
			require.NoError(t, err)
			assert.Equal(t, "root", strings.TrimSpace(root.Label()))
			etc, err := root.ReadDir("etc") // io/fs paths: no leading slash
			require.NoError(t, err, "the root filesystem has /etc even with no file in it")
			assert.Empty(t, etc)
		})
	}
}
