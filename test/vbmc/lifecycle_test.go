package vbmc

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// redfishDo sends one authenticated request and returns the status and body.
func redfishDo(t *testing.T, method, url string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = strings.NewReader(string(b))
	}
	req, err := http.NewRequest(method, url, rd)
	require.NoError(t, err)
	req.SetBasicAuth("admin", "pw")
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func resetVM(t *testing.T, url, vm, typ string) (int, map[string]any) {
	return redfishDo(t, http.MethodPost, url+"/redfish/v1/Systems/"+vm+"/Actions/ComputerSystem.Reset", map[string]string{"ResetType": typ})
}

func powerState(t *testing.T, url, vm string) string {
	code, sys := redfishDo(t, http.MethodGet, url+"/redfish/v1/Systems/"+vm, nil)
	require.Equal(t, 200, code)
	return sys["PowerState"].(string)
}

func bootEnabled(t *testing.T, url, vm string) string {
	_, sys := redfishDo(t, http.MethodGet, url+"/redfish/v1/Systems/"+vm, nil)
	return sys["Boot"].(map[string]any)["BootSourceOverrideEnabled"].(string)
}

func setBootOnce(t *testing.T, url, vm, target string) {
	code, _ := redfishDo(t, http.MethodPatch, url+"/redfish/v1/Systems/"+vm, map[string]any{"Boot": map[string]string{
		"BootSourceOverrideTarget": target, "BootSourceOverrideEnabled": "Once"}})
	require.Equal(t, http.StatusNoContent, code)
}

// savedIntent reads the power intent the BMC saved for vm1.
func savedIntent(t *testing.T, state string) bool {
	var st State
	b, err := os.ReadFile(filepath.Join(state, "vm1", "state.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &st))
	return st.PowerOn
}

// sleeper starts a long-running process standing in for a QEMU a killed BMC left behind (its own process group,
// as QEMU). The test reaps it; exited reports when it has.
func sleeper(t *testing.T) (pid int, exited <-chan struct{}) {
	cmd := exec.Command("sleep", "300")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, cmd.Start())
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-done })
	return cmd.Process.Pid, done
}

// TestRestartAdoptsRunningVM: a BMC restarted after being killed finds the VM it had started (power On, no second
// QEMU) and ForceOff ends that process; a record of a process that has exited, or whose PID now belongs to
// another program, is forgotten (the VM is started anew, as its intent is On) and that program is left alone.
// Before: the record did not exist, every restart started a second "QEMU" and ForceOff left the old one running.
func TestRestartAdoptsRunningVM(t *testing.T) {
	for _, tc := range []struct {
		name   string
		doctor func(rec *pidRecord) // makes the record stale
		adopt  bool
	}{
		{"running QEMU adopted", nil, true},
		{"PID reused by another program", func(rec *pidRecord) { rec.Exe = "/usr/bin/qemu-system-x86_64" }, false},
		{"PID reused later (other start time)", func(rec *pidRecord) { rec.StartTime = "1" }, false},
		{"process gone", func(rec *pidRecord) { rec.PID = 1 << 22 }, false}, // above pid_max's default
	} {
		t.Run(tc.name, func(t *testing.T) {
			state := t.TempDir()
			pid, exited := sleeper(t)
			start, exe, err := procIdentity(pid)
			require.NoError(t, err)
			rec := pidRecord{PID: pid, StartTime: start, Exe: exe}
			if tc.doctor != nil {
				tc.doctor(&rec)
			}
			require.NoError(t, os.MkdirAll(filepath.Join(state, "vm1"), 0o700))
			data, _ := json.Marshal(rec)
			require.NoError(t, os.WriteFile(filepath.Join(state, "vm1", pidFile), data, 0o600))
			data, _ = json.Marshal(State{PowerOn: true, BootEnabled: "Disabled", BootTarget: "None", BootMode: "UEFI"})
			require.NoError(t, os.WriteFile(filepath.Join(state, "vm1", "state.json"), data, 0o600))

			runner := &fakeRunner{}
			url, _ := startBMC(t, runner, state)
			assert.Equal(t, "On", powerState(t, url, "vm1"))
			if !tc.adopt {
				assert.Equal(t, 1, runner.count(), "the intent is On: a VM is started in place of the stale record")
				_, err := os.Stat(filepath.Join(state, "vm1", pidFile))
				assert.True(t, errors.Is(err, os.ErrNotExist), "the stale record is forgotten")
				code, _ := resetVM(t, url, "vm1", "ForceOff")
				require.Equal(t, http.StatusNoContent, code)
				select {
				case <-exited:
					t.Fatal("ForceOff killed a process that was not the VM's")
				case <-time.After(300 * time.Millisecond):
				}
				return
			}
			assert.Equal(t, 0, runner.count(), "no second QEMU is started for an adopted VM")
			code, _ := resetVM(t, url, "vm1", "ForceOff")
			require.Equal(t, http.StatusNoContent, code)
			select {
			case <-exited:
			case <-time.After(5 * time.Second):
				t.Fatal("ForceOff left the adopted QEMU running")
			}
			assert.Equal(t, "Off", powerState(t, url, "vm1"))
			assert.False(t, savedIntent(t, state))
		})
	}
}

