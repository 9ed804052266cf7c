package install

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	diskfs "github.com/diskfs/go-diskfs"
	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/bootchost"
	"github.com/ferric-metal/ferric/configdrive"
	"github.com/ferric-metal/ferric/deploy"
	"github.com/ferric-metal/ferric/ramdisk-agent/internal/podman"
	"github.com/ferric-metal/ferric/test/bootcimage"
	"github.com/ferric-metal/ferric/test/registrytest"
	"github.com/ferric-metal/ferric/test/testenv"
)

const testKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG1ho5E6l5kGJ8WQ2yF8k8h2QvQ0tQ2vQ3w2yF8k8h2Q ferric@test"

// need requires root and the tools, which .ci/run installs.
func need(t testing.TB, tools ...string) {
	t.Helper()
	testenv.Root(t, "the install integration test (loop devices, tmpfs, podman)")
	for _, tool := range tools {
		testenv.Tool(t, tool, "podman runc skopeo")
	}
}

type recorder struct {
	mu     sync.Mutex
	phases []string
	lines  []string
	done   int64
	total  int64
}

func (r *recorder) Phase(n string) { r.mu.Lock(); r.phases = append(r.phases, n); r.mu.Unlock() }
func (r *recorder) Bytes(d, t int64) {
	r.mu.Lock()
	if d > r.done {
		r.done = d
	}
	r.total = t
	r.mu.Unlock()
}
func (r *recorder) Line(s string) { r.mu.Lock(); r.lines = append(r.lines, s); r.mu.Unlock() }
func (r *recorder) text() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.lines, "\n")
}

type env struct {
	reg     *registrytest.Registry
	graph   string
	svc     *podman.Service
	client  *podman.Client
	logBuf  *bytes.Buffer
	log     *logrus.Entry
	devices []string
}

func mount(t testing.TB, dir, size string) {
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput()
	require.NoError(t, err, string(out))
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
}

func setup(t testing.TB) *env {
	need(t, "podman", "runc")
	e := &env{reg: registrytest.Start(t, registrytest.WithBasicAuth("robot", "s3cret-pull-token")), logBuf: &bytes.Buffer{}}
	l := logrus.New()
	l.SetOutput(io.MultiWriter(e.logBuf, testWriter{t}))
	l.SetLevel(logrus.DebugLevel)
	e.log = logrus.NewEntry(l)
	dir := t.TempDir()
	e.graph = filepath.Join(dir, "graph")
	require.NoError(t, os.MkdirAll(e.graph, 0o700))
	mount(t, e.graph, "2g")                  // container storage in memory, as in the ramdisk
	short, err := os.MkdirTemp("/tmp", "fp") // podman refuses a run root longer than 50 characters
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(short) })
	svc, err := podman.StartService(context.Background(), podman.ServiceConfig{Dir: short, GraphRoot: e.graph,
		Runtime: "runc", Ulimits: []string{"nofile=1024:1024", "nproc=1024:1024"}, Insecure: []string{e.reg.Host}}, e.log)
	require.NoError(t, err)
	t.Cleanup(svc.Stop)
	e.svc = svc
	e.client, err = podman.Connect(context.Background(), svc.Socket)
	require.NoError(t, err)
	return e
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	if testing.Verbose() {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

// loopDisk attaches a sparse file of size bytes and returns the device and the file.
func (e *env) loopDisk(t testing.TB, size int64) (string, string) {
	f := filepath.Join(t.TempDir(), "disk.img")
	require.NoError(t, os.WriteFile(f, nil, 0o600))
	require.NoError(t, os.Truncate(f, size))
	out, err := exec.Command("losetup", "-f", "--show", f).CombinedOutput()
	require.NoError(t, err, string(out))
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() { exec.Command("losetup", "-d", dev).Run() })
	return dev, f
}

