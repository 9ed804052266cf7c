package ramdisk

import (
	"bytes"
	"fmt"
)

// CpioEntry is one file of a newc archive.
type CpioEntry struct {
	Name  string
	Mode  uint32 // including the type bits (0o100000 regular, 0o040000 dir, 0o020000 char device)
	Data  []byte
	Major uint32 // device numbers for device nodes
	Minor uint32
}

// Cpio writes a newc ("070701") archive, the initramfs format, with device numbers (which some Go cpio
// libraries cannot write).
func Cpio(entries []CpioEntry) []byte {
	var b bytes.Buffer
	pad := func() {
		for b.Len()%4 != 0 {
			b.WriteByte(0)
		}
	}
	write := func(ino int, e CpioEntry) {
		name := e.Name + "\x00"
		fmt.Fprintf(&b, "070701%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x", ino, e.Mode, 0, 0, 1, 0,
			len(e.Data), 0, 0, e.Major, e.Minor, len(name), 0)
		b.WriteString(name)
		pad()
		b.Write(e.Data)
		pad()
	}
	for i, e := range entries {
		write(i+1, e)
	}
	write(len(entries)+1, CpioEntry{Name: "TRAILER!!!"})
	return b.Bytes()
}
