package directdeploy

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/conductor/internal/artifact"
	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/driver/agentdeploy"
	"github.com/ferric-metal/ferric/conductor/internal/steps"
	"github.com/ferric-metal/ferric/conductor/internal/store"
	"github.com/ferric-metal/ferric/deploy"
	"github.com/ferric-metal/ferric/images"
	"github.com/ferric-metal/ferric/test/bootcimage"
	"github.com/ferric-metal/ferric/test/certtest"
	"github.com/ferric-metal/ferric/test/diskimagetest"
	"github.com/ferric-metal/ferric/test/registrytest"
)

const (
	sha256Disk = "1044dec7206e8d7c9fbb4ae8f766668406d2567fc7fc1a160a9d4700fcf8f8e9" // sha256("disk")
	md5Disk    = "0ba3a8ad2e9ca9b0a1a5bb7d3b3a5d3c"
	nodeUUID   = "1be26c0b-03f2-4d2e-ae87-c02d7f33c123"
)

func quietLog() *logrus.Entry {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return logrus.NewEntry(l)
}

func node(ii map[string]any) *store.Node {
	n := &store.Node{UUID: nodeUUID, Name: "n1", InstanceInfo: ii}
	n.Normalize()
	return n
}

// TestValidate: every bad field is refused with a message naming the field and the fix, as a driver.ErrInvalid
// (the engine's 400); good sources pass.
func TestValidate(t *testing.T) {
	img := "https://images.example.com/disk.raw"
	tests := []struct {
		name    string
		ii      map[string]any
		md5     bool
		wantErr string // "" = valid
	}{
		{"sha256 image_checksum", map[string]any{"image_source": img, "image_checksum": sha256Disk}, false, ""},
		{"algo:digest image_checksum", map[string]any{"image_source": img, "image_checksum": "sha256:" + sha256Disk}, false, ""},
		{"os_hash pair", map[string]any{"image_source": img, "image_os_hash_algo": "sha512", "image_os_hash_value": strings.Repeat("a", 128)}, false, ""},
		{"qcow2 format", map[string]any{"image_source": img, "image_checksum": sha256Disk, "image_disk_format": "qcow2"}, false, ""},
		{"empty format is unset", map[string]any{"image_source": img, "image_checksum": sha256Disk, "image_disk_format": ""}, false, ""},
		{"md5 when allowed", map[string]any{"image_source": img, "image_checksum": md5Disk}, true, ""},
		{"no image_source", map[string]any{"image_checksum": sha256Disk}, false, "instance_info.image_source is missing: set it to the http(s) URL"},
		{"oci source needs no checksum", map[string]any{"image_source": "oci://quay.io/org/disk:1"}, false, ""},
		{"oci source by digest", map[string]any{"image_source": "oci://quay.io/org/disk@sha256:" + sha256Disk}, false, ""},
		{"oci source malformed", map[string]any{"image_source": "oci://quay.io/Org/disk:bad tag"}, false,
			"is not an OCI reference"},
		{"oci source, bad format", map[string]any{"image_source": "oci://quay.io/org/disk:1", "image_disk_format": "vmdk"}, false,
			"image_disk_format vmdk is not supported"},
		{"file source", map[string]any{"image_source": "file:///srv/disk.raw", "image_checksum": sha256Disk}, false, "is not an http(s) URL"},
		{"credentials hidden", map[string]any{"image_source": "ftp://u:hunter2@h/disk", "image_checksum": sha256Disk}, false, "ftp://u:xxxxx@h/disk"},
		{"bad format", map[string]any{"image_source": img, "image_checksum": sha256Disk, "image_disk_format": "vmdk"}, false,
			"instance_info.image_disk_format vmdk is not supported: use raw or qcow2"},
		{"no checksum", map[string]any{"image_source": img}, false, "instance_info.image_checksum, or image_os_hash_algo and image_os_hash_value, must be set"},
		{"algo without value", map[string]any{"image_source": img, "image_os_hash_algo": "sha256"}, false, "instance_info.image_os_hash_value is missing"},
		{"value without algo", map[string]any{"image_source": img, "image_os_hash_value": sha256Disk}, false, "instance_info.image_os_hash_algo is missing"},
		{"unknown algo", map[string]any{"image_source": img, "image_os_hash_algo": "crc32", "image_os_hash_value": "abcd"}, false,
			`instance_info.image_os_hash_algo: "crc32" is not an algorithm the agent verifies`},
		{"md5 refused", map[string]any{"image_source": img, "image_checksum": md5Disk}, false, "md5 checksum, refused by this conductor"},
		{"md5 os_hash refused", map[string]any{"image_source": img, "image_os_hash_algo": "md5", "image_os_hash_value": md5Disk}, false,
			"--allow-md5-checksum"},
		{"short digest", map[string]any{"image_source": img, "image_os_hash_algo": "sha256", "image_os_hash_value": "abc"}, false,
			"instance_info.image_os_hash_value is not a sha256 digest (64 hex digits)"},
		{"not hex", map[string]any{"image_source": img, "image_checksum": strings.Repeat("z", 64)}, false, "instance_info.image_checksum is not a sha256"},
		{"checksum URL without fetcher", map[string]any{"image_source": img, "image_checksum": "https://images.example.com/SHA256SUMS"}, false,
			"this conductor fetches no artifacts"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := New(Config{AllowMD5: tc.md5}).Validate(context.Background(), node(tc.ii))
			if tc.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, driver.ErrInvalid)
			assert.Contains(t, err.Error(), tc.wantErr)
			assert.NotContains(t, err.Error(), "hunter2", "URL credentials never appear in messages")
		})
	}
}

