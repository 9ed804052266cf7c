package configdrive

import (
	"encoding/binary"
	"errors"
)

// fixFAT32 repairs two flaws of FAT32 images made by go-diskfs v1.9.4 so that fsck.fat finds nothing to fix:
// the ".." entry of a first-level directory must point at cluster 0 (the root), and the FSInfo sector must hold
// the real free-cluster count and next free cluster instead of "unknown".
func fixFAT32(img []byte) error {
	if len(img) < 512 || string(img[0x52:0x57]) != "FAT32" {
		return errors.New("not a FAT32 image")
	}
	le16 := func(off int) int { return int(binary.LittleEndian.Uint16(img[off:])) }
	le32 := func(off int) uint32 { return binary.LittleEndian.Uint32(img[off:]) }
	bps := le16(0x0B)
	spc := int(img[0x0D])
	reserved := le16(0x0E)
	nFATs := int(img[0x10])
	fatSz := int(le32(0x24))
	rootClus := le32(0x2C)
	fsInfo := le16(0x30)
	totSec := int(le32(0x20))
	if bps == 0 || spc == 0 || nFATs == 0 || fatSz == 0 || totSec == 0 {
		return errors.New("FAT32 boot sector is incomplete")
	}
	clusterSize := bps * spc
	fatOff := reserved * bps
	dataOff := (reserved + nFATs*fatSz) * bps
	nClusters := (totSec - reserved - nFATs*fatSz) / spc
	fatEntry := func(c uint32) uint32 { return le32(fatOff+int(c)*4) & 0x0FFFFFFF }
	clusterOff := func(c uint32) int { return dataOff + int(c-2)*clusterSize }
	chain := func(start uint32) []uint32 {
		var out []uint32
		for c := start; c >= 2 && c < 0x0FFFFFF8 && len(out) <= nClusters; c = fatEntry(c) {
			out = append(out, c)
		}
		return out
	}
	// Subdirectories of the root: point their ".." at cluster 0.
	for _, c := range chain(rootClus) {
		base := clusterOff(c)
		for off := base; off+32 <= base+clusterSize && off+32 <= len(img); off += 32 {
			e := img[off : off+32]
			if e[0] == 0 {
				break
			}
			if e[0] == 0xE5 || e[11] == 0x0F || e[11]&0x10 == 0 || e[0] == '.' {
				continue
			}
			sub := uint32(binary.LittleEndian.Uint16(e[20:]))<<16 | uint32(binary.LittleEndian.Uint16(e[26:]))
			if sub < 2 {
				continue
			}
			dotdot := clusterOff(sub) + 32
			if dotdot+32 <= len(img) && img[dotdot] == '.' && img[dotdot+1] == '.' {
				binary.LittleEndian.PutUint16(img[dotdot+20:], 0)
				binary.LittleEndian.PutUint16(img[dotdot+26:], 0)
			}
		}
	}
	// FSInfo: the real free count and the first free cluster.
	free, next := uint32(0), uint32(0xFFFFFFFF)
	for c := uint32(2); c < uint32(nClusters)+2; c++ {
		if fatEntry(c) == 0 {
			free++
			if next == 0xFFFFFFFF {
				next = c
			}
		}
	}
	fi := fsInfo * bps
	if fsInfo > 0 && fi+512 <= len(img) && le32(fi) == 0x41615252 {
		binary.LittleEndian.PutUint32(img[fi+488:], free)
		binary.LittleEndian.PutUint32(img[fi+492:], next)
	}
	return nil
}
