package install

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/configdrive"
	"github.com/ferric-metal/ferric/deploy"
	"github.com/ferric-metal/ferric/ramdisk-agent/internal/hardware"
	"github.com/ferric-metal/ferric/ramdisk-agent/internal/podman"
	"github.com/ferric-metal/ferric/test/bootcimage"
	"github.com/ferric-metal/ferric/test/registrytest"
)

// fakeRuntime stands in for podman: it records the pulls and runs asked of it. Run is the first destructive step
// (bootc install to-disk --wipe), so a refusal that must leave the disk untouched must never reach it.
type fakeRuntime struct {
	mu      sync.Mutex
	digest  string // RepoDigests of every pull end in @digest
	size    int64  // unpacked size reported by a pull
	arch    string // architecture reported by a pull
	pulls   []podman.PullOptions
	runs    int
	runCode int
}

func (f *fakeRuntime) Pull(_ context.Context, ref string, o podman.PullOptions) (*podman.PullResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pulls = append(f.pulls, o)
	return &podman.PullResult{ID: "0123abcd", RepoDigests: []string{ref}, Size: f.size, Arch: f.arch}, nil
}

func (f *fakeRuntime) Run(context.Context, podman.RunSpec) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.runs++
	return f.runCode, nil
}

// fakeSys writes a sysfs tree with one 4 GiB disk, vda (the default choice: the smallest disk of at least 4 GiB).
func fakeSys(t *testing.T) hardware.Source {
	root := t.TempDir()
	dir := filepath.Join(root, "sys/block/vda")
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "queue"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "size"), []byte("8388608\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "queue/logical_block_size"), []byte("512\n"), 0o644))
	return hardware.Source{Root: root}
}

func gzipBase64(t *testing.T, data []byte) string {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	_, err := zw.Write(data)
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	return base64.StdEncoding.EncodeToString(b.Bytes())
}

// TestPreflightRefusals: each check that can fail does so before bootc runs (no Run), and the config drive and
// platform checks before anything is pulled (no Pull), with a message naming the field, the sizes and the fix.
func TestPreflightRefusals(t *testing.T) {
	reg := registrytest.Start(t)
	digest := bootcimage.Push(t, reg.Host, "ferric/os", "v1", bootcimage.Options{WithoutBootc: true, Marker: "unit"})
	iso, err := configdrive.Build(configdrive.Drive{MetaData: map[string]any{"hostname": "n1"}}, configdrive.NodeInfo{UUID: "0862e37f-c229-4fe3-aa45-d637b29e7b5e"})
	require.NoError(t, err)
	goodDrive, err := configdrive.Encode(iso)
	require.NoError(t, err)
	// A server that never answers in time: the download must give up at ConfigDriveTimeout.
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	}))
	t.Cleanup(slow.Close)

	const gib = int64(1) << 30
	tests := []struct {
		name      string
		drive     string
		ii        map[string]any
		platform  string
		size      int64  // unpacked size the pull reports
		arch      string // architecture the pull reports
		want      []string
		wantPulls int
	}{
		{name: "garbage base64 config drive", drive: "this is not base64!",
			want: []string{"configdrive", "neither a URL nor base64"}},
		{name: "oversize config drive", drive: gzipBase64(t, make([]byte, configdrive.MaxImageSize+1)),
			want: []string{"configdrive", "larger than the limit of 67108864 bytes"}},
		{name: "config drive that is no filesystem", drive: gzipBase64(t, []byte("#cloud-config\n")),
			want: []string{"configdrive", "neither ISO 9660 nor vfat"}},
		{name: "config drive URL that times out", drive: slow.URL + "/drive.gz",
			want: []string{"configdrive", "download config drive"}},
		{name: "reserve leaves no room for the config drive", drive: goodDrive, ii: map[string]any{"bootc_root_reserve_mib": 300},
			want: []string{"needs 65 MiB at the end of the disk", "bootc_root_reserve_mib=300 leaves 0 MiB", "at least 579"}},
		{name: "reserve a little short", drive: goodDrive, ii: map[string]any{"bootc_root_reserve_mib": 578},
			want: []string{"needs 65 MiB", "leaves 64 MiB"}},
		{name: "image for another architecture", platform: "linux/arm64",
			want: []string{"pinned for linux/arm64", "this machine is amd64", "properties.cpu_arch"}},
		{name: "malformed image_platform", platform: "arm64",
			want: []string{`image_platform "arm64" is not os/arch`}},
		{name: "image larger than the root", size: 4 * gib, wantPulls: 1,
			want: []string{"unpacks to 4096 MiB", "would be 3328 MiB", "4096 MiB disk minus bootc_root_reserve_mib 768", "use a disk of at least 4864 MiB"}},
		{name: "image a little larger than the root", size: 3328<<20 + 1, wantPulls: 1,
			want: []string{"unpacks to 3329 MiB", "would be 3328 MiB", "or set bootc_root_reserve_mib to at most 767"}},
		{name: "pulled image of another architecture", arch: "arm64", wantPulls: 1,
			want: []string{"built for arm64 but the node needs amd64"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rt := &fakeRuntime{digest: digest, size: tc.size, arch: tc.arch}
			if rt.size == 0 {
				rt.size = 10 << 20
			}
			in := New(Config{Podman: rt, GraphRoot: t.TempDir(), KeysDir: t.TempDir(), Hardware: fakeSys(t), MemoryBudget: 8 * gib,
				Insecure: []string{reg.Host}, HostArch: "amd64", ConfigDriveTimeout: 300 * time.Millisecond, Log: testLog(t)})
			params := deploy.BootcInstallParams{ImageSource: "oci://" + reg.Host + "/ferric/os@" + digest, InstanceInfo: tc.ii, ImagePlatform: tc.platform}
			if tc.drive != "" {
				params.ConfigDrive = &tc.drive
			}
			_, err := in.Run(context.Background(), params, nil, &recorder{})
			require.Error(t, err)
			assert.ErrorIs(t, err, ErrPreflight)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
			assert.Len(t, rt.pulls, tc.wantPulls, "pulls before the refusal")
			assert.Zero(t, rt.runs, "bootc install (the disk wipe) ran before the refusal")
		})
	}
}

