package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/GehirnInc/crypt/sha256_crypt"
	"github.com/GehirnInc/crypt/sha512_crypt"
	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"

	"github.com/ferric-metal/ferric/deploy"
	"github.com/ferric-metal/ferric/test/testenv"
)

// shadowHash returns the rescue user's hash in root's etc/shadow.
func shadowHash(t *testing.T, root string) string {
	b, err := os.ReadFile(filepath.Join(root, "etc", "shadow"))
	require.NoError(t, err)
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Split(l, ":"); f[0] == RescueUser && len(f) == 9 {
			return f[1]
		}
	}
	t.Fatalf("no rescue entry in shadow:\n%s", b)
	return ""
}

// TestSetRescueUser: the rescue user is created (first free id from 1000) or updated (ids kept), with a shadow
// entry that verifies with the password (library verifiers), shadow 0600, and the other entries untouched.
func TestSetRescueUser(t *testing.T) {
	const pw = "open-sesame-42"
	h512, err := sha512_crypt.New().Generate([]byte(pw), nil)
	require.NoError(t, err)
	h256, err := sha256_crypt.New().Generate([]byte(pw), nil)
	require.NoError(t, err)
	tests := []struct {
		name                  string
		passwd, group, shadow string
		hash                  string
		wantPasswd            string
	}{
		{"empty root", "", "", "", h512, "rescue:x:1000:1000:rescue user:/home/rescue:/bin/sh"},
		{"ramdisk files, id 1000 taken", "root:x:0:0:root:/root:/bin/sh\nfoo:x:1000:1000::/:/bin/false\n", "root:x:0:\nfoo:x:1000:\n", "",
			h256, "rescue:x:1001:1001:rescue user:/home/rescue:/bin/sh"},
		{"existing rescue user updated", "root:x:0:0:root:/root:/bin/sh\nrescue:x:1234:1234::/home/rescue:/bin/sh\n",
			"rescue:x:1234:\n", "root:*:1::::::\nrescue:$6$old$old:1:0:99999:7:::\n", h512, "rescue:x:1234:1234:rescue user:/home/rescue:/bin/sh"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			etc := filepath.Join(root, "etc")
			require.NoError(t, os.MkdirAll(etc, 0o755))
			for name, c := range map[string]string{"passwd": tc.passwd, "group": tc.group, "shadow": tc.shadow} {
				if c != "" {
					require.NoError(t, os.WriteFile(filepath.Join(etc, name), []byte(c), 0o644))
				}
			}
			require.NoError(t, setRescueUser(root, tc.hash, time.Unix(86400*20000, 0)))

			got := shadowHash(t, root)
			assert.Equal(t, tc.hash, got)
			verify := sha512_crypt.New().Verify
			if strings.HasPrefix(got, "$5$") {
				verify = sha256_crypt.New().Verify
			}
			assert.NoError(t, verify(got, []byte(pw)), "the shadow entry logs in with the password")
			assert.Error(t, verify(got, []byte(pw+"x")))
			st, err := os.Stat(filepath.Join(etc, "shadow"))
			require.NoError(t, err)
			assert.Equal(t, os.FileMode(0o600), st.Mode().Perm(), "shadow is root's only")
			sh, _ := os.ReadFile(filepath.Join(etc, "shadow"))
			assert.Contains(t, string(sh), ":20000:0:99999:7:::", "last change in days since the epoch")
			pb, _ := os.ReadFile(filepath.Join(etc, "passwd"))
			assert.Contains(t, strings.Split(string(pb), "\n"), tc.wantPasswd)
			assert.Equal(t, 1, strings.Count("\n"+string(pb), "\nrescue:"), "one rescue entry")
			for _, l := range strings.Split(strings.TrimSpace(tc.passwd), "\n") {
				if l != "" && !strings.HasPrefix(l, "rescue:") {
					assert.Contains(t, string(pb), l, "other entries are kept")
				}
			}
			home, err := os.Stat(filepath.Join(root, "home", "rescue"))
			require.NoError(t, err)
			assert.True(t, home.IsDir())
		})
	}
}

