package hostconfig

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/bootchost"
	"github.com/ferric-metal/ferric/test/testenv"
)

var good = bootchost.HostConfig{ConductorURL: "https://conductor:6385", NodeUUID: "n-1", Credential: "s3cret"}

func TestLoad(t *testing.T) {
	for _, tc := range []struct {
		name string
		mode os.FileMode
		body string
		want string
	}{
		{"0600 is read", 0o600, "", ""},
		{"0400 is read", 0o400, "", ""},
		{"group readable", 0o640, "", "run `chmod 600"},
		{"world writable", 0o602, "", "mode 0602"},
		{"not json", 0o600, "{", "not a ferric-hostd configuration"},
		{"no node", 0o600, `{"conductor_url":"https://c","credential":"x"}`, "node_uuid is empty"},
		{"not a URL", 0o600, `{"conductor_url":"c:6385","node_uuid":"n","credential":"x"}`, "not an http(s) URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "hostd.json")
			body := tc.body
			if body == "" {
				b, _ := json.Marshal(good)
				body = string(b)
			}
			require.NoError(t, os.WriteFile(p, []byte(body), tc.mode))
			require.NoError(t, os.Chmod(p, tc.mode))
			hc, err := Load(p)
			if tc.want != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.want)
				assert.NotContains(t, err.Error(), "s3cret")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, good, hc)
		})
	}
}

func TestSaveReplacesWith0600(t *testing.T) {
	p := filepath.Join(t.TempDir(), "etc", "hostd.json")
	require.NoError(t, Save(p, good))
	require.NoError(t, os.Chmod(p, 0o644))
	next := good
	next.Credential = "rotated"
	require.NoError(t, Save(p, next))
	fi, err := os.Stat(p)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "the replaced file has the new file's mode")
	hc, err := Load(p)
	require.NoError(t, err)
	assert.Equal(t, "rotated", hc.Credential)
	left, _ := filepath.Glob(filepath.Join(filepath.Dir(p), ".hostd-*"))
	assert.Empty(t, left, "no temporary file is left")
}

// TestFromConfigDrive mounts a real config drive through a loop device and a by-label link (upper-case first, as
// ISO 9660 reports the label, then lower-case). It needs root and loop devices.
func TestFromConfigDrive(t *testing.T) {
	testenv.Root(t, "mounting a config drive")
	for tool, pkg := range map[string]string{"mkfs.ext4": "e2fsprogs", "losetup": "util-linux", "mount": "mount"} {
		testenv.Tool(t, tool, pkg)
	}
	dir := t.TempDir()
	b, err := json.Marshal(good)
	require.NoError(t, err)
	dev := makeDrive(t, dir, b)
	byLabel := filepath.Join(dir, "by-label")
	require.NoError(t, os.MkdirAll(byLabel, 0o755))
	require.NoError(t, os.Symlink(dev, filepath.Join(byLabel, "CONFIG-2")))

	path := filepath.Join(dir, "etc/ferric/hostd.json")
	hc, fromDrive, err := LoadOrInstall(context.Background(), path, byLabel)
	require.NoError(t, err)
	assert.True(t, fromDrive)
	assert.Equal(t, good, hc)
	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	mounts, err := os.ReadFile("/proc/self/mounts")
	require.NoError(t, err)
	assert.NotContains(t, string(mounts), "ferric-hostd-cd-", "the drive is unmounted")

	// The second start reads the copy, not the drive.
	_, fromDrive, err = LoadOrInstall(context.Background(), path, byLabel)
	require.NoError(t, err)
	assert.False(t, fromDrive)

	// A drive without the file: the error says what to check.
	empty := makeDrive(t, dir, nil)
	require.NoError(t, os.Remove(filepath.Join(byLabel, "CONFIG-2")))
	require.NoError(t, os.Symlink(empty, filepath.Join(byLabel, "config-2")))
	_, err = FromConfigDrive(context.Background(), byLabel, filepath.Join(dir, "other.json"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "has no ferric/hostd.json")
}

// makeDrive makes an 8 MiB filesystem labelled config-2 holding ferric/hostd.json (when content is not nil) and
// attaches it to a loop device, detached at the end of the test. Real config drives are ISO 9660 or vfat; this
// machine's kernel mounts neither, so the drive is ext4 (mkfs.ext4 -d fills it without a mount). hostd mounts
// with the type detected, so the code path is the same.
func makeDrive(t *testing.T, dir string, content []byte) string {
	f, err := os.CreateTemp(dir, "drive-*.img")
	require.NoError(t, err)
	require.NoError(t, f.Truncate(8<<20))
	require.NoError(t, f.Close())
	src, err := os.MkdirTemp(dir, "src-")
	require.NoError(t, err)
	if content != nil {
		require.NoError(t, os.MkdirAll(filepath.Join(src, "ferric"), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(src, "ferric/hostd.json"), content, 0o600))
	}
	out, err := exec.Command("mkfs.ext4", "-q", "-F", "-L", "config-2", "-d", src, f.Name()).CombinedOutput()
	require.NoError(t, err, "mkfs.ext4: %s", out)
	out, err = exec.Command("losetup", "--find", "--show", "--read-only", f.Name()).CombinedOutput()
	if err != nil {
		testenv.Missing(t, "no loop device: %v: %s", err, out)
	}
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() { exec.Command("losetup", "-d", dev).Run() })
	return dev
}
