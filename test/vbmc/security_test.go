package vbmc

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const insertPath = "/redfish/v1/Managers/vm1/VirtualMedia/Cd/Actions/VirtualMedia.InsertMedia"

// insert posts InsertMedia and returns the status and the Redfish error message (if any); status 0 when no
// answer came within 10 s (safe to call from any goroutine).
func insert(url, image string) (int, string) {
	body, _ := json.Marshal(map[string]any{"Image": image, "Inserted": true})
	req, err := http.NewRequest(http.MethodPost, url+insertPath, strings.NewReader(string(body)))
	if err != nil {
		return 0, err.Error()
	}
	req.SetBasicAuth("admin", "pw")
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	var e struct{ Error struct{ Message string } }
	b, _ := io.ReadAll(resp.Body)
	json.Unmarshal(b, &e)
	return resp.StatusCode, e.Error.Message
}

// mediaFiles lists the VM's media files (complete or partial).
func mediaFiles(t *testing.T, state string) []string {
	m, err := filepath.Glob(filepath.Join(state, "vm1", "media.iso*"))
	require.NoError(t, err)
	return m
}

// TestInsertMediaSizeCap: max_media_bytes holds whether or not the server announces the size, an endless stream
// is cut (not read to the end), and a refused download leaves neither a file nor an inserted medium.
func TestInsertMediaSizeCap(t *testing.T) {
	const limit = 1000
	for _, tc := range []struct {
		name    string
		size    int  // -1: endless
		chunked bool // no Content-Length: the cap must hold on the streamed bytes
		ok      bool
	}{
		{"endless stream", -1, true, false},
		{"exactly the cap", limit, false, true},
		{"over the cap, announced", limit + 1, false, false},
		{"over the cap, chunked", 50 * limit, true, false},
		{"exactly the cap, chunked", limit, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			iso := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if !tc.chunked {
					w.Header().Set("Content-Length", strconv.Itoa(tc.size))
				}
				if tc.size < 0 { // until the BMC hangs up: only a cap on the streamed bytes stops it
					for r.Context().Err() == nil {
						if _, err := w.Write([]byte(strings.Repeat("x", 4096))); err != nil {
							return
						}
					}
					return
				}
				for i := 0; i < tc.size; i += 100 {
					w.Write([]byte(strings.Repeat("x", min(100, tc.size-i))))
					w.(http.Flusher).Flush()
				}
			}))
			defer iso.Close()
			state := t.TempDir()
			url, _ := startBMCWith(t, Config{Username: "admin", Password: "pw", StateDir: state, Runner: &fakeRunner{}, MaxMediaBytes: limit,
				MediaTimeout: 5 * time.Second})
			code, msg := insert(url, iso.URL+"/a.iso")
			if tc.ok {
				require.Equal(t, http.StatusNoContent, code, msg)
				b, err := os.ReadFile(filepath.Join(state, "vm1", "media.iso"))
				require.NoError(t, err)
				assert.Len(t, b, tc.size)
				return
			}
			assert.Equal(t, http.StatusBadRequest, code)
			assert.Contains(t, msg, "max_media_bytes", "the error names the config key to raise")
			assert.Empty(t, mediaFiles(t, state), "the partial file is removed")
			code, msg = insert(url, iso.URL+"/a.iso")
			assert.Equal(t, http.StatusBadRequest, code, "no medium was recorded as inserted: %s", msg)
		})
	}
}

// stallingISO serves some bytes, signals started, then holds the response until release is closed.
func stallingISO(t *testing.T) (srv *httptest.Server, started chan struct{}, release chan struct{}) {
	started, release = make(chan struct{}, 10), make(chan struct{})
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("partial-bytes"))
		w.(http.Flusher).Flush()
		started <- struct{}{}
		select {
		case <-release:
			w.Write([]byte("-rest"))
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	return srv, started, release
}

// TestInsertMediaOneDownloadAtATime: a second InsertMedia during a download gets 409 and starts nothing; the
// first one finishes with its own bytes.
func TestInsertMediaOneDownloadAtATime(t *testing.T) {
	iso, started, release := stallingISO(t)
	state := t.TempDir()
	url, _ := startBMCWith(t, Config{Username: "admin", Password: "pw", StateDir: state, Runner: &fakeRunner{}})
	first := make(chan int, 1)
	go func() { code, _ := insert(url, iso.URL+"/first.iso"); first <- code }()
	<-started
	code, msg := insert(url, iso.URL+"/second.iso")
	assert.Equal(t, http.StatusConflict, code)
	assert.Contains(t, msg, "in progress")
	close(release)
	assert.Equal(t, http.StatusNoContent, <-first, "the first download completes")
	b, err := os.ReadFile(filepath.Join(state, "vm1", "media.iso"))
	require.NoError(t, err)
	assert.Equal(t, "partial-bytes-rest", string(b), "the medium is the first download's, whole")
	assert.Len(t, started, 0, "the second InsertMedia started no download")
}

// TestInsertMediaCancelledOnShutdown: stopping the BMC ends a stalled download at once and removes its partial
// file (before, the download outlived the 5 s HTTP shutdown and kept media.iso.part).
func TestInsertMediaCancelledOnShutdown(t *testing.T) {
	iso, started, _ := stallingISO(t)
	state := t.TempDir()
	url, stop := startBMCWith(t, Config{Username: "admin", Password: "pw", StateDir: state, Runner: &fakeRunner{}})
	go insert(url, iso.URL+"/a.iso")
	<-started
	require.Eventually(t, func() bool { return len(mediaFiles(t, state)) == 1 }, 5*time.Second, 10*time.Millisecond)
	t0 := time.Now()
	stop()
	assert.Less(t, time.Since(t0), 3*time.Second, "shutdown does not wait out the download")
	assert.Empty(t, mediaFiles(t, state), "the cancelled download left no partial file")
}