// TestAdoptedVMExitIsNoticed: an adopted QEMU that exits (here: killed from outside) shows as Off.
func TestAdoptedVMExitIsNoticed(t *testing.T) {
	state := t.TempDir()
	pid, _ := sleeper(t)
	start, exe, err := procIdentity(pid)
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(filepath.Join(state, "vm1"), 0o700))
	data, _ := json.Marshal(pidRecord{PID: pid, StartTime: start, Exe: exe})
	require.NoError(t, os.WriteFile(filepath.Join(state, "vm1", pidFile), data, 0o600))
	runner := &fakeRunner{}
	url, _ := startBMC(t, runner, state)
	require.Equal(t, "On", powerState(t, url, "vm1"))
	require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
	require.Eventually(t, func() bool { return powerState(t, url, "vm1") == "Off" }, 5*time.Second, 50*time.Millisecond)
	assert.Equal(t, 0, runner.count(), "an exit for an unknown reason does not restart the VM")
}

// TestGuestPowerActions: a guest reboot (QEMU exits with reason guest-reset under -no-reboot) starts the VM
// again while the intent is On, with a pending one-time boot override used then; a guest power-off or a crash
// records the intent Off. Before: nothing restarted the VM and the saved intent stayed On.
func TestGuestPowerActions(t *testing.T) {
	for _, tc := range []struct {
		name       string
		reason     string
		wantPower  string
		wantStarts int
		wantIntent bool
		wantBootCd bool
	}{
		{"guest reboot restarts, honouring the one-time override", ExitGuestReset, "On", 2, true, true},
		{"guest power-off", ExitGuestShutdown, "Off", 1, false, false},
		{"crash", "", "Off", 1, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runner := &fakeRunner{}
			state := t.TempDir()
			url, _ := startBMC(t, runner, state)
			code, _ := resetVM(t, url, "vm1", "On")
			require.Equal(t, http.StatusNoContent, code)
			setBootOnce(t, url, "vm1", "Cd") // e.g. Ironic set the next boot, then the OS reboots
			runner.lastProc().exit(tc.reason)
			require.Eventually(t, func() bool {
				return runner.count() == tc.wantStarts && powerState(t, url, "vm1") == tc.wantPower
			}, 3*time.Second, 20*time.Millisecond)
			time.Sleep(100 * time.Millisecond) // nothing more happens
			assert.Equal(t, tc.wantStarts, runner.count())
			assert.Equal(t, tc.wantIntent, savedIntent(t, state))
			if tc.wantBootCd {
				assert.Equal(t, "Cd", runner.last().BootFrom)
				assert.Equal(t, "Disabled", bootEnabled(t, url, "vm1"), "the override is used by the reboot")
			} else {
				assert.Equal(t, "Once", bootEnabled(t, url, "vm1"), "no boot happened: the override waits")
			}
		})
	}
}

// TestBMCActionsAreNoGuestActions: exits the BMC caused (ForceOff, GracefulShutdown, ForceRestart) neither
// restart the VM nor change the intent behind the caller's back.
func TestBMCActionsAreNoGuestActions(t *testing.T) {
	runner := &fakeRunner{}
	url, _ := startBMC(t, runner, t.TempDir())
	for _, step := range []struct{ reset, want string }{
		{"On", "On"}, {"ForceRestart", "On"}, {"GracefulShutdown", "Off"}, {"On", "On"}, {"ForceOff", "Off"},
	} {
		code, _ := resetVM(t, url, "vm1", step.reset)
		require.Equal(t, http.StatusNoContent, code, step.reset)
		require.Eventually(t, func() bool { return powerState(t, url, "vm1") == step.want }, 2*time.Second, 20*time.Millisecond, step.reset)
	}
	time.Sleep(100 * time.Millisecond)
	assert.Equal(t, 3, runner.count(), "On, ForceRestart, On: no start of the BMC's own")
	assert.Equal(t, "Off", powerState(t, url, "vm1"))
}

// TestStartFailureFailsReset: a VM that does not start fails On/ForceRestart with a 500 naming why, stays Off,
// and keeps its one-time boot override for the next try. Before: the runner's error was a 400.
func TestStartFailureFailsReset(t *testing.T) {
	runner := &fakeRunner{fail: errors.New("qemu: could not open disk.img: Permission denied")}
	url, _ := startBMC(t, runner, t.TempDir())
	setBootOnce(t, url, "vm1", "Cd")
	for _, typ := range []string{"On", "ForceRestart", "GracefulRestart"} {
		code, body := resetVM(t, url, "vm1", typ)
		assert.Equal(t, http.StatusInternalServerError, code, typ)
		msg, _ := body["error"].(map[string]any)["message"].(string)
		assert.Contains(t, msg, "Permission denied", typ)
		assert.Contains(t, msg, "vm1 did not start", typ)
	}
	assert.Equal(t, "Off", powerState(t, url, "vm1"))
	assert.Equal(t, "Once", bootEnabled(t, url, "vm1"), "the one-time override is not used up by a failed start")
	code, _ := resetVM(t, url, "vm1", "Sideways")
	assert.Equal(t, http.StatusBadRequest, code, "an unknown ResetType stays the client's error")
}

