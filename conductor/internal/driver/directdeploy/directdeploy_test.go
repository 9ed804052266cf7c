package directdeploy

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/conductor/internal/artifact"
	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/steps"
	"github.com/ferric-metal/ferric/conductor/internal/store"
	"github.com/ferric-metal/ferric/deploy"
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
		{"oci source", map[string]any{"image_source": "oci://quay.io/org/disk:1", "image_checksum": sha256Disk}, false,
			"does not deploy OCI disk-image artifacts yet"},
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
