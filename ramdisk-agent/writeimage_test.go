package agent

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/configdrive"
	"github.com/ferric-metal/ferric/deploy"
	"github.com/ferric-metal/ferric/ramdisk-agent/internal/api"
	"github.com/ferric-metal/ferric/test/diskimagetest"
)

// diskSize is the install disk of these tests: twice the image, so the image's backup GPT lands mid-disk and
// must be moved, and the config drive goes well past the image's end.
const diskSize = 2 * diskimagetest.ImageSize

const testToken = "write-image-test-token-0123456789abcdef"

// commandAPI serves a's command API as the conductor reaches it and returns its base URL.
func commandAPI(t *testing.T, a *Agent) string {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	a.api = api.New(ctx, api.Config{Version: Version, Token: func() string { return testToken }, Log: a.log}, a.commands())
	srv := httptest.NewServer(a.api)
	t.Cleanup(srv.Close)
	return srv.URL
}

// execute posts a command and waits for its result (wait=true), as the conductor polls one.
func execute(t *testing.T, base, name string, params any) deploy.CommandResult {
	t.Helper()
	body, err := json.Marshal(map[string]any{"name": name, "params": params})
	require.NoError(t, err)
	resp, err := http.Post(base+"/v1/commands/?wait=true&agent_token="+testToken, "application/json", bytes.NewReader(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var r deploy.CommandResult
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&r))
	return r
}

// imageServer serves dir's files over http and counts the requests.
func imageServer(t *testing.T, dir string) (string, *atomic.Int32) {
	var n atomic.Int32
	fs := http.FileServer(http.Dir(dir))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		fs.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, &n
}

// writeImageParams is deploy.execute_deploy_step's params as Ironic's AgentDeploy.write_image sends them.
func writeImageParams(info map[string]any, drive any) deploy.StepParams {
	return deploy.StepParams{Step: deploy.Step{Interface: "deploy", Step: deploy.StepWriteImage, Priority: 80,
		Args: map[string]any{"image_info": info, "configdrive": drive}}, Node: map[string]any{"uuid": "n1"}, Ports: []any{}}
}

// testDrive is a config drive in Ironic's transport form (gzip+base64 of a config-2 ISO).
func testDrive(t *testing.T) string {
	iso, err := configdrive.Build(configdrive.Drive{MetaData: map[string]any{"hostname": "written-by-write-image"}},
		configdrive.NodeInfo{UUID: "0862e37f-c229-4fe3-aa45-d637b29e7b5e"})
	require.NoError(t, err)
	s, err := configdrive.Encode(iso)
	require.NoError(t, err)
	return s
}

// newTestAgent is an agent whose install disk is dev, trusting caPEM (the site's registry_ca) besides the system
// roots.
func newTestAgent(t *testing.T, dev, caPEM string) *Agent {
	l := logrus.New()
	l.SetOutput(io.Discard)
	cfg := Config{TargetDevice: dev}
	cfg.Trust.CAs = caPEM
	return &Agent{cfg: cfg, log: logrus.NewEntry(l)}
}