// TestValidateChecksumURLRefusedAddress: a checksum URL on loopback is refused at the deploy request unless the
// fetcher's allow-list names it.
func TestValidateChecksumURLRefusedAddress(t *testing.T) {
	ii := map[string]any{"image_source": "http://127.0.0.1:1/disk.raw", "image_checksum": "http://127.0.0.1:1/SHA256SUMS"}
	strict, err := artifact.New(artifact.Config{})
	require.NoError(t, err)
	err = New(Config{Artifacts: strict}).Validate(context.Background(), node(ii))
	require.ErrorIs(t, err, driver.ErrInvalid)
	assert.Contains(t, err.Error(), "instance_info.image_checksum")
	allowed, err := artifact.New(artifact.Config{Allow: []string{"127.0.0.1"}})
	require.NoError(t, err)
	require.NoError(t, New(Config{Artifacts: allowed}).Validate(context.Background(), node(ii)))
}

// TestSteps: Ironic's direct deploy steps and priorities, and the agent's erase steps for cleaning.
func TestSteps(t *testing.T) {
	d := New(Config{})
	var got []string
	for _, s := range d.Steps(steps.Deploy) {
		got = append(got, s.Step+"/"+string(rune('0'+s.Priority/10)))
		assert.False(t, s.InBand, "every deploy step is the conductor's; write_image hands over to the agent itself")
	}
	assert.Equal(t, []string{"deploy/:", "write_image/8", "set_boot_to_disk/6", "prepare_instance_boot/6", "tear_down_agent/4", "boot_instance/2"}, got)
	clean := d.Steps(steps.Clean)
	require.Len(t, clean, 2)
	assert.Equal(t, deploy.StepEraseDevices, clean[0].Step)
	assert.True(t, clean[0].InBand)
	assert.Equal(t, 99, clean[1].Priority)
	assert.Nil(t, d.Steps(steps.Service))
}

// TestWriteImageArgs: the args of write_image are exactly what Ironic's AgentDeploy.write_image sends (fixture).
func TestWriteImageArgs(t *testing.T) {
	raw, err := os.ReadFile("testdata/ironic_write_image_args.json")
	require.NoError(t, err)
	var fixture map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(raw, &fixture))
	tests := []struct {
		name  string
		ii    map[string]any
		di    map[string]any
		drive any
	}{
		{"image_checksum and a string config drive", map[string]any{"image_source": "https://images.example.com/os/disk.qcow2",
			"image_checksum": sha256Disk, "image_disk_format": "qcow2", "configdrive": "stale"}, nil, "H4sIAAAAAAAA/wMAAAAAAAAAAAA="},
		{"os_hash, proxies, authorization, no config drive", map[string]any{"image_source": "http://10.0.0.5/disk.raw",
			"image_os_hash_algo": "sha256", "image_os_hash_value": sha256Disk, "image_request_authorization_secret": "Bearer secret"},
			map[string]any{"image_http_proxy": "http://proxy:3128", "image_https_proxy": "http://proxy:3129", "image_no_proxy": ".example.com"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := New(Config{})
			n := node(tc.ii)
			n.DriverInfo = tc.di
			c, err := d.resolveChecksum(context.Background(), n)
			require.NoError(t, err)
			n.DriverInternalInfo[keyChecksum] = c.record()
			drive := tc.drive
			task := &driver.Task{Node: n, ConfigDrive: func(context.Context) (any, error) { return drive, nil }}
			args, err := d.writeImageArgs(context.Background(), task)
			require.NoError(t, err)
			got, err := json.Marshal(args)
			require.NoError(t, err)
			require.Contains(t, fixture, tc.name)
			assert.JSONEq(t, string(fixture[tc.name]), string(got))
		})
	}
}