// freeAddr returns a 127.0.0.1 address nothing listens on.
func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

// TestFinalizeRescue runs the agent against the stand-in conductor: finalize_rescue refuses a clear password and
// anything that is not a crypt hash (nothing written); with the hash it writes the rescue user (root pointed at a
// temporary directory), answers, then stops serving its API and heartbeating while it keeps running (rescue mode)
// until it is stopped.
func TestFinalizeRescue(t *testing.T) {
	cond := &conductor{inspectCode: http.StatusNotFound, beatToken: make(chan string, 16)}
	// Heartbeats every 0.3-0.6 s (heartbeat_timeout 1), so that a heartbeat in rescue mode would show.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/lookup" {
			w.Write([]byte(`{"node": {"uuid": "` + inspNode + `"}, "config": {"heartbeat_timeout": 1, "agent_token": "` + lookToken + `"}}`))
			return
		}
		cond.ServeHTTP(w, r)
	}))
	defer srv.Close()
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	addr := freeAddr(t)
	log := logrus.New()
	log.SetOutput(io.Discard)
	cfg := Config{APIURL: srv.URL, Listen: addr, Advertise: addr, InsecureHTTP: true,
		PodmanSocket: "unix://" + filepath.Join(dir, "none.sock"), StateDir: filepath.Join(dir, "state"),
		LookupTimeout: time.Second, PowerOff: "exit", SysRoot: machine(t), RescueRoot: root}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg, logrus.NewEntry(log)) }()
	select {
	case <-cond.beatToken:
	case err := <-done:
		t.Fatalf("agent ended before its first heartbeat: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("no heartbeat within 20 s")
	}

	finalize := func(params map[string]any) (deploy.CommandResult, error) {
		body, _ := json.Marshal(map[string]any{"name": deploy.CmdFinalizeRescue, "params": params})
		resp, err := http.Post("http://"+addr+"/v1/commands/?wait=true&agent_token="+lookToken, "application/json", bytes.NewReader(body))
		if err != nil {
			return deploy.CommandResult{}, err
		}
		defer resp.Body.Close()
		var r deploy.CommandResult
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&r))
		return r, nil
	}
	const pw = "Rescue-me-please-7"
	hash, err := sha512_crypt.New().Generate([]byte(pw), nil)
	require.NoError(t, err)
	for _, bad := range []map[string]any{
		{"rescue_password": pw, "hashed": false},
		{"rescue_password": pw, "hashed": true},
		{"rescue_password": hash + "\nroot::0:0:99999:7:::", "hashed": true},
	} {
		r, err := finalize(bad)
		require.NoError(t, err)
		assert.Equal(t, deploy.StatusFailed, r.CommandStatus, "%v", bad)
		require.NotNil(t, r.CommandError)
		assert.Equal(t, 400, r.CommandError.Code)
		assert.NoFileExists(t, filepath.Join(root, "etc", "shadow"), "a refused finalize writes nothing")
	}
	r, err := finalize(map[string]any{"rescue_password": hash, "hashed": true})
	require.NoError(t, err)
	require.Equal(t, deploy.StatusSucceeded, r.CommandStatus, "%+v", r.CommandError)
	assert.NoError(t, sha512_crypt.New().Verify(shadowHash(t, root), []byte(pw)))

	// Rescue mode: the API closes (connections refused) and heartbeats stop, but the agent keeps running.
	require.Eventually(t, func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err != nil
	}, 10*time.Second, 100*time.Millisecond, "the command API is closed in rescue mode")
	for len(cond.beatToken) > 0 {
		<-cond.beatToken
	}
	select {
	case <-cond.beatToken:
		t.Fatal("a heartbeat in rescue mode")
	case err := <-done:
		t.Fatalf("the agent ended in rescue mode: %v", err)
	case <-time.After(2 * time.Second):
	}
	cancel()
	select {
	case err := <-done:
		assert.NoError(t, err)
	case <-time.After(20 * time.Second):
		t.Fatal("the rescued agent did not stop")
	}
}