// TestWriteImageStep runs write_image through the command API onto a loop device, with the image served over
// http: a raw GPT image with a config drive, a zstd-compressed one, and a wrong checksum.
func TestWriteImageStep(t *testing.T) {
	diskimagetest.NeedDevice(t)
	dir := t.TempDir()
	raw := diskimagetest.RawImage(t, dir)
	zst := diskimagetest.Compress(t, raw, "zstd")
	base, _ := imageServer(t, dir)
	// The same files over https, whose CA the agent knows only from the site's settings (registry_ca).
	tlsSrv := httptest.NewTLSServer(http.FileServer(http.Dir(dir)))
	t.Cleanup(tlsSrv.Close)
	ca := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tlsSrv.Certificate().Raw}))
	// And behind HTTP basic authentication, as Ironic's image_server_auth_strategy http_basic protects them.
	authSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "img" || p != "s3cret" {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		http.FileServer(http.Dir(dir)).ServeHTTP(w, r)
	}))
	t.Cleanup(authSrv.Close)
	// The partition's bytes as the image has them: after the write (and the GPT and config drive changes to the
	// table) they must be unchanged on the disk.
	rawPart := diskimagetest.ReadDev(t, raw, diskimagetest.Partition1Start, diskimagetest.Partition1Size)
	rawSum, zstSum := diskimagetest.Sha256File(t, raw), diskimagetest.Sha256File(t, zst)
	wrong := strings.Repeat("ab", 32)
	// A checksum file as Ironic accepts one in image_checksum: sha256sum's output for several files.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "SHA256SUMS"), []byte(zstSum+"  disk.raw.zstd\n"+rawSum+
		" *disk.raw\n"), 0o644))
	tests := []struct {
		name        string
		info        map[string]any
		drive       any
		compression string
		disk        int64    // the install disk's size (default diskSize)
		qcow2       bool     // needs qemu-img and its curl driver
		wantErr     []string // the command fails with these in its message
	}{
		{name: "raw GPT image with a config drive", drive: testDrive(t), info: map[string]any{"id": "disk.raw",
			"urls": []string{base + "/disk.raw"}, "disk_format": "raw", "checksum": rawSum}},
		{name: "zstd raw, os_hash_algo and os_hash_value", compression: "zstd", info: map[string]any{"id": "disk.raw.zstd",
			"urls": []string{base + "/disk.raw.zstd"}, "disk_format": "raw", "os_hash_algo": "sha256", "os_hash_value": zstSum}},
		{name: "https with the site's CA, checksum file", info: map[string]any{"id": "disk.raw",
			"urls": []string{tlsSrv.URL + "/disk.raw"}, "checksum": tlsSrv.URL + "/SHA256SUMS"}},
		{name: "http_basic image server", info: map[string]any{"id": "disk.raw", "urls": []string{authSrv.URL + "/disk.raw"},
			"checksum": rawSum, "image_server_auth_strategy": "http_basic", "image_server_user": "img",
			"image_server_password": "s3cret"}},
		{name: "qcow2", qcow2: true, info: map[string]any{"id": "disk.qcow2", "urls": []string{base + "/disk.qcow2"},
			"disk_format": "qcow2"}},
		{name: "config drive with no room: ends zeroed", disk: diskimagetest.ImageSize, drive: testDrive(t),
			info:    map[string]any{"id": "disk.raw", "urls": []string{base + "/disk.raw"}, "checksum": rawSum},
			wantErr: []string{"image disk.raw written to", "but the config drive was not", "no space for the config drive"}},
		{name: "bad checksum", info: map[string]any{"id": "disk.raw", "urls": []string{base + "/disk.raw"},
			"disk_format": "raw", "checksum": wrong}, wantErr: []string{"checksum mismatch", wrong, rawSum}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.qcow2 {
				tc.info["checksum"] = diskimagetest.Sha256File(t, diskimagetest.QCOW2(t, raw, "disk.qcow2"))
			}
			size := cmp.Or(tc.disk, diskSize)
			dev := diskimagetest.LoopDevice(t, size, false)
			r := execute(t, commandAPI(t, newTestAgent(t, dev, ca)), deploy.CmdExecuteDeployStep, writeImageParams(tc.info, tc.drive))
			if tc.wantErr != nil {
				require.Equal(t, deploy.StatusFailed, r.CommandStatus)
				for _, s := range tc.wantErr {
					assert.Contains(t, r.Failure(), s)
				}
				// A half-written or unverified image must never boot: both ends of the disk are zeros.
				diskimagetest.RequireEndsZeroed(t, dev, size)
				return
			}
			require.Equal(t, deploy.StatusSucceeded, r.CommandStatus, r.Failure())
			// IPA's result shape: {"deploy_result": ..., "deploy_step": step}, the step echoed for the conductor.
			var out struct {
				Result deploy.WriteImageResult `json:"deploy_result"`
				Step   deploy.Step             `json:"deploy_step"`
			}
			require.NoError(t, json.Unmarshal(r.CommandResult, &out))
			assert.Equal(t, deploy.StepWriteImage, out.Step.Step)
			assert.Nil(t, out.Step.Args, "image_info (credentials) and the config drive are not echoed")
			assert.NotContains(t, string(r.CommandResult), "s3cret")
			res := out.Result
			assert.Equal(t, dev, res.Device)
			assert.Equal(t, map[bool]string{false: "raw", true: "qcow2"}[tc.qcow2], res.Format)
			assert.Equal(t, tc.compression, res.Compression)
			assert.Equal(t, int64(diskimagetest.ImageSize), res.Written)
			assert.Contains(t, res.Checksum, "sha256:")
			assert.Equal(t, "backup header moved to the end of the disk", res.GPT)
			// The image's partition is intact, byte for byte, and the GPT is valid for the whole disk.
			assert.True(t, bytes.Equal(rawPart, diskimagetest.ReadDev(t, dev, diskimagetest.Partition1Start,
				diskimagetest.Partition1Size)), "partition 1 differs from the image's")
			assert.Contains(t, diskimagetest.Run(t, "sgdisk", "-v", dev), "No problems found")
			if tc.drive == nil {
				assert.Empty(t, res.ConfigDrive)
				return
			}
			assert.Contains(t, res.ConfigDrive, "partition 2 of "+dev)
			files, err := configdrive.ReadFiles(dev)
			require.NoError(t, err)
			assert.Contains(t, string(files["openstack/latest/meta_data.json"]), "written-by-write-image")
			// The config-2 partition ends at the disk's end (less the backup GPT), far past the image's end.
			info := diskimagetest.Run(t, "sgdisk", "-i", "2", dev)
			assert.Contains(t, info, "Last sector: "+itoa(diskSize/512-34))
		})
	}
}