func (e *env) installer(dev string, budget int64) *Installer {
	return New(Config{Podman: e.client, GraphRoot: e.graph, KeysDir: e.svc.GraphRoot + "/../", TargetDevice: dev,
		MemoryBudget: budget, Insecure: []string{e.reg.Host}, Rlimits: []string{"nofile=1024:1024", "nproc=1024:1024"},
		Log: e.log, InstallTimeout: 5 * time.Minute})
}

func secret() *string {
	s := base64.StdEncoding.EncodeToString([]byte(base64.StdEncoding.EncodeToString([]byte("robot:s3cret-pull-token"))))
	return &s
}

func TestInstallOnLoopDevice(t *testing.T) {
	e := setup(t)
	digest := bootcimage.Push(t, e.reg.Host, "ferric/os", "v1", bootcimage.Options{Marker: "v1", Username: "robot", Password: "s3cret-pull-token"})
	dev, file := e.loopDisk(t, 4<<30)
	iso, err := configdrive.Build(configdrive.Drive{MetaData: map[string]any{"hostname": "n1"}}, configdrive.NodeInfo{UUID: "0862e37f-c229-4fe3-aa45-d637b29e7b5e"})
	require.NoError(t, err)
	cd, err := configdrive.Encode(iso)
	require.NoError(t, err)

	rec := &recorder{}
	res, err := e.installer(dev, 0).Run(context.Background(), deploy.BootcInstallParams{
		ImageSource:  "oci://" + e.reg.Host + "/ferric/os@" + digest,
		InstanceInfo: map[string]any{"bootc_authorized_keys": testKey, "bootc_kargs": []any{"console=ttyS0"}, "bootc_target_imgref": e.reg.Host + "/ferric/os:v1"},
		PullSecret:   secret(), ConfigDrive: &cd,
	}, nil, rec)
	require.NoError(t, err, rec.text())
	assert.Equal(t, dev, res.Device)
	assert.Equal(t, digest, res.ImageDigest)
	assert.Equal(t, int64(4096-768), res.RootSizeMiB)
	assert.Contains(t, res.ConfigDrive, "partition 3")
	var names []string
	for _, p := range res.Phases {
		names = append(names, p.Name)
	}
	assert.Equal(t, []string{"preflight", "pull", "install", "verify", "configdrive"}, names)
	assert.Contains(t, rec.text(), "Installation complete!", "bootc's output is streamed")
	assert.Greater(t, rec.done, int64(0), "pull progress was reported")

	// The layout: ESP, root of the asked size, config-2 at the very end; the reserve left room for it.
	d, err := diskfs.Open(file, diskfs.WithOpenMode(diskfs.ReadOnly))
	require.NoError(t, err)
	tbl, err := d.GetPartitionTable()
	require.NoError(t, err)
	parts := tbl.GetPartitions()
	require.Len(t, parts, 3)
	assert.Equal(t, int64(4096-768)<<20, parts[1].GetSize())
	assert.Equal(t, int64(4<<30)-33*512, parts[2].GetStart()+parts[2].GetSize(), "config drive ends at the last usable sector")
	root, err := d.GetFilesystem(2)
	require.NoError(t, err)
	keys, err := root.ReadFile("/root/.ssh/authorized_keys")
	require.NoError(t, err)
	assert.Equal(t, testKey, string(bytes.TrimRight(keys, "\x00")), "the keys reached the target")
	recJSON, err := root.ReadFile("/etc/ferric-standin.json")
	require.NoError(t, err)
	var standin struct {
		Argv         []string `json:"argv"`
		Filesystem   string   `json:"filesystem"`
		TargetImgref string   `json:"target_imgref"`
	}
	require.NoError(t, json.Unmarshal(bytes.TrimRight(recJSON, "\x00"), &standin))
	assert.Contains(t, standin.Argv, "--wipe")
	assert.Contains(t, standin.Argv, "--root-size=3328M")
	assert.Equal(t, e.reg.Host+"/ferric/os:v1", standin.TargetImgref)
	assert.Equal(t, "xfs", standin.Filesystem, "from the image's install config")
	// The stand-in's day-2 state: the installed host follows the tag and booted the digest the agent pulled.
	stateJSON, err := root.ReadFile("/var/lib/ferric-standin/state.json")
	require.NoError(t, err)
	var state struct {
		Host bootchost.Host `json:"host"`
	}
	require.NoError(t, json.Unmarshal(bytes.TrimRight(stateJSON, "\x00"), &state))
	bootedRef, bootedDigest := state.Host.BootedImage()
	assert.Equal(t, [2]string{e.reg.Host + "/ferric/os:v1", digest}, [2]string{bootedRef, bootedDigest})
	assert.Equal(t, e.reg.Host+"/ferric/os:v1", state.Host.Spec.Image.Image)
	d.Close()
	files, err := configdrive.ReadFiles(file)
	require.NoError(t, err)
	assert.Contains(t, string(files["openstack/latest/meta_data.json"]), `"hostname":"n1"`)

	// The pull secret is nowhere: not on the disk, not in the logs, not in the agent's state.
	raw, err := os.ReadFile(file)
	require.NoError(t, err)
	assert.False(t, bytes.Contains(raw, []byte("s3cret-pull-token")), "secret on the installed disk")
	assert.NotContains(t, e.logBuf.String(), "s3cret-pull-token")
	assert.NotContains(t, rec.text(), "s3cret-pull-token")
	out, _ := exec.Command("grep", "-rl", "s3cret-pull-token", filepath.Dir(e.graph)).CombinedOutput()
	assert.Empty(t, strings.TrimSpace(string(out)), "secret in podman's state or storage")
}