// TestWriteImageArgsBuildsDictDrive: a dict config drive becomes an ISO string, as bootc builds it.
func TestWriteImageArgsBuildsDictDrive(t *testing.T) {
	d := New(Config{})
	n := node(map[string]any{"image_source": "http://h/disk.raw", "image_checksum": sha256Disk})
	n.DriverInternalInfo[keyChecksum] = checksumSpec{algo: "sha256", value: sha256Disk, field: "image_checksum"}.record()
	task := &driver.Task{Node: n, ConfigDrive: func(context.Context) (any, error) {
		return map[string]any{"meta_data": map[string]any{"hostname": "h1"}}, nil
	}}
	args, err := d.writeImageArgs(context.Background(), task)
	require.NoError(t, err)
	s, ok := args["configdrive"].(string)
	require.True(t, ok)
	assert.Greater(t, len(s), 100)
	assert.Equal(t, s, args["image_info"].(map[string]any)["configdrive"])
}

// TestParseChecksumFile: Ironic's checksum file forms (bare digest, sha256sum output, BSD/CentOS style).
func TestParseChecksumFile(t *testing.T) {
	other := strings.Repeat("b", 64)
	tests := []struct {
		name, file, want, wantErr string
	}{
		{"bare digest", sha256Disk + "\n", sha256Disk, ""},
		{"sha256sum output", other + "  other.raw\n" + sha256Disk + "  disk.raw\n", sha256Disk, ""},
		{"binary mode", other + " *other.raw\n" + sha256Disk + " *disk.raw\n", sha256Disk, ""},
		{"CentOS style", "# comment\nSHA256 (other.raw) = " + other + "\nSHA256 (disk.raw) = " + sha256Disk + "\n", sha256Disk, ""},
		{"empty", "\n\n", "", "the checksum file is empty"},
		{"bare junk", "nothing", "", "holds no md5, sha256 or sha512 digest"},
		{"name missing", other + "  other.raw\n" + other + "  disk.raw.xz\n", "", "no line naming disk.raw"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseChecksumFile([]byte(tc.file), "http://h/images/disk.raw?x=1")
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

// TestResolveChecksumURL: a checksum URL is fetched through the artifact fetcher (allowed for 127.0.0.1 here) and
// the image's line is used; a file without it, or an md5 inside it, fails naming the field.
func TestResolveChecksumURL(t *testing.T) {
	files := map[string]string{
		"/SHA256SUMS": strings.Repeat("c", 64) + "  other.raw\n" + sha256Disk + "  disk.raw\n",
		"/MD5SUMS":    md5Disk + "  disk.raw\n" + md5Disk + "  other.raw\n",
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		_, _ = io.WriteString(w, body)
	}))
	defer srv.Close()
	fetch, err := artifact.New(artifact.Config{Allow: []string{"127.0.0.1"}})
	require.NoError(t, err)
	d := New(Config{Artifacts: fetch})
	tests := []struct {
		name, sum, want, wantErr string
	}{
		{"found", srv.URL + "/SHA256SUMS", sha256Disk, ""},
		{"md5 inside refused", srv.URL + "/MD5SUMS", "", "md5 checksum, refused"},
		{"not found", srv.URL + "/nope", "", "fetch the checksum file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := node(map[string]any{"image_source": "http://images.example.com/disk.raw", "image_checksum": tc.sum})
			c, err := d.resolveChecksum(context.Background(), n)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				assert.Contains(t, err.Error(), "image_checksum")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, c.value)
			assert.Equal(t, "sha256", c.algo)
		})
	}
}

// ociRegistry is a TLS registry with basic auth holding disk artifacts and a bootc image, and the Config that
// trusts it.
type ociRegistry struct {
	reg             *registrytest.Registry
	cfg             Config
	zstd, qcow2     diskimagetest.Pushed
	both            []diskimagetest.Pushed // org/both: an index of a raw and a qcow2 disk
	bootc, multiple string
}

