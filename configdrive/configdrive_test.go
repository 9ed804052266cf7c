package configdrive

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/test/testenv"
)

func typicalDrive() Drive {
	return Drive{
		MetaData: map[string]any{"hostname": "node-1.example", "public_keys": map[string]any{"default": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG1ho5E6l5kGJ8WQ2yF8k8h2QvQ0 user@host"}},
		UserData: "#cloud-config\ndisable_root: false\n",
		NetworkData: map[string]any{"links": []any{map[string]any{"id": "eth0", "type": "phy", "ethernet_mac_address": "52:54:00:12:34:56"}},
			"networks": []any{map[string]any{"id": "n0", "link": "eth0", "type": "ipv4_dhcp"}}, "services": []any{}},
		VendorData: map[string]any{"ferric": map[string]any{"rack": "r1"}},
	}
}

var node = NodeInfo{UUID: "0862e37f-c229-4fe3-aa45-d637b29e7b5e", Name: "node-1"}

// TestLayoutGolden pins the exact file tree and contents Ironic's builder writes for the same input.
func TestLayoutGolden(t *testing.T) {
	files, err := Files(typicalDrive(), node)
	require.NoError(t, err)
	want := map[string]string{
		"meta_data.json":    `{"hostname":"node-1.example","name":"node-1","public_keys":{"default":"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG1ho5E6l5kGJ8WQ2yF8k8h2QvQ0 user@host"},"uuid":"0862e37f-c229-4fe3-aa45-d637b29e7b5e"}`,
		"network_data.json": `{"links":[{"ethernet_mac_address":"52:54:00:12:34:56","id":"eth0","type":"phy"}],"networks":[{"id":"n0","link":"eth0","type":"ipv4_dhcp"}],"services":[]}`,
		"vendor_data2.json": `{"ferric":{"rack":"r1"}}`,
		"user_data":         "#cloud-config\ndisable_root: false\n",
	}
	require.Len(t, files, 2*len(want))
	for _, ver := range []string{"2012-08-10", "latest"} {
		for name, content := range want {
			assert.Equal(t, content, string(files["openstack/"+ver+"/"+name]), ver+"/"+name)
		}
	}
}

func TestFilesRules(t *testing.T) {
	tests := []struct {
		name    string
		d       Drive
		n       NodeInfo
		wantErr string
		check   func(t *testing.T, files map[string][]byte)
	}{
		{"uuid and name injected only when absent", Drive{MetaData: map[string]any{"uuid": "given", "name": "mine"}}, node, "", func(t *testing.T, f map[string][]byte) {
			assert.JSONEq(t, `{"uuid":"given","name":"mine"}`, string(f["openstack/latest/meta_data.json"]))
		}},
		{"no uuid anywhere", Drive{MetaData: map[string]any{"hostname": "x"}}, NodeInfo{}, "no uuid", nil},
		{"user_data object", Drive{UserData: map[string]any{"a": 1.0}}, node, "", func(t *testing.T, f map[string][]byte) {
			assert.Equal(t, `{"a":1}`, string(f["openstack/latest/user_data"]))
		}},
		{"user_data array", Drive{UserData: []any{"x"}}, node, "", func(t *testing.T, f map[string][]byte) {
			assert.Equal(t, `["x"]`, string(f["openstack/latest/user_data"]))
		}},
		{"user_data number", Drive{UserData: 3.0}, node, "user_data must be", nil},
		{"minimal", Drive{}, node, "", func(t *testing.T, f map[string][]byte) {
			assert.Len(t, f, 2, "meta_data.json in both versions only")
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			files, err := Files(tc.d, tc.n)
			if tc.wantErr != "" {
				assert.ErrorContains(t, err, tc.wantErr)
				assert.ErrorIs(t, err, ErrInvalid)
				return
			}
			require.NoError(t, err)
			tc.check(t, files)
		})
	}
	_, err := FromMap(map[string]any{"meta_data": "x"})
	assert.ErrorIs(t, err, ErrInvalid)
	_, err = FromMap(map[string]any{"bogus": 1})
	assert.ErrorContains(t, err, `"bogus"`)
}

func TestISORoundTrip(t *testing.T) {
	iso, err := Build(typicalDrive(), node)
	require.NoError(t, err)
	kind, label := Detect(bytes.NewReader(iso))
	assert.Equal(t, KindISO, kind)
	assert.Equal(t, "config-2", label, "lower-case label preserved")
	assert.Less(t, len(iso), 1<<20, "the image is trimmed to its volume size")
	again, err := Build(typicalDrive(), node)
	require.NoError(t, err)
	assert.Equal(t, len(iso), len(again), "builds are deterministic apart from the volume timestamps")

	files, err := filesOfImage(iso)
	require.NoError(t, err)
	want, _ := Files(typicalDrive(), node)
	assert.Equal(t, want, files, "long lower-case names survive through Rock Ridge")
}

func TestVFAT(t *testing.T) {
	img, err := BuildVFAT(typicalDrive(), node, 0)
	require.NoError(t, err)
	kind, label := Detect(bytes.NewReader(img))
	assert.Equal(t, KindVFAT, kind)
	assert.Equal(t, "CONFIG-2", label)
	files, err := filesOfImage(img)
	require.NoError(t, err)
	want, _ := Files(typicalDrive(), node)
	assert.Equal(t, want, files)
	_, err = BuildVFAT(typicalDrive(), node, 64<<20)
	assert.ErrorContains(t, err, "not exactly 64 MiB")

	fsck := testenv.Tool(t, "fsck.fat", "dosfstools")
	p := filepath.Join(t.TempDir(), "v.img")
	require.NoError(t, os.WriteFile(p, img, 0o600))
	out, err := exec.Command(fsck, "-n", p).CombinedOutput()
	require.NoError(t, err, "fsck.fat -n must find nothing to fix: %s", out)
	assert.NotContains(t, string(out), "Fixing")
	assert.NotContains(t, string(out), "uninitialized")
}

func gz(b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func TestEncodeDecode(t *testing.T) {
	iso, err := Build(typicalDrive(), node)
	require.NoError(t, err)
	s, err := Encode(iso)
	require.NoError(t, err)
	ctx := context.Background()
	got, err := Decode(ctx, s, DecodeOptions{})
	require.NoError(t, err)
	assert.True(t, bytes.Equal(iso, got))
	// Wrapped base64 (as the CLI of some tools writes it) is fine.
	wrapped := ""
	for i := 0; i < len(s); i += 76 {
		wrapped += s[i:min(i+76, len(s))] + "\n"
	}
	got, err = Decode(ctx, wrapped, DecodeOptions{})
	require.NoError(t, err)
	assert.True(t, bytes.Equal(iso, got))
	// Raw (not gzipped) base64 is accepted, as IPA does.
	got, err = Decode(ctx, base64.StdEncoding.EncodeToString(iso), DecodeOptions{})
	require.NoError(t, err)
	assert.True(t, bytes.Equal(iso, got))

	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/drive.iso.gz":
			w.Write(gz(iso))
		case "/drive.b64":
			w.Write([]byte(s))
		case "/big":
			w.Write(gz(make([]byte, 2<<20)))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	for _, p := range []string{"/drive.iso.gz", "/drive.b64"} {
		got, err = Decode(ctx, srv.URL+p, DecodeOptions{})
		require.NoError(t, err, p)
		assert.True(t, bytes.Equal(iso, got), p)
	}
	_, err = Decode(ctx, srv.URL+"/missing", DecodeOptions{})
	assert.ErrorContains(t, err, "HTTP 404")
	_, err = Decode(ctx, srv.URL+"/big", DecodeOptions{MaxSize: 1 << 20})
	assert.ErrorContains(t, err, "larger than the limit of 1048576 bytes")

	for _, tc := range []struct{ in, want string }{
		{"", "empty"},
		{"not base64 !!", "neither a URL nor base64"},
		{"ftp://x/y", "use http:// or https://"},
		{base64.StdEncoding.EncodeToString([]byte{0x1f, 0x8b, 1, 2}), "gzip"},
	} {
		_, err := Decode(ctx, tc.in, DecodeOptions{})
		assert.ErrorContains(t, err, tc.want, tc.in)
	}
	_, err = Encode(make([]byte, MaxImageSize+1))
	assert.ErrorContains(t, err, "the limit is 67108864 bytes")
}

func FuzzDecode(f *testing.F) {
	iso, _ := Build(Drive{}, node)
	s, _ := Encode(iso)
	f.Add(s)
	f.Add(base64.StdEncoding.EncodeToString(gz([]byte("hello"))))
	f.Add("H4sI")
	f.Add("====")
	f.Fuzz(func(t *testing.T, in string) {
		if strings.Contains(in, "://") {
			return // no network in the fuzzer
		}
		out, err := Decode(context.Background(), in, DecodeOptions{MaxSize: 1 << 20})
		if err == nil {
			assert.LessOrEqual(t, len(out), 1<<20)
		}
	})
}

func FuzzDetect(f *testing.F) {
	iso, _ := Build(Drive{}, node)
	f.Add(iso[:min(len(iso), 40000)])
	f.Fuzz(func(t *testing.T, b []byte) {
		Detect(bytes.NewReader(b)) // must not panic on any input
	})
}

func BenchmarkBuild(b *testing.B) {
	d := typicalDrive()
	for i := 0; i < b.N; i++ {
		iso, err := Build(d, node)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := Encode(iso); err != nil {
			b.Fatal(err)
		}
	}
}
