package configdrive

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	diskfs "github.com/diskfs/go-diskfs"
	"github.com/diskfs/go-diskfs/partition/gpt"
	"github.com/diskfs/go-diskfs/partition/mbr"
	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/test/testenv"
)

func testLog() *logrus.Entry {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return logrus.NewEntry(l)
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	require.NoError(t, err, "%s %s: %s", name, strings.Join(args, " "), out)
	return string(out)
}

// bootcDisk makes a sparse disk image laid out as bootc leaves it: GPT, a 512 MiB ESP, and a root partition
// ending reserve bytes before the end of the disk.
func bootcDisk(t *testing.T, size, reserve int64, ss int64) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "disk.img")
	d, err := diskfs.Create(p, size, diskfs.SectorSize(ss))
	require.NoError(t, err)
	mib := uint64(1<<20) / uint64(ss)
	rootEnd := uint64(size-reserve)/uint64(ss) - 1
	require.NoError(t, d.Partition(&gpt.Table{LogicalSectorSize: int(ss), PhysicalSectorSize: int(ss), ProtectiveMBR: true,
		Partitions: []*gpt.Partition{
			{Index: 1, Start: mib, End: 513*mib - 1, Type: gpt.EFISystemPartition, Name: "EFI-SYSTEM"},
			{Index: 2, Start: 513 * mib, End: rootEnd, Type: gpt.LinuxRootX86_64, Name: "root"},
		}}))
	// Some recognisable data in the partitions, to prove they are untouched.
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	require.NoError(t, err)
	_, err = f.WriteAt([]byte("ESP-DATA"), int64(mib)*ss)
	require.NoError(t, err)
	_, err = f.WriteAt([]byte("ROOT-DATA-AT-END"), int64(rootEnd)*ss)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	d.Close()
	return p
}

// hashRange returns the sha256 of [from, to) of a file.
func hashRange(t *testing.T, p string, from, to int64) [32]byte {
	f, err := os.Open(p)
	require.NoError(t, err)
	defer f.Close()
	h := sha256.New()
	_, err = io.Copy(h, io.NewSectionReader(f, from, to-from))
	require.NoError(t, err)
	var out [32]byte
	copy(out[:], h.Sum(nil))
	return out
}

func TestWriteGPTImage(t *testing.T) {
	sgdisk := testenv.Tool(t, "sgdisk", "gdisk")
	const size = 3 << 30
	disk := bootcDisk(t, size, 768<<20, 512)
	iso, err := Build(typicalDrive(), node)
	require.NoError(t, err)
	// Everything from the end of the primary GPT to the start of the free space must stay as it was.
	before := hashRange(t, disk, 34*512, size-768<<20)

	res, err := WritePartition(context.Background(), disk, iso, testLog())
	require.NoError(t, err)
	assert.Equal(t, 3, res.Partition)
	assert.Equal(t, KindISO, res.Format)
	assert.False(t, res.Reused)
	assert.GreaterOrEqual(t, res.Size, int64(PartitionSize))
	assert.Equal(t, int64(size-33*512), res.Start+res.Size, "the partition ends at the last usable sector")
	assert.Equal(t, before, hashRange(t, disk, 34*512, size-768<<20), "nothing outside the new partition changed")
	out := run(t, sgdisk, "-v", disk)
	assert.Contains(t, out, "No problems found")

	files, err := ReadFiles(disk)
	require.NoError(t, err)
	want, _ := Files(typicalDrive(), node)
	assert.Equal(t, want, files)

	// Writing again reuses the partition.
	res2, err := WritePartition(context.Background(), disk, iso, testLog())
	require.NoError(t, err)
	assert.True(t, res2.Reused)
	assert.Equal(t, res.Start, res2.Start)
	assert.Contains(t, run(t, sgdisk, "-v", disk), "No problems found")
}

func TestWriteGrownDisk(t *testing.T) {
	sgdisk := testenv.Tool(t, "sgdisk", "gdisk")
	disk := bootcDisk(t, 3<<30, 768<<20, 512)
	require.NoError(t, os.Truncate(disk, 4<<30)) // the image was written to a bigger disk
	iso, err := Build(typicalDrive(), node)
	require.NoError(t, err)
	res, err := WritePartition(context.Background(), disk, iso, testLog())
	require.NoError(t, err)
	assert.Equal(t, int64(4<<30-33*512), res.Start+res.Size, "backup GPT moved to the true end, partition at the end")
	assert.Contains(t, run(t, sgdisk, "-v", disk), "No problems found")
}