func newOCIRegistry(t *testing.T) *ociRegistry {
	pair := certtest.SelfSigned(t, certtest.Options{CN: "registry-ca", IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	reg := registrytest.Start(t, registrytest.WithBasicAuth("u", "p"), registrytest.WithTLS(pair.TLS))
	dir := t.TempDir()
	raw := filepath.Join(dir, "disk.raw")
	require.NoError(t, os.WriteFile(raw, []byte("raw disk image bytes"), 0o600))
	qcow2 := filepath.Join(dir, "disk.qcow2")
	require.NoError(t, os.WriteFile(qcow2, []byte("QFI\xfb"), 0o600))
	auth := diskimagetest.Auth("u", "p")
	r := &ociRegistry{reg: reg, cfg: Config{Registry: agentdeploy.Registry{Trust: images.Trust{RegistryCAs: map[string]string{reg.Host: string(pair.CertPEM)}}}}}
	r.zstd = diskimagetest.PushArtifact(t, reg.PlainHost, "org/disk", "v1", auth, diskimagetest.Artifact{
		File: diskimagetest.Compress(t, raw, "zstd"), MediaType: diskimagetest.MediaTypeZstd, DiskType: "raw", Title: "os.raw.zst"})
	r.qcow2 = diskimagetest.PushArtifact(t, reg.PlainHost, "org/qcow2", "v1", auth, diskimagetest.Artifact{File: qcow2, DiskType: "qcow2"})
	diskimagetest.PushArtifact(t, reg.PlainHost, "org/layers", "v1", auth, diskimagetest.Artifact{File: raw, DiskType: "raw", ExtraLayers: 1})
	r.both = diskimagetest.PushArtifactIndex(t, reg.PlainHost, "org/both", "v1", auth,
		diskimagetest.Artifact{File: raw, DiskType: "raw"}, diskimagetest.Artifact{File: qcow2, DiskType: "qcow2"})
	r.bootc = bootcimage.Push(t, reg.PlainHost, "org/os", "v1", bootcimage.Options{Marker: "direct", Username: "u", Password: "p"})
	return r
}

func (r *ociRegistry) task(ii map[string]any) *driver.Task {
	return &driver.Task{Node: node(ii), Log: quietLog(), ConfigDrive: func(context.Context) (any, error) { return nil, nil }}
}

// TestOCIWriteImageArgs: an oci:// disk artifact is identified at the core step (recorded under direct_oci) and
// write_image gets the blob's URL as the node sees the registry, its digest as the sha256 to verify, the
// artifact's format and the registry's Authorization header; the header is never stored in the node.
func TestOCIWriteImageArgs(t *testing.T) {
	r := newOCIRegistry(t)
	ctx := context.Background()
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("u:p"))
	tests := []struct {
		name    string
		aliases map[string]string
		source  string
		wantURL string
	}{
		{"registry as the conductor reaches it", nil, "oci://" + r.reg.Host + "/org/disk:v1",
			"https://" + r.reg.Host + "/v2/org/disk/blobs/" + r.zstd.Blob},
		{"registry alias: the node's name in the URL", map[string]string{"registry.test:5000": r.reg.Host}, "oci://registry.test:5000/org/disk:v1",
			"https://registry.test:5000/v2/org/disk/blobs/" + r.zstd.Blob},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := r.cfg
			cfg.Aliases = tc.aliases
			d := New(cfg)
			task := r.task(map[string]any{"image_source": tc.source, "image_pull_secret": "u:p"})
			require.NoError(t, d.Validate(ctx, task.Node))
			require.NoError(t, d.identifyOCI(ctx, task, tc.source))
			host := strings.TrimPrefix(strings.Split(tc.source, "/org/")[0], "oci://")
			assert.Equal(t, map[string]any{"manifest": host + "/org/disk@" + r.zstd.Manifest, "blob": r.zstd.Blob,
				"media_type": "application/zstd", "disk_format": "raw", "compression": "zstd", "size": r.zstd.BlobSize,
				"filename": "os.raw.zst", "platform": "linux/amd64"}, task.Node.DriverInternalInfo[keyOCI])
			args, err := d.writeImageArgs(ctx, task)
			require.NoError(t, err)
			info := args["image_info"].(map[string]any)
			assert.Equal(t, []any{tc.wantURL}, info["urls"])
			assert.Equal(t, "sha256", info["os_hash_algo"])
			assert.Equal(t, strings.TrimPrefix(r.zstd.Blob, "sha256:"), info["os_hash_value"])
			assert.NotContains(t, info, "checksum")
			assert.Equal(t, "raw", info["disk_format"])
			assert.Equal(t, "os.raw.zst", info["id"])
			assert.Equal(t, base64.StdEncoding.EncodeToString([]byte(basic)), info["image_request_authorization"])
			stored, err := json.Marshal(task.Node)
			require.NoError(t, err)
			assert.NotContains(t, string(stored), base64.StdEncoding.EncodeToString([]byte("u:p")), "the header is not stored")
		})
	}
}

