package vbmc

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// VMConfig defines one VM in the config file.
type VMConfig struct {
	Name      string `yaml:"name" json:"name"`
	UUID      string `yaml:"uuid" json:"uuid"`
	MemoryMiB int    `yaml:"memory_mib" json:"memory_mib"`
	// CPUs is the number of vCPUs: default 1 under TCG, 2 with KVM. QEMU 7.2's multi-threaded TCG can livelock a
	// Linux guest with two vCPUs when the kernel patches a static key on a hot path (seen in the agent ramdisk
	// when podman creates the first memory cgroup: both vCPUs stuck in __alloc_pages, soft lockups, for good).
	CPUs    int    `yaml:"cpus" json:"cpus"`
	DiskGiB int    `yaml:"disk_gib" json:"disk_gib"`
	Disk    string `yaml:"disk" json:"disk"` // path; default <state>/<name>/disk.img
	MAC     string `yaml:"mac" json:"mac"`
	TPM     bool   `yaml:"tpm" json:"tpm"`
	// AgentPort is the host port (on 127.0.0.1) forwarded to the guest's agent port 9999 (0 = none).
	AgentPort int `yaml:"agent_port" json:"agent_port"`
}

// State is what the BMC remembers about a VM across restarts.
type State struct {
	PowerOn      bool   `json:"power_on"` // last power intent
	BootTarget   string `json:"boot_target"`
	BootEnabled  string `json:"boot_enabled"`
	BootMode     string `json:"boot_mode"`
	MediaImage   string `json:"media_image"`
	MediaFile    string `json:"media_file"`
	MediaPresent bool   `json:"media_inserted"`
}

// StartSpec is what a runner needs to start a VM once.
type StartSpec struct {
	VM        VMConfig
	Dir       string // the VM's state directory
	Disk      string
	BootFrom  string // "Cd", "Hdd", "Pxe" or "" (firmware default)
	MediaFile string // ISO attached as a CD ("" = none)
	SerialLog string
	QMP       string // unix socket path
}

// Process is a running VM.
type Process interface {
	// Done is closed when the VM has exited (guest power off, kill).
	Done() <-chan struct{}
	// Powerdown presses the ACPI power button.
	Powerdown() error
	// Kill ends the VM at once.
	Kill() error
}

// Runner starts VMs.
type Runner interface {
	Start(ctx context.Context, s StartSpec) (Process, error)
}

// QEMU runs VMs with qemu-system-x86_64 (q35, OVMF, TCG unless KVM works).
type QEMU struct {
	Binary   string // default qemu-system-x86_64
	OVMFCode string // default /usr/share/OVMF/OVMF_CODE_4M.fd
	OVMFVars string // template, copied per VM; default /usr/share/OVMF/OVMF_VARS_4M.fd
	Accel    string // default "tcg"
	Swtpm    string // default swtpm
}

// Argv builds the QEMU command line for a start (exported for tests).
func (q *QEMU) Argv(s StartSpec, vars string) []string {
	accel := q.Accel
	if accel == "" {
		accel = "tcg"
	}
	mem := s.VM.MemoryMiB
	if mem == 0 {
		mem = 1024
	}
	net := "user,id=n0"
	if s.VM.AgentPort > 0 {
		net += fmt.Sprintf(",hostfwd=tcp:127.0.0.1:%d-:9999", s.VM.AgentPort)
	}
	mac := s.VM.MAC
	if mac == "" {
		mac = "52:54:00:12:34:56"
	}
	disk, cd, nic := 2, 3, 4
	switch s.BootFrom {
	case "Cd":
		cd = 0
	case "Hdd":
		disk = 0
	case "Pxe":
		nic = 0
	}
	cpus := s.VM.CPUs
	if cpus == 0 {
		cpus = 2
		if accel == "tcg" {
			cpus = 1
		}
	}
	argv := []string{"-nodefaults", "-machine", "q35,accel=" + accel, "-cpu", "max", "-smp", strconv.Itoa(cpus), "-m", strconv.Itoa(mem),
		"-display", "none", "-monitor", "none", "-serial", "file:" + s.SerialLog, "-no-reboot",
		"-qmp", "unix:" + s.QMP + ",server=on,wait=off",
		"-drive", "if=pflash,format=raw,unit=0,readonly=on,file=" + q.code(),
		"-drive", "if=pflash,format=raw,unit=1,file=" + vars,
		"-netdev", net, "-device", fmt.Sprintf("virtio-net-pci,netdev=n0,mac=%s,bootindex=%d", mac, nic),
		"-drive", "if=none,id=d0,format=raw,file=" + s.Disk, "-device", fmt.Sprintf("virtio-blk-pci,drive=d0,bootindex=%d", disk)}
	if s.MediaFile != "" {
		argv = append(argv, "-drive", "if=none,id=cd0,format=raw,media=cdrom,readonly=on,file="+s.MediaFile,
			"-device", fmt.Sprintf("ide-cd,drive=cd0,bootindex=%d", cd))
	}
	return argv
}

