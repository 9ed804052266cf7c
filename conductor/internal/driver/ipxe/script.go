package ipxe

import (
	"fmt"
	"strings"
	"unicode"
)

// bootScript is boot.ipxe, the script the operator's DHCP server hands to iPXE clients. As Ironic's boot.ipxe it
// tries each NIC of the machine in turn and chains to that NIC's script (by ${mac:hexhyp}); an iPXE too old for
// the loop tries the NIC it booted from. @PREFIX@ is the URL of the served directory, ending with a slash.
const bootScript = `#!ipxe

# Ferric: chain to the agent boot of the first NIC that has one.
set netid:int32 -1
:loop
inc netid || chain @PREFIX@${mac:hexhyp}/boot.ipxe || goto old_rom
isset ${net${netid}/mac} || goto loop_done
echo Trying the agent boot of NIC ${net${netid}/mac:hexhyp}
chain @PREFIX@${net${netid}/mac:hexhyp}/boot.ipxe || goto loop

# The chained script returned: let the firmware go on with its next boot device.
echo The chained script returned; leaving iPXE
exit 0

:loop_done
echo No agent boot is prepared for any NIC of this machine. Rebooting in 60 seconds.
sleep 60
reboot

:old_rom
echo No agent boot is prepared for NIC ${mac:hexhyp}. Rebooting in 60 seconds.
sleep 60
reboot
`

// nodeScript boots the agent: kernel, its initramfs and the configuration initramfs (agent.json), retried with a
// growing pause as Ironic's deploy script does, then a reboot. initrd= names both images for the kernel's EFI stub,
// which reads them from iPXE's virtual file system by their names, the last segments of their URLs (newer
// iPXE also hands them over through LoadFile2), and concatenates them. The uncompressed configuration comes
// first, as early microcode does: after a compressed archive the kernel (6.1, gzip) misses the next one's header.
const nodeScript = `#!ipxe

set attempts:int32 10
set i:int32 0

:deploy
imgfree
kernel @BASE@kernel @CMDLINE@ BOOTIF=${mac} initrd=config initrd=ramdisk || goto retry
initrd @BASE@config || goto retry
initrd @BASE@ramdisk || goto retry
boot || goto retry

:retry
iseq ${i} ${attempts} && goto fail ||
inc i
echo The agent boot failed; retrying in ${i} seconds.
sleep ${i}
goto deploy

:fail
echo The agent boot failed ${attempts} times. Rebooting in 30 seconds.
sleep 30
reboot
`

// BootScript renders boot.ipxe for the served directory prefix (ending with a slash).
func BootScript(prefix string) string { return strings.ReplaceAll(bootScript, "@PREFIX@", prefix) }

// NodeScript renders a node's script: base is the URL of its MAC's directory (ending with a slash), cmdline the
// agent kernel's command line (already checked by CheckCmdline).
func NodeScript(base, cmdline string) string {
	return strings.NewReplacer("@BASE@", base, "@CMDLINE@", cmdline).Replace(nodeScript)
}

// CheckCmdline refuses a kernel command line that would change the script it is written into: iPXE reads a new
// command at a line break, runs another after || or &&, and expands ${...} settings. field names where the text
// came from (driver_info.kernel_append_params is writable by API users).
func CheckCmdline(field, s string) error {
	for _, r := range s {
		if r > unicode.MaxASCII || unicode.IsControl(r) {
			return fmt.Errorf("%s holds a control or non-ASCII character (%q), which an iPXE script cannot carry: remove it", field, r)
		}
	}
	for _, bad := range []string{"||", "&&", "${", "#"} {
		if strings.Contains(s, bad) {
			return fmt.Errorf("%s holds %q, which iPXE would interpret instead of passing to the kernel: remove it", field, bad)
		}
	}
	return nil
}