// TestPreflightPasses: a good config drive and a fitting image reach the install, the pull asks podman for the
// node's platform, and the failure that follows (a disk without partitions, as the fake wrote nothing) comes only
// after bootc ran: the checks above do not refuse good input.
func TestPreflightPasses(t *testing.T) {
	reg := registrytest.Start(t)
	digest := bootcimage.Push(t, reg.Host, "ferric/os", "v1", bootcimage.Options{WithoutBootc: true, Marker: "unit"})
	iso, err := configdrive.Build(configdrive.Drive{MetaData: map[string]any{"hostname": "n1"}}, configdrive.NodeInfo{UUID: "0862e37f-c229-4fe3-aa45-d637b29e7b5e"})
	require.NoError(t, err)
	drive, err := configdrive.Encode(iso)
	require.NoError(t, err)
	rt := &fakeRuntime{digest: digest, size: 3328 << 20, arch: "amd64"}
	in := New(Config{Podman: rt, GraphRoot: t.TempDir(), KeysDir: t.TempDir(), Hardware: fakeSys(t), MemoryBudget: 8 << 30,
		Insecure: []string{reg.Host}, HostArch: "amd64", Log: testLog(t)})
	_, err = in.Run(context.Background(), deploy.BootcInstallParams{ImageSource: "oci://" + reg.Host + "/ferric/os@" + digest,
		ConfigDrive: &drive, ImagePlatform: "linux/amd64"}, nil, &recorder{})
	require.ErrorIs(t, err, ErrNoPartitions)
	require.Len(t, rt.pulls, 1)
	assert.Equal(t, "linux", rt.pulls[0].OS)
	assert.Equal(t, "amd64", rt.pulls[0].Arch)
	assert.Equal(t, 1, rt.runs)
}

func testLog(t *testing.T) *logrus.Entry {
	l := logrus.New()
	l.SetOutput(io.Discard)
	if testing.Verbose() {
		l.SetOutput(testWriter{t})
	}
	return logrus.NewEntry(l)
}
