package vbmc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// VMConfig defines one VM in the config file.
// Name names the VM in every Redfish path (Systems/<name>) and its state directory (addVM refuses "/" and spaces).
// UUID is what the System resource and IPMI's system GUID report; QEMU is not given it.
// MemoryMiB is QEMU's -m (0 = 1024).
// DiskGiB sizes the sparse disk file addVM creates when none exists (0 = 8 GiB); an existing file is kept as is.
// MAC is the NIC's address (default 52:54:00:12:34:56, QEMU's own): give VMs on one host distinct ones.
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
	// RAIDDrives gives the System a RAID controller with this many simulated drives (0 = none; storage.go).
	RAIDDrives int `yaml:"raid_drives" json:"raid_drives"`
	// RAIDDriveGiB is the size of each RAID drive (default: the size of the VM's disk).
	RAIDDriveGiB int `yaml:"raid_drive_gib" json:"raid_drive_gib"`
	// BootFile is the file name QEMU's DHCP server offers the VM's NIC (DHCP option 67): for a network boot
	// (BootSourceOverrideTarget Pxe), the NIC's iPXE option ROM (Debian's ipxe-qemu) fetches it, and an http URL
	// works, e.g. the conductor's boot.ipxe. "" = none.
	BootFile string `yaml:"boot_file" json:"boot_file"`
	// IPMIPort is the UDP port of the VM's IPMI 2.0 LAN (lanplus) endpoint on the vbmc's listen host (0 = none;
	// ipmi.go). Its user is the vbmc's username/password, with ADMINISTRATOR privilege.
	IPMIPort int `yaml:"ipmi_port" json:"ipmi_port"`
}

// State is what the BMC remembers about a VM across restarts.
// It is saved as state.json in the VM's directory (mode 0600) after every change: the power intent, the boot
// override as Redfish shows it (target None/Pxe/Cd/Hdd, enabled Disabled/Once/Continuous, mode UEFI), and for
// the CD (media.go) the URL the client inserted, the local copy QEMU attaches and whether it is inserted.
type State struct {
	PowerOn      bool   `json:"power_on"` // last power intent
	BootTarget   string `json:"boot_target"`
	BootEnabled  string `json:"boot_enabled"`
	BootMode     string `json:"boot_mode"`
	MediaImage   string `json:"media_image"`
	MediaFile    string `json:"media_file"`
	MediaPresent bool   `json:"media_inserted"`
	// The USB stick virtual media (usb.go): what Ironic's "disk" device type attaches.
	UsbImage   string `json:"usb_image,omitempty"`
	UsbFile    string `json:"usb_file,omitempty"`
	UsbPresent bool   `json:"usb_inserted,omitempty"`
	// BIOSPending holds BIOS attribute values PATCHed to Bios/Settings; the next start applies them over the
	// defaults into BIOS (as a real BMC applies settings at the next reset). Both persist with the VM's state.
	BIOS        map[string]any `json:"bios,omitempty"`
	BIOSPending map[string]any `json:"bios_pending,omitempty"`
	// Volumes are the RAID volumes created on the VM's RAID controller (storage.go).
	Volumes []Volume `json:"volumes,omitempty"`
}

// StartSpec is what a runner needs to start a VM once.
type StartSpec struct {
	VM        VMConfig
	Dir       string // the VM's state directory
	Disk      string
	BootFrom  string // "Cd", "Hdd", "Pxe" or "" (firmware default)
	MediaFile string // ISO attached as a CD ("" = none)
	UsbFile   string // image attached as a USB stick ("" = none)
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
// Start returns once the VM runs (QEMU: once it answers on QMP). A Runner may also implement
// VCPUs(VMConfig) int (hardware.go), and its Processes PIDer and ExitReasoner (supervise.go).
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
	// StartTimeout bounds the wait for a started QEMU to answer on its QMP socket (default 30 s): a QEMU that
	// exits first, or does not answer, fails the start with the end of its qemu.log.
	StartTimeout time.Duration
}

// VCPUs is the number of vCPUs the VM gets: its cpus, else 1 under TCG and 2 with KVM (see VMConfig.CPUs).
func (q *QEMU) VCPUs(v VMConfig) int {
	if v.CPUs > 0 {
		return v.CPUs
	}
	if q.Accel == "" || q.Accel == "tcg" {
		return 1
	}
	return 2
}

