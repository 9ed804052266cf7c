package hostdeploy_test

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	diskfs "github.com/diskfs/go-diskfs"
	"github.com/diskfs/go-diskfs/partition/gpt"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/nodes"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/configdrive"
	"github.com/ferric-metal/ferric/test/bootcimage"
)

// markDisk writes a GPT with one partition and a known pattern into the rest of the first MiB of dev (through the
// device, as the agent writes it), and returns the first and last MiB (the primary and backup GPT) as written.
func markDisk(t *testing.T, dev string) (head, tail []byte) {
	t.Helper()
	d, err := diskfs.Open(dev)
	require.NoError(t, err)
	const mib = 1 << 20 / 512
	tbl := &gpt.Table{LogicalSectorSize: 512, PhysicalSectorSize: 512, ProtectiveMBR: true,
		Partitions: []*gpt.Partition{{Index: 1, Start: mib, End: 100*mib - 1, Type: gpt.LinuxFilesystem, Name: "precious"}}}
	rw, err := d.Backend.Writable()
	require.NoError(t, err)
	// Table.Write, not Disk.Partition: loop devices without partition scanning refuse the re-read that follows.
	require.NoError(t, tbl.Write(rw, d.Size))
	require.NoError(t, d.Close())
	f, err := os.OpenFile(dev, os.O_RDWR, 0)
	require.NoError(t, err)
	defer f.Close()
	pattern := bytes.Repeat([]byte("ferric-untouched "), (1<<20-34*512)/17)
	_, err = f.WriteAt(pattern, 34*512)
	require.NoError(t, err)
	require.NoError(t, f.Sync())
	return readEnds(t, dev)
}

// readEnds returns the first and last MiB of dev.
func readEnds(t *testing.T, dev string) (head, tail []byte) {
	t.Helper()
	f, err := os.Open(dev)
	require.NoError(t, err)
	defer f.Close()
	size, err := f.Seek(0, 2)
	require.NoError(t, err)
	head, tail = make([]byte, 1<<20), make([]byte, 1<<20)
	_, err = f.ReadAt(head, 0)
	require.NoError(t, err)
	_, err = f.ReadAt(tail, size-1<<20)
	require.NoError(t, err)
	return head, tail
}

// TestBadConfigDriveLeavesDiskUntouched: a deploy whose config drive cannot be written fails before the agent's
// first destructive step (`bootc install to-disk --wipe`), so the disk keeps its partition table and data byte for
// byte. Before the preflight checked the drive, the disk was wiped and installed first and the drive failed last.
func TestBadConfigDriveLeavesDiskUntouched(t *testing.T) {
	r := newRig(t)
	r.push(t, "ferric/os", "stable", bootcimage.Options{Marker: "v1"})
	var oversize bytes.Buffer
	zw := gzip.NewWriter(&oversize)
	_, err := zw.Write(make([]byte, configdrive.MaxImageSize+1<<20))
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	tests := []struct {
		name  string
		drive any
		ii    map[string]any
		want  string
	}{
		// Base64 the API accepts, of bytes that are no config-2 filesystem.
		{"not a filesystem", base64.StdEncoding.EncodeToString([]byte("#cloud-config\nhostname: x\n")), nil, "neither ISO 9660 nor vfat"},
		{"oversize drive", base64.StdEncoding.EncodeToString(oversize.Bytes()), nil, "larger than the limit"},
		{"no room in the reserve", nodes.ConfigDrive{MetaData: map[string]any{"hostname": "x"}},
			map[string]any{"bootc_root_reserve_mib": 300}, "bootc_root_reserve_mib=300 leaves 0 MiB"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dev, _ := loop(t, 3<<30)
			n := r.enroll(t, fmt.Sprintf("cd-%d", i), dev, nil) // cleaning wipes the disk: mark it afterwards
			head, tail := markDisk(t, dev)
			ii := map[string]any{"image_pull_secret": user + ":" + pass}
			for k, v := range tc.ii {
				ii[k] = v
			}
			r.deploy(t, n.UUID, "oci://"+r.reg.Host+"/ferric/os:stable", nodes.TargetActive, ii, tc.drive)
			got := r.wait(t, n.UUID, "deploy failed", 3*time.Minute)
			assert.Contains(t, strings.ToLower(got.LastError), "config")
			assert.Contains(t, got.LastError, tc.want)
			text := r.logText(t, n.UUID)
			assert.NotContains(t, text, "running bootc install", "bootc never ran")
			assert.NotContains(t, text, "pulled ", "the drive is checked before the pull")
			h2, t2 := readEnds(t, dev)
			assert.True(t, bytes.Equal(head, h2), "the first MiB (protective MBR, primary GPT, data) is unchanged")
			assert.True(t, bytes.Equal(tail, t2), "the last MiB (backup GPT) is unchanged")
			d, err := diskfs.Open(dev, diskfs.WithOpenMode(diskfs.ReadOnly))
			require.NoError(t, err)
			defer d.Close()
			tbl, err := d.GetPartitionTable()
			require.NoError(t, err)
			require.Len(t, tbl.GetPartitions(), 1)
			assert.Equal(t, "precious", tbl.GetPartitions()[0].Label())
		})
	}
}