// chrootRamdisk lays out what the ramdisk build puts in for the rescue login (dropbear with its libraries, busybox
// as /bin/sh, /etc/shells, a root-only /etc/passwd, device nodes) under a new directory.
func chrootRamdisk(t *testing.T) string {
	dir := t.TempDir()
	copyIn := func(src string, mode os.FileMode) {
		b, err := os.ReadFile(src)
		require.NoError(t, err)
		dst := filepath.Join(dir, src)
		require.NoError(t, os.MkdirAll(filepath.Dir(dst), 0o755))
		require.NoError(t, os.WriteFile(dst, b, mode))
	}
	copyIn(defaultDropbear, 0o755)
	copyIn("/bin/busybox", 0o755)
	out, err := exec.Command("ldd", defaultDropbear).Output()
	require.NoError(t, err)
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 3 && f[1] == "=>" && strings.HasPrefix(f[2], "/"):
			copyIn(f[2], 0o755)
		case len(f) >= 1 && strings.HasPrefix(f[0], "/"):
			copyIn(f[0], 0o755)
		}
	}
	require.NoError(t, os.Symlink("/bin/busybox", filepath.Join(dir, "bin", "sh")))
	for _, d := range []string{"etc/dropbear", "dev", "tmp", "var/run", "run"} { // etc/dropbear: as serveRescue
		require.NoError(t, os.MkdirAll(filepath.Join(dir, d), 0o755))
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "etc", "shells"), []byte("/bin/sh\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "etc", "passwd"), []byte("root:x:0:0:root:/root:/bin/sh\n"), 0o644))
	for name, minor := range map[string]int{"null": 3, "zero": 5, "urandom": 9} {
		require.NoError(t, syscall.Mknod(filepath.Join(dir, "dev", name), syscall.S_IFCHR|0o666, 1<<8|minor))
	}
	return dir
}

// TestRescueLogin: the shadow entry finalize_rescue writes lets the rescue user in through dropbear started with
// the agent's flags, in a chroot laid out like the ramdisk; a wrong password and root are refused. It fails if
// the hash format, the account entries or the flags do not suit dropbear and libcrypt.
func TestRescueLogin(t *testing.T) {
	testenv.Root(t, "the rescue login test (chroot, device nodes)")
	testenv.File(t, defaultDropbear, "dropbear-bin")
	testenv.File(t, "/bin/busybox", "busybox-static")
	root := chrootRamdisk(t)
	const pw = "Let-me-in-2-rescue"
	hash, err := sha512_crypt.New().Generate([]byte(pw), nil)
	require.NoError(t, err)
	require.NoError(t, setRescueUser(root, hash, time.Now()))
	addr := freeAddr(t)
	cmd := exec.Command("chroot", append([]string{root, defaultDropbear}, dropbearArgs(addr)...)...)
	logs := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	require.Eventually(t, func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	}, 10*time.Second, 50*time.Millisecond, "dropbear listens")

	dial := func(user, password string) (*ssh.Client, error) {
		return ssh.Dial("tcp", addr, &ssh.ClientConfig{User: user, Auth: []ssh.AuthMethod{ssh.Password(password)},
			HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second})
	}
	cl, err := dial(RescueUser, pw)
	require.NoError(t, err, "dropbear log:\n%s", logs.String())
	defer cl.Close()
	s, err := cl.NewSession()
	require.NoError(t, err)
	out, err := s.Output("echo rescued; id -u")
	require.NoError(t, err, "dropbear log:\n%s", logs.String())
	assert.Equal(t, "rescued\n1000\n", string(out), "a shell as the rescue user")
	_, err = dial(RescueUser, pw+"!")
	assert.Error(t, err, "a wrong password is refused")
	_, err = dial("root", pw)
	assert.Error(t, err, "root never logs in")
}

// lockedBuffer collects a child's output while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