func TestWriteErrors(t *testing.T) {
	iso, err := Build(typicalDrive(), node)
	require.NoError(t, err)
	ctx := context.Background()

	full := bootcDisk(t, 1<<30, 1<<20, 512)
	_, err = WritePartition(ctx, full, iso, testLog())
	require.ErrorIs(t, err, ErrNoSpace)
	assert.Contains(t, err.Error(), "needs 64 MiB free at the end")
	assert.Contains(t, err.Error(), "KiB are free")

	// Two config-2 partitions: refuse.
	two := bootcDisk(t, 2<<30, 768<<20, 512)
	d, err := diskfs.Open(two)
	require.NoError(t, err)
	tbl, err := d.GetPartitionTable()
	require.NoError(t, err)
	gt := tbl.(*gpt.Table)
	last := gt.LastDataSector()
	gt.Partitions = append(gt.Partitions,
		&gpt.Partition{Index: 3, Start: last - 2*131072 + 1, End: last - 131072, Type: gpt.LinuxFilesystem},
		&gpt.Partition{Index: 4, Start: last - 131072 + 1, End: last, Type: gpt.LinuxFilesystem})
	require.NoError(t, d.Partition(gt))
	d.Close()
	f, err := os.OpenFile(two, os.O_RDWR, 0)
	require.NoError(t, err)
	for _, start := range []uint64{last - 2*131072 + 1, last - 131072 + 1} {
		_, err = f.WriteAt(iso, int64(start)*512)
		require.NoError(t, err)
	}
	f.Close()
	_, err = WritePartition(ctx, two, iso, testLog())
	assert.ErrorContains(t, err, "2 partitions labelled config-2 (partitions 3, 4)")

	_, err = WritePartition(ctx, full, []byte("not an image at all"), testLog())
	assert.ErrorContains(t, err, "neither ISO 9660 nor vfat")
}

func TestWriteMBR(t *testing.T) {
	ctx := context.Background()
	iso, err := Build(typicalDrive(), node)
	require.NoError(t, err)
	mk := func(parts int) string {
		p := filepath.Join(t.TempDir(), "mbr.img")
		d, err := diskfs.Create(p, 1<<30, diskfs.SectorSizeDefault)
		require.NoError(t, err)
		tbl := &mbr.Table{LogicalSectorSize: 512, PhysicalSectorSize: 512}
		for i := 0; i < parts; i++ {
			tbl.Partitions = append(tbl.Partitions, &mbr.Partition{Type: mbr.Linux, Start: uint32(2048 + i*204800), Size: 204800})
		}
		require.NoError(t, d.Partition(tbl))
		d.Close()
		return p
	}
	res, err := WritePartition(ctx, mk(2), iso, testLog())
	require.NoError(t, err)
	assert.Equal(t, "mbr", res.Table)
	assert.Equal(t, 3, res.Partition)
	assert.Equal(t, int64(1<<30), res.Start+res.Size)
	_, err = WritePartition(ctx, mk(4), iso, testLog())
	assert.ErrorContains(t, err, "cannot take a fifth")
}

// losetup attaches a file (or a slice of it) and returns the device.
func losetup(t *testing.T, args ...string) string {
	t.Helper()
	dev := strings.TrimSpace(run(t, "losetup", append([]string{"-f", "--show"}, args...)...))
	t.Cleanup(func() { exec.Command("losetup", "-d", dev).Run() })
	return dev
}

