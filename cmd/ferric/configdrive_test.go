package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	diskfs "github.com/diskfs/go-diskfs"
	"github.com/diskfs/go-diskfs/partition/gpt"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestConfigdriveCommands(t *testing.T) {
	dir := t.TempDir()
	drive := filepath.Join(dir, "drive.json")
	require.NoError(t, os.WriteFile(drive, []byte(`{"meta_data":{"uuid":"0862e37f-c229-4fe3-aa45-d637b29e7b5e","hostname":"h1"},"user_data":"#cloud-config\n"}`), 0o600))
	cmd := func(args ...string) (string, error) {
		var out, errb bytes.Buffer
		err := run(context.Background(), args, &out, &errb)
		return out.String(), err
	}
	iso := filepath.Join(dir, "drive.iso")
	_, err := cmd("configdrive", "build", "--from", drive, "-o", iso)
	require.NoError(t, err)
	enc := filepath.Join(dir, "drive.b64")
	_, err = cmd("configdrive", "build", "--from", drive, "-o", enc, "--encode")
	require.NoError(t, err)
	out, err := cmd("configdrive", "show", iso)
	require.NoError(t, err)
	assert.Contains(t, out, "openstack/latest/meta_data.json")
	assert.Contains(t, out, `"hostname":"h1"`)

	disk := filepath.Join(dir, "disk.img")
	d, err := diskfs.Create(disk, 1<<30, diskfs.SectorSizeDefault)
	require.NoError(t, err)
	require.NoError(t, d.Partition(&gpt.Table{LogicalSectorSize: 512, PhysicalSectorSize: 512, ProtectiveMBR: true,
		Partitions: []*gpt.Partition{{Index: 1, Start: 2048, End: 1048575, Type: gpt.LinuxFilesystem}}}))
	d.Close()
	out, err = cmd("configdrive", "write", disk, enc)
	require.NoError(t, err, "the string form is accepted")
	assert.Contains(t, out, "partition 2 (iso9660")
	out, err = cmd("configdrive", "show", disk)
	require.NoError(t, err)
	assert.Contains(t, out, "openstack/2012-08-10/user_data")

	_, err = cmd("configdrive", "build", "-o", iso)
	assert.ErrorContains(t, err, "--from")
	_, err = cmd("configdrive", "write", disk)
	assert.ErrorContains(t, err, "DEVICE and IMAGE")
}