// TestQEMUStartFailure: a QEMU that exits at once (bad option, locked disk) fails Start with its log's end;
// before, Start returned a process that had already died and the Reset answered success. No QEMU needed.
func TestQEMUStartFailure(t *testing.T) {
	dir := t.TempDir()
	vars := filepath.Join(dir, "vars.fd")
	require.NoError(t, os.WriteFile(vars, []byte("vars"), 0o600))
	script := filepath.Join(dir, "qemu")
	require.NoError(t, os.WriteFile(script, []byte("#!/bin/sh\necho 'qemu-system-x86_64: -drive file=disk.img: Failed to get \"write\" lock' >&2\nexit 1\n"), 0o700))
	q := &QEMU{Binary: script, OVMFVars: vars, StartTimeout: 5 * time.Second}
	_, err := q.Start(t.Context(), StartSpec{VM: VMConfig{Name: "vm1"}, Dir: dir, Disk: filepath.Join(dir, "d.img"),
		SerialLog: filepath.Join(dir, "s.log"), QMP: filepath.Join(dir, "q.sock")})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "exited at start")
	assert.Contains(t, err.Error(), `Failed to get "write" lock`, "the error carries the end of qemu.log")
}

// TestGracefulRestartHoldsOneVM: while one VM's guest ignores the power button for the whole
// graceful_restart_timeout, the other VM, and the restarting one, still answer at once; the restart then cuts
// the VM and starts it. Before: one global lock held every request for up to 60 s.
func TestGracefulRestartHoldsOneVM(t *testing.T) {
	runner := &fakeRunner{deafGuest: true}
	url, _ := startBMCWith(t, Config{Username: "admin", Password: "pw", StateDir: t.TempDir(), Runner: runner,
		GracefulRestartTimeout: 2 * time.Second,
		VMs:                    []VMConfig{{Name: "vm1", DiskGiB: 1}, {Name: "vm2", DiskGiB: 1}}})
	code, _ := resetVM(t, url, "vm1", "On")
	require.Equal(t, http.StatusNoContent, code)
	done := make(chan int, 1)
	t0 := time.Now()
	go func() {
		code, _ := resetVM(t, url, "vm1", "GracefulRestart")
		done <- code
	}()
	time.Sleep(200 * time.Millisecond) // the restart now waits for the guest
	for _, probe := range []func(){
		func() { assert.Equal(t, "Off", powerState(t, url, "vm2")) },
		func() { code, _ := resetVM(t, url, "vm2", "On"); assert.Equal(t, http.StatusNoContent, code) },
		func() { assert.Equal(t, "On", powerState(t, url, "vm1"), "the guest has not shut down yet") },
	} {
		p0 := time.Now()
		probe()
		assert.Less(t, time.Since(p0), 500*time.Millisecond, "a request waited for another VM's graceful restart")
	}
	assert.Equal(t, http.StatusNoContent, <-done)
	assert.GreaterOrEqual(t, time.Since(t0), 2*time.Second, "the restart waited for the guest")
	assert.Equal(t, 3, runner.count(), "vm1 On, vm2 On, vm1 restarted")
	assert.Equal(t, "On", powerState(t, url, "vm1"))
}

// TestGracefulRestartYieldsToLaterAction: a ForceOff while a GracefulRestart waits for the guest stands; the
// restart does not power the VM on behind it.
func TestGracefulRestartYieldsToLaterAction(t *testing.T) {
	runner := &fakeRunner{deafGuest: true}
	url, _ := startBMCWith(t, Config{Username: "admin", Password: "pw", StateDir: t.TempDir(), Runner: runner,
		GracefulRestartTimeout: time.Second})
	code, _ := resetVM(t, url, "vm1", "On")
	require.Equal(t, http.StatusNoContent, code)
	done := make(chan int, 1)
	go func() {
		code, _ := resetVM(t, url, "vm1", "GracefulRestart")
		done <- code
	}()
	time.Sleep(200 * time.Millisecond)
	code, _ = resetVM(t, url, "vm1", "ForceOff")
	require.Equal(t, http.StatusNoContent, code)
	assert.Equal(t, http.StatusNoContent, <-done)
	assert.Equal(t, "Off", powerState(t, url, "vm1"), "the ForceOff issued during the wait stands")
	assert.Equal(t, 1, runner.count())
}