// TestOCIInsecureAnonymous: a plain-http registry named by --insecure-registry gets an http:// blob URL, and an
// anonymous one no authorization.
func TestOCIInsecureAnonymous(t *testing.T) {
	reg := registrytest.Start(t)
	raw := filepath.Join(t.TempDir(), "disk.raw")
	require.NoError(t, os.WriteFile(raw, []byte("disk"), 0o600))
	p := diskimagetest.PushArtifact(t, reg.Host, "org/disk", "v1", diskimagetest.Auth("", ""), diskimagetest.Artifact{File: raw})
	d := New(Config{Registry: agentdeploy.Registry{Insecure: []string{reg.Host}}})
	src := "oci://" + reg.Host + "/org/disk:v1"
	task := &driver.Task{Node: node(map[string]any{"image_source": src, "image_disk_format": "raw"}), Log: quietLog(),
		ConfigDrive: func(context.Context) (any, error) { return nil, nil }}
	require.NoError(t, d.identifyOCI(context.Background(), task, src))
	args, err := d.writeImageArgs(context.Background(), task)
	require.NoError(t, err)
	info := args["image_info"].(map[string]any)
	assert.Equal(t, []any{"http://" + reg.Host + "/v2/org/disk/blobs/" + p.Blob}, info["urls"])
	assert.NotContains(t, info, "image_request_authorization")
	assert.Equal(t, "raw", info["disk_format"], "no disktype: instance_info's image_disk_format stays")
}

// TestOCIRefusals: the core step refuses, before any agent boots, what direct cannot write: a bootable container
// image (pointing at the bootc interface), a qcow2 artifact behind credentials, a multi-layer artifact, wrong
// credentials, a policy's reject scope.
func TestOCIRefusals(t *testing.T) {
	r := newOCIRegistry(t)
	policy, err := images.ParsePolicy([]byte(`{"default":[{"type":"insecureAcceptAnything"}],"transports":{"docker":{"` +
		r.reg.Host + `/forbidden":[{"type":"reject"}]}}}`))
	require.NoError(t, err)
	tests := []struct {
		name, image, secret string
		want                []string
	}{
		{"bootc image", "org/os:v1", "u:p", []string{"is a bootable container image (manifest " + r.bootc + ")",
			"set deploy_interface to bootc, or leave it unset so autodetect picks bootc"}},
		{"qcow2 behind credentials", "org/qcow2:v1", "u:p", []string{"is qcow2 and the registry needs image_pull_secret", "disktype raw"}},
		{"multi-layer artifact", "org/layers:v1", "u:p", []string{"2 layers (a disk image artifact has one)", "image not found"}},
		{"wrong credentials", "org/disk:v1", "u:wrong", []string{"check image_pull_secret"}},
		{"policy reject", "forbidden/disk:v1", "u:p", []string{`requires "reject"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := r.cfg
			cfg.Policy = policy
			task := r.task(map[string]any{"image_source": "oci://" + r.reg.Host + "/" + tc.image, "image_pull_secret": tc.secret})
			out, err := New(cfg).Deploy(context.Background(), task)
			require.Error(t, err)
			assert.Equal(t, driver.Done, out)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
			assert.NotContains(t, err.Error(), "wrong")
			assert.NotContains(t, task.Node.DriverInternalInfo, keyOCI)
		})
	}
}

// TestOCIDownloadSource: image_download_source local (instance_info, else driver_info) ranks qcow2 first, as
// upstream does when the conductor serves the image; otherwise raw, which the agent streams.
func TestOCIDownloadSource(t *testing.T) {
	r := newOCIRegistry(t)
	src := "oci://" + r.reg.Host + "/org/both:v1"
	tests := []struct {
		name       string
		ii, di     map[string]any
		wantFormat string
		want       diskimagetest.Pushed
	}{
		{"agent download", nil, nil, "raw", r.both[0]},
		{"local in instance_info", map[string]any{"image_download_source": "local"}, nil, "qcow2", r.both[1]},
		{"local in driver_info", nil, map[string]any{"image_download_source": "local"}, "qcow2", r.both[1]},
		{"instance_info wins", map[string]any{"image_download_source": "http"}, map[string]any{"image_download_source": "local"}, "raw", r.both[0]},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ii := map[string]any{"image_source": src, "image_pull_secret": "u:p"}
			for k, v := range tc.ii {
				ii[k] = v
			}
			task := r.task(ii)
			task.Node.DriverInfo = tc.di
			require.NoError(t, New(r.cfg).identifyOCI(context.Background(), task, src))
			rec := task.Node.DriverInternalInfo[keyOCI].(map[string]any)
			assert.Equal(t, tc.wantFormat, rec["disk_format"])
			assert.Equal(t, tc.want.Blob, rec["blob"])
		})
	}
}
