package agent

// The agent's rescue mode (IPA's rescue extension): rescue.finalize_rescue takes the crypt(3) hash of the rescue
// password, creates or updates the `rescue` user with it, and the agent stops heartbeating and serving its command
// API (the node belongs to its tenant now) but keeps a login service running: dropbear, with password logins for
// the rescue group only and never for root.
//
// IPA writes the hash to a file for a ramdisk service to apply after IPA exits; Ferric's agent applies it
// itself and stays up as the login service's supervisor, but serves nothing to the network but that service:
// the command API must not be reachable from the tenant's network, as IPA's note on finalize_rescue says.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ferric-metal/ferric/deploy"
	"github.com/ferric-metal/ferric/ramdisk-agent/internal/api"
)

// RescueUser is the account a rescued node's operator logs in as (IPA's name).
const RescueUser = "rescue"

// Defaults of the rescue login service, as the ramdisk build installs them (images/ramdisk RescueBinaries).
const (
	defaultDropbear = "/usr/sbin/dropbear"
	rescueShell     = "/bin/sh"
)

// cryptHash matches the crypt(3) hashes a shadow file takes for a rescue password: SHA-256 ($5$, Ironic's default),
// SHA-512 ($6$) and yescrypt ($y$), with the optional rounds= parameter. Nothing else may reach /etc/shadow: no
// ':' or newline (a second entry), no clear text.
var cryptHash = regexp.MustCompile(`^\$(5|6|y)\$[./0-9A-Za-z$=,]{8,}$`)

// rescueState is the agent's switch into rescue mode: entered is closed once, after finalize_rescue answered.
type rescueState struct {
	mu      sync.Mutex
	ch      chan struct{}
	entered bool
}

// wait returns the channel closed when the agent enters rescue mode.
func (r *rescueState) wait() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.chLocked()
}

// chLocked returns the channel, making it on first use; r.mu must be held.
func (r *rescueState) chLocked() chan struct{} {
	if r.ch == nil {
		r.ch = make(chan struct{})
	}
	return r.ch
}

// enter closes the channel (once); it reports whether this call did.
func (r *rescueState) enter() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.entered {
		return false
	}
	r.entered = true
	close(r.chLocked())
	return true
}

// rescueRoot is the directory whose etc/passwd, etc/group and etc/shadow get the rescue user: Config.RescueRoot, else
// "/" in the ramdisk; a local agent (PowerOff "exit": a process on the conductor's host, not a machine) never
// touches the host's accounts, its rescue root is in its state directory.
func (a *Agent) rescueRoot() string {
	switch {
	case a.cfg.RescueRoot != "":
		return a.cfg.RescueRoot
	case a.cfg.PowerOff == "exit":
		return filepath.Join(a.cfg.StateDir, "rescue-root")
	}
	return "/"
}

// finalizeRescue is rescue.finalize_rescue: it refuses a clear password (the conductor sends hashed=true with a
// crypt(3) hash; a clear one would have crossed the network and could end up in logs), and a ramdisk without a
// login service (a rescue nobody can log in to is no rescue); then it sets up the rescue user and, half a second
// later (the answer goes out first), switches the agent into rescue mode.
func (a *Agent) finalizeRescue(_ context.Context, raw json.RawMessage, _ *api.Command) (any, error) {
	var p deploy.FinalizeRescueParams
	if err := json.Unmarshal(raw, &p); err != nil {
		return nil, &api.ClientError{Err: fmt.Errorf("params: %w", err)}
	}
	if !p.Hashed {
		return nil, &api.ClientError{Err: errors.New("refusing a rescue password that is not hashed: send its crypt(3) hash with \"hashed\": true (Ironic does since Ussuri)")}
	}
	if !cryptHash.MatchString(p.RescuePassword) {
		return nil, &api.ClientError{Err: errors.New("rescue_password is not a SHA-256, SHA-512 or yescrypt crypt(3) hash ($5$, $6$ or $y$)")}
	}
	// Checked before any account is written: a failed rescue should leave the ramdisk as it was.
	root := a.rescueRoot()
	if root == "/" {
		for _, f := range []string{a.dropbear(), rescueShell} {
			if _, err := os.Stat(f); err != nil {
				return nil, fmt.Errorf("this ramdisk has no %s, so nobody could log in to the rescue environment: rebuild it with "+
					"`ferric ramdisk build` on a host with dropbear-bin and busybox-static installed", f)
			}
		}
	}
	if err := setRescueUser(root, p.RescuePassword, time.Now()); err != nil {
		return nil, fmt.Errorf("set up the rescue user: %w", err)
	}
	if err := os.WriteFile(filepath.Join(root, "etc", ".rescued"), nil, 0o600); err != nil { // IPA's marker
		a.log.WithError(err).Warn("rescue marker /etc/.rescued not written")
	}
	a.log.WithField("root", root).Info("rescue user set up; entering rescue mode")
	// finalize_rescue is synchronous, as in IPA: its answer must reach the conductor before the command API
	// closes, or the conductor would see the rescue fail.
	go func() {
		time.Sleep(500 * time.Millisecond)
		a.rescue.enter()
	}()
	return nil, nil
}

// dropbear is the login server's path: Config.Dropbear (tests, other ramdisk layouts) or the ramdisk's.
func (a *Agent) dropbear() string {
	if a.cfg.Dropbear != "" {
		return a.cfg.Dropbear
	}
	return defaultDropbear
}

