// Package hostsweep finds what local processes leave below a directory of this host: the mount points under it and
// the processes that still use it (by command line or by a root filesystem mounted under it). The conductor's
// local-agent boot interface and `ferric demo` use it to make sure an ended agent's podman, conmon and install
// container are gone and nothing stays mounted before the directory is removed.
package hostsweep

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// MountsBelow lists this mount namespace's mount points below dir (from /proc/self/mountinfo; field 5 is the mount
// point, with octal escapes for spaces, which Ferric's state paths do not contain).
func MountsBelow(dir string) []string {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	var points []string
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			points = append(points, f[4])
		}
	}
	return points
}

// ProcessesUsing lists the processes (other than this one) whose command line names a path below dir, or whose
// root directory is a filesystem mounted below dir (a container's root).
func ProcessesUsing(dir string) []int {
	type fileID struct{ dev, ino uint64 }
	roots := map[fileID]bool{}
	for _, p := range MountsBelow(dir) {
		var st syscall.Stat_t
		if syscall.Stat(p, &st) == nil {
			roots[fileID{st.Dev, st.Ino}] = true
		}
	}
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		if cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline")); err == nil && strings.Contains(string(cmdline), dir+"/") {
			pids = append(pids, pid)
			continue
		}
		var st syscall.Stat_t
		if len(roots) > 0 && syscall.Stat(filepath.Join("/proc", e.Name(), "root"), &st) == nil && roots[fileID{st.Dev, st.Ino}] {
			pids = append(pids, pid)
		}
	}
	return pids
}

// ProcIdentity reads what tells a process from a later one that reuses its PID: its start time (field 22 of
// /proc/PID/stat, clock ticks since boot), its executable, and its state (field 3: "Z" or "X" once it has exited
// but is not yet reaped). Callers record start and exe when they start a process and compare them before they
// signal a PID they find again after a restart of their own.
func ProcIdentity(pid int) (start, exe, state string, err error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", "", "", err
	}
	// Field 2 (comm) is in parentheses and may hold spaces: count fields after its closing one.
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return "", "", "", fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(s[i+1:]) // f[0] is field 3 (state), so field 22 is f[19]
	if len(f) < 20 {
		return "", "", "", fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	if _, err := strconv.ParseUint(f[19], 10, 64); err != nil {
		return "", "", "", fmt.Errorf("/proc/%d/stat: start time: %w", pid, err)
	}
	exe, err = os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil {
		return "", "", "", err
	}
	// A binary replaced on disk since (a rebuild, an upgrade) reads as "path (deleted)": still the process started.
	return f[19], strings.TrimSuffix(exe, " (deleted)"), f[0], nil
}