// TestWriteImageRefusals: requests that cannot be written are refused before the image is requested and before
// the disk is touched (a client error naming the field and the fix).
func TestWriteImageRefusals(t *testing.T) {
	diskimagetest.NeedDevice(t)
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "disk.raw"), []byte("not fetched"), 0o644))
	base, hits := imageServer(t, dir)
	sum := strings.Repeat("ab", 32)
	tests := []struct {
		name  string
		info  map[string]any
		drive any
		want  string
	}{
		{"non-http URL", map[string]any{"id": "x", "urls": []string{"ftp://images.example/disk.raw"}, "checksum": sum},
			nil, "image_info.urls[0] ftp://images.example/disk.raw: the agent downloads images over http:// or https:// only"},
		{"file URL", map[string]any{"id": "x", "urls": []string{"file:///etc/shadow"}, "checksum": sum}, nil,
			"over http:// or https:// only"},
		{"no checksum", map[string]any{"id": "x", "urls": []string{base + "/disk.raw"}}, nil,
			"image_info has no checksum: set instance_info.image_checksum"},
		{"half an os_hash pair", map[string]any{"id": "x", "urls": []string{base + "/disk.raw"}, "os_hash_algo": "sha256"},
			nil, "os_hash_algo and os_hash_value go together"},
		{"checksum of unknown length", map[string]any{"id": "x", "urls": []string{base + "/disk.raw"}, "checksum": "abc"},
			nil, "image_info.checksum has 3 characters"},
		{"unsupported disk format", map[string]any{"id": "x", "urls": []string{base + "/disk.raw"}, "checksum": sum,
			"disk_format": "vmdk"}, nil, `image_info.disk_format "vmdk"`},
		{"partition image", map[string]any{"id": "x", "urls": []string{base + "/disk.raw"}, "checksum": sum,
			"image_type": "partition"}, nil, "whole-disk images only"},
		{"config drive not base64", map[string]any{"id": "x", "urls": []string{base + "/disk.raw"}, "checksum": sum},
			"%%% not base64 %%%", "args.configdrive: config drive is neither a URL nor base64"},
		{"qcow2 with credentials", map[string]any{"id": "x", "urls": []string{base + "/disk.raw"}, "checksum": sum,
			"disk_format": "qcow2", "image_request_authorization": "QmVhcmVyIHQ="}, nil, "qemu-img reads a qcow2 image again"},
		{"unknown auth strategy", map[string]any{"id": "x", "urls": []string{base + "/disk.raw"}, "checksum": sum,
			"image_server_auth_strategy": "kerberos"}, nil, `image_server_auth_strategy "kerberos"`},
		// An agent asked for write_image with no args (a conductor running it in-band on its own).
		{"no image_info", nil, nil, "args.image_info is missing"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dev := diskimagetest.LoopDevice(t, 4*diskimagetest.MiB, false)
			// A 4 MiB disk: any write at all would show at its ends, which hold the pattern.
			before := hits.Load()
			r := execute(t, commandAPI(t, newTestAgent(t, dev, "")), deploy.CmdExecuteDeployStep, writeImageParams(tc.info, tc.drive))
			require.Equal(t, deploy.StatusFailed, r.CommandStatus)
			assert.Contains(t, r.Failure(), tc.want)
			require.NotNil(t, r.CommandError)
			assert.Equal(t, http.StatusBadRequest, r.CommandError.Code, "the request's fault, not the machine's")
			assert.Equal(t, before, hits.Load(), "the image was requested")
			diskimagetest.RequireUntouched(t, dev, 4*diskimagetest.MiB)
		})
	}
}

// itoa formats v as sgdisk prints sector numbers.
func itoa(v int64) string { b, _ := json.Marshal(v); return string(b) }

// TestSiteClientConductor: a download from the conductor's own host (image_download_source local) trusts the
// conductor's CA (api_ca), as the heartbeats do; another host signed by that CA is not trusted through it.
func TestSiteClientConductor(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "image") }))
	defer srv.Close()
	caPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))
	a := newTestAgent(t, "", "")
	a.cfg.APIURL, a.cfg.APICA = srv.URL, caPEM
	u, err := url.Parse(srv.URL)
	require.NoError(t, err)
	hc, err := a.siteClient(u.Host, 10*time.Second)
	require.NoError(t, err)
	resp, err := hc.Get(srv.URL + "/images/n/t/disk.raw")
	require.NoError(t, err, "the conductor's CA is trusted for the conductor")
	resp.Body.Close()

	a.cfg.APIURL = "https://conductor.example:6385"
	hc, err = a.siteClient(u.Host, 10*time.Second)
	require.NoError(t, err)
	_, err = hc.Get(srv.URL + "/images/n/t/disk.raw")
	require.Error(t, err, "api_ca is not trusted for other hosts")
}