// serveRescue is the agent in rescue mode (its command API is closed and its heartbeats stopped by the caller): it
// keeps the login service running until ctx ends, restarting it when it exits. A rescue root other than "/"
// (a local agent) has no login service of its own: the accounts are written for inspection only.
func (a *Agent) serveRescue(ctx context.Context) error {
	log := a.log.WithField("component", "rescue")
	if a.rescueRoot() != "/" {
		log.WithField("root", a.rescueRoot()).Info("rescue mode: accounts written outside /, no login service started")
		<-ctx.Done()
		return nil
	}
	if err := os.MkdirAll("/etc/dropbear", 0o700); err != nil {
		log.WithError(err).Warn("no /etc/dropbear for the host keys")
	}
	for {
		cmd := exec.CommandContext(ctx, a.dropbear(), dropbearArgs("22")...)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		log.Info("rescue mode: dropbear listening on port 22 for user " + RescueUser)
		err := cmd.Run()
		// A pause between restarts so a dropbear that dies at once (bad keys, port taken) does not spin.
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(2 * time.Second):
		}
		log.WithError(err).Warn("dropbear ended; restarting it")
	}
}

// dropbearArgs are the rescue login's flags: -R makes host keys on first use, -F/-E keep dropbear in the
// foreground logging to the agent's stderr, -w refuses root and -G lets only the rescue group in; listen is
// [address:]port.
func dropbearArgs(listen string) []string {
	return []string{"-R", "-F", "-E", "-w", "-G", RescueUser, "-p", listen}
}

// setRescueUser creates or updates the rescue user and group under root (etc/passwd, etc/group, etc/shadow) with the
// password hash, home /home/rescue and shell /bin/sh. An existing rescue entry keeps its ids; a new one takes the
// first id from 1000 free in both passwd and group. Each file is replaced atomically; shadow is 0600.
func setRescueUser(root, hash string, now time.Time) error {
	etc := filepath.Join(root, "etc")
	if err := os.MkdirAll(etc, 0o755); err != nil {
		return err
	}
	passwd, err := readLines(filepath.Join(etc, "passwd"))
	if err != nil {
		return err
	}
	group, err := readLines(filepath.Join(etc, "group"))
	if err != nil {
		return err
	}
	shadow, err := readLines(filepath.Join(etc, "shadow"))
	if err != nil {
		return err
	}
	// A second finalize_rescue (the conductor retried) keeps the same ids, so the home stays the user's.
	uid, gid := entryID(passwd, 2), entryID(group, 2)
	if uid < 0 || gid < 0 {
		uid = freeID(passwd, group)
		gid = uid
	}
	home := "/home/" + RescueUser
	passwd = withEntry(passwd, fmt.Sprintf("%s:x:%d:%d:rescue user:%s:%s", RescueUser, uid, gid, home, rescueShell))
	group = withEntry(group, fmt.Sprintf("%s:x:%d:", RescueUser, gid))
	// shadow's last-change field counts days since the epoch; 0:99999:7 are the usual no-ageing values, so
	// the password never expires while the node is rescued.
	days := now.Unix() / 86400
	shadow = withEntry(shadow, fmt.Sprintf("%s:%s:%d:0:99999:7:::", RescueUser, hash, days))
	for _, f := range []struct {
		name  string
		lines []string
		mode  os.FileMode
	}{{"passwd", passwd, 0o644}, {"group", group, 0o644}, {"shadow", shadow, 0o600}} {
		if err := writeAtomic(filepath.Join(etc, f.name), []byte(strings.Join(f.lines, "\n")+"\n"), f.mode); err != nil {
			return err
		}
	}
	dir := filepath.Join(root, home)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	// An unprivileged test or local agent cannot chown; the ramdisk, running as root, always can.
	if err := os.Chown(dir, uid, gid); err != nil && !errors.Is(err, os.ErrPermission) {
		return err
	}
	return nil
}

// readLines reads a colon-separated account file; a missing file is empty.
func readLines(p string) ([]string, error) {
	f, err := os.Open(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if l := sc.Text(); strings.TrimSpace(l) != "" {
			out = append(out, l)
		}
	}
	return out, sc.Err()
}

// entryID returns field i of the rescue entry as a number, -1 when there is none.
func entryID(lines []string, i int) int {
	for _, l := range lines {
		f := strings.Split(l, ":")
		if f[0] == RescueUser && len(f) > i {
			if n, err := strconv.Atoi(f[i]); err == nil {
				return n
			}
		}
	}
	return -1
}

// freeID returns the first id from 1000 used by no entry of passwd (uid) or group (gid).
func freeID(passwd, group []string) int {
	used := map[int]bool{}
	for _, l := range append(append([]string(nil), passwd...), group...) {
		if f := strings.Split(l, ":"); len(f) > 2 {
			if n, err := strconv.Atoi(f[2]); err == nil {
				used[n] = true
			}
		}
	}
	id := 1000
	for used[id] {
		id++
	}
	return id
}

// withEntry replaces the rescue entry of lines (or appends one).
func withEntry(lines []string, entry string) []string {
	out := make([]string, 0, len(lines)+1)
	for _, l := range lines {
		// The trailing ':' matches the rescue entry only, not a user such as rescuer.
		if !strings.HasPrefix(l, RescueUser+":") {
			out = append(out, l)
		}
	}
	return append(out, entry)
}

// writeAtomic writes a file through a temporary one in the same directory, created with mode (never readable by
// others in between).
func writeAtomic(p string, data []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(p), "."+filepath.Base(p)+".")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	// CreateTemp makes the file 0600; chmod before writing, so shadow never exists with wider rights.
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), p)
}