// Argv builds the QEMU command line for a start (exported for tests).
// vars is the VM's own copy of the OVMF variable store: UEFI boot entries written by the guest persist there.
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
	if s.VM.BootFile != "" {
		net += ",bootfile=" + strings.ReplaceAll(s.VM.BootFile, ",", ",,") // QEMU's option syntax doubles commas
	}
	mac := s.VM.MAC
	if mac == "" {
		mac = "52:54:00:12:34:56"
	}
	// bootindex orders OVMF's boot options: without an override the disk comes first, then the CD, then the network;
	// the override moves its device to 0, ahead of the rest.
	disk, cd, nic := 2, 3, 4
	switch s.BootFrom {
	case "Cd":
		cd = 0
	case "Hdd":
		disk = 0
	case "Pxe":
		nic = 0
	}
	cpus := q.VCPUs(s.VM)
	// -no-reboot: a guest reboot ends QEMU, so that the supervisor sees it (ExitGuestReset) and starts the VM again
	// with the boot override applied, as a BMC's firmware would honour it at the next boot. Two QMP sockets: one
	// for commands, one held open for the SHUTDOWN events (qmp.go).
	argv := []string{"-nodefaults", "-machine", "q35,accel=" + accel, "-cpu", "max", "-smp", strconv.Itoa(cpus), "-m", strconv.Itoa(mem),
		"-display", "none", "-monitor", "none", "-serial", "file:" + s.SerialLog, "-no-reboot",
		"-qmp", "unix:" + s.QMP + ",server=on,wait=off", "-qmp", "unix:" + eventsSocket(s.Dir) + ",server=on,wait=off",
		"-drive", "if=pflash,format=raw,unit=0,readonly=on,file=" + q.code(),
		"-drive", "if=pflash,format=raw,unit=1,file=" + vars,
		"-netdev", net, "-device", fmt.Sprintf("virtio-net-pci,netdev=n0,mac=%s,bootindex=%d", mac, nic),
		"-drive", "if=none,id=d0,format=raw,file=" + s.Disk, "-device", fmt.Sprintf("virtio-blk-pci,drive=d0,bootindex=%d", disk)}
	if s.MediaFile != "" {
		argv = append(argv, "-drive", "if=none,id=cd0,format=raw,media=cdrom,readonly=on,file="+s.MediaFile,
			"-device", fmt.Sprintf("ide-cd,drive=cd0,bootindex=%d", cd))
	}
	if s.UsbFile != "" {
		argv = append(argv, "-device", "qemu-xhci,id=xhci", "-drive", "if=none,id=usb0,format=raw,readonly=on,file="+s.UsbFile,
			"-device", "usb-storage,bus=xhci.0,drive=usb0,removable=on")
	}
	return argv
}

// code is the OVMF firmware image: read-only and shared by every VM (unlike the variable store).
func (q *QEMU) code() string {
	if q.OVMFCode != "" {
		return q.OVMFCode
	}
	return "/usr/share/OVMF/OVMF_CODE_4M.fd"
}

// Start starts QEMU (and swtpm when the VM has a TPM).
func (q *QEMU) Start(ctx context.Context, s StartSpec) (Process, error) {
	vars := filepath.Join(s.Dir, "OVMF_VARS.fd")
	// The first start copies the OVMF variable template; later starts keep the VM's copy (its boot entries).
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
		// --terminate: swtpm ends with its QEMU, also one a restarted BMC adopted (not its child).
		tpm = exec.Command(bin, "socket", "--tpm2", "--terminate", "--tpmstate", "dir="+filepath.Join(s.Dir, "tpm"), "--ctrl", "type=unixio,path="+sock)
		if err := tpm.Start(); err != nil {
			return nil, fmt.Errorf("start swtpm: %w", err)
		}
		// QEMU fails at start when swtpm's control socket is not there yet: wait up to 1 s for it to appear.
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
	os.Remove(eventsSocket(s.Dir))
	cmd := exec.Command(bin, argv...)
	logPath := filepath.Join(s.Dir, "qemu.log")
	out, _ := os.Create(logPath)
	cmd.Stdout, cmd.Stderr = out, out
	// Its own process group: a ferric-vbmc killed with its group (Ctrl-C, systemd) leaves the VM running, for
	// the next one to adopt.
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
	// A QEMU that refused its options exits at once: report why (the end of qemu.log) rather than a VM that "started".
	if err := p.waitReady(ctx, eventsSocket(s.Dir), q.StartTimeout); err != nil {
		p.Kill()
		return nil, fmt.Errorf("%w; %s: %s", err, logPath, tail(logPath, 400))
	}
	return p, nil
}

// waitReady waits for QEMU to answer on its events socket, which it does once it has accepted its command line
// and started the machine; an exit before that is a failed start.
func (p *qemuProc) waitReady(ctx context.Context, events string, timeout time.Duration) error {
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-p.done:
			return fmt.Errorf("QEMU exited at start (%s)", p.cmd.ProcessState)
		default:
		}
		e, err := dialEvents(events)
		if err == nil {
			p.events = e
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("QEMU did not answer on %s within %s: %w", events, timeout, err)
		}
		select {
		case <-p.done:
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// tail returns the last n bytes of a file (for errors naming why QEMU stopped).
func tail(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return "(no log)"
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "(no log)"
	}
	if st.Size() > n {
		f.Seek(st.Size()-n, io.SeekStart)
	}
	b, _ := io.ReadAll(io.LimitReader(f, n))
	if len(b) == 0 {
		return "(empty log)"
	}
	return strings.TrimSpace(string(b))
}

// qemuProc is a QEMU this BMC started (its child): Kill and Done use the process, Powerdown the QMP command socket,
// and events holds the connection that reports why it exited. A restarted BMC uses adoptedProc instead.
type qemuProc struct {
	cmd    *exec.Cmd
	qmp    string
	done   chan struct{}
	tpm    *exec.Cmd
	events *qmpEvents
}

// Done is closed once QEMU has been waited for (and its swtpm stopped). PID feeds the PID record (supervise.go).
func (p *qemuProc) Done() <-chan struct{} { return p.done }
func (p *qemuProc) PID() int              { return p.cmd.Process.Pid }

// ExitReason is the reason of QEMU's last SHUTDOWN event (ExitGuestReset, ExitGuestShutdown, ...), "" if none.
func (p *qemuProc) ExitReason() string { return p.events.reason(2 * time.Second) }

// Kill sends SIGKILL and waits for the process to be reaped, so that a start right after never races the old
// QEMU for its disk or sockets.
func (p *qemuProc) Kill() error {
	err := p.cmd.Process.Kill()
	<-p.done
	return err
}

// Powerdown sends system_powerdown (the ACPI power button) over QMP.
func (p *qemuProc) Powerdown() error { return qmpCommand(p.qmp, "system_powerdown") }

var errNoVM = errors.New("no such system")