func TestInstallFailures(t *testing.T) {
	e := setup(t)
	noBootc := bootcimage.Push(t, e.reg.Host, "ferric/plain", "v1", bootcimage.Options{WithoutBootc: true, Username: "robot", Password: "s3cret-pull-token"})
	good := bootcimage.Push(t, e.reg.Host, "ferric/os", "v1", bootcimage.Options{Username: "robot", Password: "s3cret-pull-token"})
	wrong := base64.StdEncoding.EncodeToString([]byte("robot:wrong"))
	tests := []struct {
		name    string
		src     string
		secret  *string
		budget  int64
		ii      map[string]any
		want    string
		wantErr error
		touched bool // whether the disk may have been written
	}{
		{"image without bootc", "/ferric/plain@" + noBootc, secret(), 0, nil, "has no bootc binary", ErrNoBootc, false},
		{"memory budget too small", "/ferric/os@" + good, secret(), 64 << 20, nil, "MiB of RAM to pull and unpack", ErrPreflight, false},
		{"wrong pull secret", "/ferric/os:v1", &wrong, 0, nil, "refused credentials", ErrPull, false},
		{"unknown image", "/ferric/nope:v1", secret(), 0, nil, "not found", ErrPull, false},
		{"bad option", "/ferric/os:v1", secret(), 0, map[string]any{"bootc_kargs": "a\nb"}, "instance_info.bootc_kargs", nil, false},
		{"tpm requested without tpm", "/ferric/os@" + good, secret(), 0, map[string]any{"bootc_tpm2_luks": true}, "no TPM 2.0 device", ErrInstall, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dev, file := e.loopDisk(t, 4<<30)
			before := []byte("untouched disk marker")
			f, _ := os.OpenFile(file, os.O_RDWR, 0)
			f.WriteAt(before, 0)
			f.Close()
			rec := &recorder{}
			_, err := e.installer(dev, tc.budget).Run(context.Background(), deploy.BootcInstallParams{
				ImageSource: "oci://" + e.reg.Host + tc.src, InstanceInfo: tc.ii, PullSecret: tc.secret}, nil, rec)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			if tc.wantErr != nil {
				assert.ErrorIs(t, err, tc.wantErr)
			}
			if !tc.touched {
				got := make([]byte, len(before))
				f, _ := os.Open(file)
				f.ReadAt(got, 0)
				f.Close()
				assert.Equal(t, before, got, "the disk was not written before the failure")
			}
			assert.NotContains(t, err.Error(), "s3cret-pull-token")
		})
	}
}