func TestLoopDevices(t *testing.T) {
	testenv.Root(t, "attaching loop devices")
	blkid := testenv.Tool(t, "blkid", "util-linux")
	fsck := testenv.Tool(t, "fsck.fat", "dosfstools")
	sgdisk := testenv.Tool(t, "sgdisk", "gdisk")
	iso, err := Build(typicalDrive(), node)
	require.NoError(t, err)
	tests := []struct {
		name       string
		ss         int64
		wantFormat Kind
		wantBlkid  string
	}{
		{"512-byte sectors get iso9660", 512, KindISO, `LABEL="config-2"`},
		{"4096-byte sectors get vfat", 4096, KindVFAT, `LABEL="CONFIG-2"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			img := bootcDisk(t, 3<<30, 768<<20, tc.ss)
			dev := losetup(t, "--sector-size", fmt.Sprint(tc.ss), img)
			res, err := WritePartition(context.Background(), dev, iso, testLog())
			require.NoError(t, err)
			assert.Equal(t, tc.wantFormat, res.Format)
			assert.Equal(t, tc.ss, res.SectorSize)
			part := losetup(t, "--sector-size", fmt.Sprint(tc.ss), "-o", fmt.Sprint(res.Start), "--sizelimit", fmt.Sprint(res.Size), img)
			out := run(t, blkid, "-p", part)
			assert.Contains(t, out, tc.wantBlkid)
			assert.Contains(t, out, `TYPE="`+string(tc.wantFormat)+`"`)
			if tc.wantFormat == KindVFAT {
				out := run(t, fsck, "-n", part)
				assert.NotContains(t, out, "clusters but only space", "the FAT is sound at the partition size used")
			}
			sgOut, _ := exec.Command(sgdisk, "-v", dev).CombinedOutput()
			assert.Contains(t, string(sgOut), "No problems found")
			files, err := ReadFiles(img)
			if tc.ss == 512 {
				require.NoError(t, err)
				want, _ := Files(typicalDrive(), node)
				assert.Equal(t, want, files)
			}
		})
	}
}

// TestCloudInitReads hands the drive to Debian's cloud-init ConfigDrive reader, as a booted machine would.
func TestCloudInitReads(t *testing.T) {
	py := "/usr/bin/python3"
	testenv.File(t, "/usr/lib/python3/dist-packages/cloudinit", "--no-install-recommends cloud-init")
	disk := bootcDisk(t, 2<<30, 768<<20, 512)
	iso, err := Build(typicalDrive(), node)
	require.NoError(t, err)
	_, err = WritePartition(context.Background(), disk, iso, testLog())
	require.NoError(t, err)
	files, err := ReadFiles(disk)
	require.NoError(t, err)
	root := t.TempDir()
	for p, b := range files {
		require.NoError(t, os.MkdirAll(filepath.Join(root, filepath.Dir(p)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(root, p), b, 0o644))
	}
	script := `
import json, sys
from cloudinit.sources.DataSourceConfigDrive import read_config_drive
from cloudinit.sources import normalize_pubkey_data
from cloudinit.sources.helpers import openstack
r = read_config_drive(sys.argv[1])
md = r["metadata"]
print(json.dumps({"instance_id": md["instance-id"], "hostname": md.get("local-hostname"),
  "keys": normalize_pubkey_data(md.get("public_keys")), "userdata": r["userdata"].decode() if isinstance(r["userdata"], bytes) else r["userdata"],
  "network": openstack.convert_net_json(r["networkdata"], known_macs={"52:54:00:12:34:56": "eth0"}), "vendordata2": r.get("vendordata2")}, default=str))
`
	out, err := exec.Command(py, "-c", script, root).CombinedOutput()
	require.NoError(t, err, string(out))
	var got struct {
		InstanceID string         `json:"instance_id"`
		Hostname   string         `json:"hostname"`
		Keys       []string       `json:"keys"`
		Userdata   string         `json:"userdata"`
		Network    map[string]any `json:"network"`
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	require.NoError(t, json.Unmarshal([]byte(lines[len(lines)-1]), &got), string(out))
	assert.Equal(t, node.UUID, got.InstanceID)
	assert.Equal(t, "node-1.example", got.Hostname)
	assert.Equal(t, []string{"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG1ho5E6l5kGJ8WQ2yF8k8h2QvQ0 user@host"}, got.Keys)
	assert.Equal(t, "#cloud-config\ndisable_root: false\n", got.Userdata)
	assert.Contains(t, fmt.Sprint(got.Network), "52:54:00:12:34:56", "network config converted from network_data.json")
}