func (q *QEMU) code() string {
	if q.OVMFCode != "" {
		return q.OVMFCode
	}
	return "/usr/share/OVMF/OVMF_CODE_4M.fd"
}

// Start starts QEMU (and swtpm when the VM has a TPM).
func (q *QEMU) Start(ctx context.Context, s StartSpec) (Process, error) {
	vars := filepath.Join(s.Dir, "OVMF_VARS.fd")
	if _, err := os.Stat(vars); err != nil {
		tmpl := q.OVMFVars
		if tmpl == "" {
			tmpl = "/usr/share/OVMF/OVMF_VARS_4M.fd"
		}
		b, err := os.ReadFile(tmpl)
		if err != nil {
			return nil, fmt.Errorf("OVMF vars template: %w", err)
		}
		if err := os.WriteFile(vars, b, 0o600); err != nil {
			return nil, err
		}
	}
	argv := q.Argv(s, vars)
	var tpm *exec.Cmd
	if s.VM.TPM {
		sock := filepath.Join(s.Dir, "swtpm.sock")
		bin := q.Swtpm
		if bin == "" {
			bin = "swtpm"
		}
		os.MkdirAll(filepath.Join(s.Dir, "tpm"), 0o700)
		tpm = exec.Command(bin, "socket", "--tpm2", "--tpmstate", "dir="+filepath.Join(s.Dir, "tpm"), "--ctrl", "type=unixio,path="+sock)
		if err := tpm.Start(); err != nil {
			return nil, fmt.Errorf("start swtpm: %w", err)
		}
		for i := 0; i < 50; i++ {
			if _, err := os.Stat(sock); err == nil {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		argv = append(argv, "-chardev", "socket,id=chrtpm,path="+sock, "-tpmdev", "emulator,id=tpm0,chardev=chrtpm",
			"-device", "tpm-tis,tpmdev=tpm0")
	}
	bin := q.Binary
	if bin == "" {
		bin = "qemu-system-x86_64"
	}
	os.Remove(s.QMP)
	cmd := exec.Command(bin, argv...)
	out, _ := os.Create(filepath.Join(s.Dir, "qemu.log"))
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		if tpm != nil {
			tpm.Process.Kill()
		}
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	p := &qemuProc{cmd: cmd, qmp: s.QMP, done: make(chan struct{}), tpm: tpm}
	go func() {
		cmd.Wait()
		out.Close()
		if tpm != nil {
			tpm.Process.Kill()
			tpm.Wait()
		}
		close(p.done)
	}()
	return p, nil
}

type qemuProc struct {
	cmd  *exec.Cmd
	qmp  string
	done chan struct{}
	tpm  *exec.Cmd
}

func (p *qemuProc) Done() <-chan struct{} { return p.done }

func (p *qemuProc) Kill() error {
	err := p.cmd.Process.Kill()
	<-p.done
	return err
}

// Powerdown sends system_powerdown over QMP.
func (p *qemuProc) Powerdown() error {
	c, err := net.DialTimeout("unix", p.qmp, 5*time.Second)
	if err != nil {
		return fmt.Errorf("qmp: %w", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	if _, err := r.ReadBytes('\n'); err != nil { // greeting
		return fmt.Errorf("qmp greeting: %w", err)
	}
	for _, cmd := range []string{"qmp_capabilities", "system_powerdown"} {
		b, _ := json.Marshal(map[string]string{"execute": cmd})
		if _, err := c.Write(append(b, '\n')); err != nil {
			return err
		}
		for {
			line, err := r.ReadBytes('\n')
			if err != nil {
				return fmt.Errorf("qmp %s: %w", cmd, err)
			}
			var resp map[string]any
			json.Unmarshal(line, &resp)
			if e, ok := resp["error"]; ok {
				return fmt.Errorf("qmp %s: %v", cmd, e)
			}
			if _, ok := resp["return"]; ok {
				break
			}
		}
	}
	return nil
}

var errNoVM = errors.New("no such system")
