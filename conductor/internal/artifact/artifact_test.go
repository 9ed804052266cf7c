package artifact

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeDNS answers look-ups from a table, as a hostile or a well-meaning DNS server would.
func fakeDNS(table map[string]string) func(context.Context, string) ([]net.IPAddr, error) {
	return func(_ context.Context, host string) ([]net.IPAddr, error) {
		ip, ok := table[host]
		if !ok {
			return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
		}
		return []net.IPAddr{{IP: net.ParseIP(ip)}}, nil
	}
}

func TestLocalPaths(t *testing.T) {
	dir := t.TempDir()
	outside := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "vmlinuz"), []byte("KERNEL"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(outside, "ferric.db"), []byte("SECRETS"), 0o600))
	require.NoError(t, os.Symlink(filepath.Join(outside, "ferric.db"), filepath.Join(dir, "escape")))
	require.NoError(t, os.Symlink(filepath.Join(dir, "vmlinuz"), filepath.Join(dir, "inside-link")))
	require.NoError(t, os.Mkdir(filepath.Join(dir, "sub"), 0o755))
	big := filepath.Join(dir, "big")
	require.NoError(t, os.WriteFile(big, make([]byte, 2048), 0o644))

	f, err := New(Config{Dir: dir, MaxBytes: 1024})
	require.NoError(t, err)
	for _, tc := range []struct {
		name, src, err string
	}{
		{"inside", filepath.Join(dir, "vmlinuz"), ""},
		{"file URL inside", "file://" + filepath.Join(dir, "vmlinuz"), ""},
		{"symlink staying inside", filepath.Join(dir, "inside-link"), ""},
		{"outside", filepath.Join(outside, "ferric.db"), "outside --artifacts-dir"},
		{"dot-dot escape", filepath.Join(dir, "..", filepath.Base(outside), "ferric.db"), "outside --artifacts-dir"},
		{"symlink escape", filepath.Join(dir, "escape"), "outside --artifacts-dir"},
		{"relative", "vmlinuz", "must be absolute"},
		{"directory", filepath.Join(dir, "sub"), "not a regular file"},
		{"too big", big, "more than --artifact-max-size"},
		{"missing", filepath.Join(dir, "nope"), "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := f.Check(context.Background(), "driver_info.deploy_kernel", tc.src)
			data, rerr := f.Read(context.Background(), "driver_info.deploy_kernel", tc.src)
			if tc.err == "" {
				require.NoError(t, err)
				require.NoError(t, rerr)
				assert.Equal(t, "KERNEL", string(data))
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.err)
			assert.Contains(t, err.Error(), "driver_info.deploy_kernel", "the error names the field")
			require.Error(t, rerr, "reading re-checks")
			assert.Nil(t, data)
		})
	}

	none, err := New(Config{})
	require.NoError(t, err)
	err = none.Check(context.Background(), "driver_info.deploy_ramdisk", filepath.Join(dir, "vmlinuz"))
	require.ErrorIs(t, err, ErrRefused)
	assert.Contains(t, err.Error(), "--artifacts-dir, which is not set")
}

func TestURLs(t *testing.T) {
	payload := strings.Repeat("R", 512)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/initrd":
			w.Write([]byte(payload))
		case "/huge":
			w.Header().Set("Content-Length", "999999")
			w.WriteHeader(200)
		case "/huge-chunked":
			w.(http.Flusher).Flush() // no Content-Length: the cap applies while streaming
			for i := 0; i < 8; i++ {
				w.Write([]byte(payload))
			}
		case "/to-metadata":
			http.Redirect(w, r, "http://169.254.169.254/latest/meta-data/", http.StatusFound)
		case "/to-loopback":
			http.Redirect(w, r, "http://127.0.0.2:"+r.Host[strings.LastIndex(r.Host, ":")+1:]+"/initrd", http.StatusFound)
		case "/to-file":
			http.Redirect(w, r, "file:///etc/shadow", http.StatusFound)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	port := srv.URL[strings.LastIndex(srv.URL, ":")+1:]

	// The test server is on loopback: it is reached only through the allow list, by name (artifacts.test) or by
	// address (127.0.0.1).
	byName, err := New(Config{MaxBytes: 1024, Allow: []string{"artifacts.test"}})
	require.NoError(t, err)
	byName.lookup = fakeDNS(map[string]string{"artifacts.test": "127.0.0.1", "evil.test": "169.254.169.254",
		"rebind.test": "127.0.0.1"})
	byIP, err := New(Config{MaxBytes: 1024, Allow: []string{"127.0.0.1/32"}})
	require.NoError(t, err)
	closed, err := New(Config{MaxBytes: 1024})
	require.NoError(t, err)
	closed.lookup = byName.lookup

	for _, tc := range []struct {
		name string
		f    *Fetcher
		src  string
		err  string
	}{
		{"allowed by name", byName, "http://artifacts.test:" + port + "/initrd", ""},
		{"allowed by address", byIP, srv.URL + "/initrd", ""},
		{"loopback refused", closed, srv.URL + "/initrd", "internal to the conductor's host"},
		{"metadata refused", closed, "http://169.254.169.254/latest/meta-data/", "internal to the conductor's host"},
		{"ipv6 loopback refused", closed, "http://[::1]:" + port + "/initrd", "internal to the conductor's host"},
		{"name resolving to metadata", closed, "http://evil.test/x", "resolves to 169.254.169.254"},
		{"name resolving to loopback", closed, "http://rebind.test:" + port + "/initrd", "resolves to 127.0.0.1"},
		{"unresolvable", closed, "http://nowhere.test/x", "cannot resolve"},
		{"scheme", closed, "ftp://example.com/x", "not an http(s) URL"},
		{"oversize announced", byIP, srv.URL + "/huge", "more than --artifact-max-size"},
		{"oversize streamed", byIP, srv.URL + "/huge-chunked", "larger than --artifact-max-size"},
		{"redirect to metadata", byIP, srv.URL + "/to-metadata", "internal to the conductor's host"},
		{"redirect to other loopback", byIP, srv.URL + "/to-loopback", "internal to the conductor's host"},
		{"redirect to file", byIP, srv.URL + "/to-file", "only http and https"},
		{"not found", byIP, srv.URL + "/nope", "HTTP 404"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data, err := tc.f.Read(context.Background(), "driver_info.deploy_ramdisk", tc.src)
			if tc.err == "" {
				require.NoError(t, err)
				assert.Equal(t, payload, string(data))
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.err)
			assert.Contains(t, err.Error(), "driver_info.deploy_ramdisk")
		})
	}
	// Check refuses at validation what Read would refuse for the host, without downloading.
	err = closed.Check(context.Background(), "driver_info.deploy_iso", "http://169.254.169.254/iso")
	assert.True(t, errors.Is(err, ErrRefused))
	assert.NoError(t, byName.Check(context.Background(), "driver_info.deploy_iso", "http://artifacts.test/iso"))
}

func TestRedactedMessages(t *testing.T) {
	f, err := New(Config{Allow: []string{"127.0.0.1"}})
	require.NoError(t, err)
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	u := strings.Replace(srv.URL, "http://", "http://user:hunter2@", 1) + "/x?X-Amz-Signature=sekrit"
	_, err = f.Read(context.Background(), "driver_info.deploy_iso", u)
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "hunter2")
	assert.NotContains(t, err.Error(), "sekrit")
}

func TestConfigErrors(t *testing.T) {
	_, err := New(Config{Allow: []string{"10.0.0.0/33"}})
	assert.ErrorContains(t, err, "--artifact-allow-host")
}