// TestInsertMediaTimeout: a stalled download ends at media_timeout with an error naming the key.
func TestInsertMediaTimeout(t *testing.T) {
	iso, _, _ := stallingISO(t)
	state := t.TempDir()
	url, _ := startBMCWith(t, Config{Username: "admin", Password: "pw", StateDir: state, Runner: &fakeRunner{}, MediaTimeout: 300 * time.Millisecond})
	t0 := time.Now()
	code, msg := insert(url, iso.URL+"/a.iso")
	assert.Less(t, time.Since(t0), 5*time.Second)
	assert.Equal(t, http.StatusBadRequest, code)
	assert.Contains(t, msg, "media_timeout")
	assert.Empty(t, mediaFiles(t, state))
}

// TestRunRefusesUnsafeAuth: no auth only on loopback; a username needs a password.
func TestRunRefusesUnsafeAuth(t *testing.T) {
	for _, tc := range []struct {
		name, listen, user, pass, want string
	}{
		{"no auth on all interfaces", ":8000", "", "", "non-loopback"},
		{"no auth on a routable address", "192.0.2.10:8000", "", "", "set username and password_file"},
		{"no auth on IPv6 any", "[::]:8000", "", "", "non-loopback"},
		{"user without password", "127.0.0.1:0", "admin", "", "password_file or FERRIC_VBMC_PASSWORD"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			cancel() // were it accepted, Run would return at once
			l := logrus.New()
			l.SetOutput(io.Discard)
			err := Run(ctx, Config{Listen: tc.listen, Username: tc.user, Password: tc.pass, StateDir: t.TempDir(), Runner: &fakeRunner{}}, logrus.NewEntry(l))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	// No auth stays allowed on loopback (development).
	for _, listen := range []string{"127.0.0.1:0", "localhost:0", "[::1]:0"} {
		assert.NoError(t, checkAuth("", "", listen), listen)
	}
	url, _ := startBMCWith(t, Config{StateDir: t.TempDir(), Runner: &fakeRunner{}})
	resp, err := http.Get(url + "/redfish/v1/Systems")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
}

// TestPasswordFile: password_file is read (trailing newline dropped); ambiguous or empty configurations are refused.
func TestPasswordFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(body), 0o600))
		return p
	}
	good := write("pw", "s3cret\n")
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"both password and password_file", "password: x\npassword_file: " + good, "keep only password_file"},
		{"empty file", "password_file: " + write("empty", "\n"), "is empty"},
		{"missing file", "password_file: " + filepath.Join(dir, "nope"), "password_file: stat"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := LoadConfig(write("c.yaml", "username: admin\nstate_dir: "+t.TempDir()+"\n"+tc.yaml+"\n"))
			require.NoError(t, err)
			cfg.Runner, cfg.Listen = &fakeRunner{}, "127.0.0.1:0"
			ctx, cancel := context.WithCancel(context.Background())
			cancel() // were it accepted, Run would return at once
			err = Run(ctx, cfg, logrus.NewEntry(logrus.New()))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}

	cfg, err := LoadConfig(write("c.yaml", "username: admin\npassword_file: "+good+"\nmax_media_bytes: 123\nmedia_timeout: 2m\n"))
	require.NoError(t, err)
	assert.Equal(t, int64(123), cfg.MaxMediaBytes)
	assert.Equal(t, 2*time.Minute, cfg.MediaTimeout)
	cfg.StateDir, cfg.Runner = t.TempDir(), &fakeRunner{}
	url, _ := startBMCWith(t, cfg)
	for pw, want := range map[string]int{"s3cret": http.StatusOK, "s3cret\n": http.StatusUnauthorized, "": http.StatusUnauthorized} {
		req, _ := http.NewRequest(http.MethodGet, url+"/redfish/v1/Systems", nil)
		req.SetBasicAuth("admin", pw)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, want, resp.StatusCode, "password %q", pw)
	}
}

// TestInsertMediaErrorsHideURL: a failed download's error shows the image's scheme and host only; its path (the
// conductor's unguessable boot-media URL) and any user:password stay out of responses and logs.
func TestInsertMediaErrorsHideURL(t *testing.T) {
	iso := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "missing") {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte(strings.Repeat("x", 100)))
	}))
	defer iso.Close()
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()
	withCreds := func(base string) string { return strings.Replace(base, "http://", "http://user:pw-secret@", 1) }
	url, _ := startBMCWith(t, Config{Username: "admin", Password: "pw", StateDir: t.TempDir(), Runner: &fakeRunner{}, MaxMediaBytes: 10})
	for _, image := range []string{
		withCreds(iso.URL) + "/missing/cap-token-123/agent.iso",
		withCreds(gone.URL) + "/cap-token-123/agent.iso",
		withCreds(iso.URL) + "/cap-token-123/agent.iso", // too large
		"ftp://user:pw-secret@host/cap-token-123",
	} {
		code, msg := insert(url, image)
		assert.Equal(t, http.StatusBadRequest, code, msg)
		assert.NotContains(t, msg, "cap-token-123")
		assert.NotContains(t, msg, "pw-secret")
	}
}
