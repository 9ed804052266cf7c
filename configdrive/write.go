package configdrive

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	diskfs "github.com/diskfs/go-diskfs"
	"github.com/diskfs/go-diskfs/backend"
	"github.com/diskfs/go-diskfs/disk"
	"github.com/diskfs/go-diskfs/partition/gpt"
	"github.com/diskfs/go-diskfs/partition/mbr"
	"github.com/google/uuid"
	"github.com/sirupsen/logrus"
)

// ErrNoSpace: the disk has no room for the config-2 partition at its end.
var ErrNoSpace = errors.New("no space for the config drive")

// mbrLimitBytes is the last byte an MBR partition can address with 512-byte sectors (2 TiB).
const mbrLimitBytes = 2 << 40

// WriteResult says where the config drive went.
type WriteResult struct {
	Device     string `json:"device"`
	Partition  int    `json:"partition"`
	Start      int64  `json:"start_bytes"`
	Size       int64  `json:"size_bytes"`
	Format     Kind   `json:"format"`
	Reused     bool   `json:"reused"`
	SectorSize int64  `json:"sector_size"`
	Table      string `json:"table"` // "gpt" or "mbr"
}

// region is a partition's index and byte range.
type region struct {
	index       int
	start, size int64
}

// WritePartition adds (or reuses) the config-2 partition at the end of device — a block device or a whole-disk
// image file — and writes image into it, rebuilt as vfat when the disk's logical sectors are 4096 bytes (ISO 9660
// cannot be mounted there). The written bytes are read back and compared. Nothing outside the partition and the
// partition table changes.
func WritePartition(ctx context.Context, device string, image []byte, log *logrus.Entry) (*WriteResult, error) {
	if len(image) == 0 {
		return nil, fmt.Errorf("config drive image is empty: %w", ErrInvalid)
	}
	if len(image) > MaxImageSize {
		return nil, fmt.Errorf("config drive image is %d bytes; the limit is %d bytes (64 MiB): %w", len(image), MaxImageSize, ErrInvalid)
	}
	kind, label := Detect(bytes.NewReader(image))
	if kind == KindUnknown {
		return nil, fmt.Errorf("config drive image is neither ISO 9660 nor vfat: %w", ErrInvalid)
	}
	if !IsConfigDriveLabel(label) {
		log.WithField("label", label).Warn("config drive image is not labelled config-2; cloud-init may not find it")
	}
	d, err := diskfs.Open(device, diskfs.WithOpenMode(diskfs.ReadWriteExclusive))
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", device, err)
	}
	closed := false
	closeDisk := func() {
		if !closed {
			closed = true
			d.Close() // Disk.Close is not idempotent in go-diskfs v1.9.4
		}
	}
	defer closeDisk()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ss := d.LogicalBlocksize
	res := &WriteResult{Device: device, SectorSize: ss}
	tbl, err := d.GetPartitionTable()
	if err != nil {
		return nil, fmt.Errorf("%s has no readable partition table (was the image installed?): %w", device, err)
	}
	rw, err := d.Backend.Writable()
	if err != nil {
		return nil, fmt.Errorf("open %s for writing: %w", device, err)
	}
	existing, err := findConfigPartitions(rw, tbl, ss)
	if err != nil {
		return nil, err
	}
	var target region
	switch {
	case len(existing) > 1:
		var idx []string
		for _, r := range existing {
			idx = append(idx, fmt.Sprint(r.index))
		}
		return nil, fmt.Errorf("%s has %d partitions labelled config-2 (partitions %s); remove all but one: %w", device, len(existing), strings.Join(idx, ", "), ErrInvalid)
	case len(existing) == 1:
		target = existing[0]
		res.Reused = true
		log.WithField("partition", target.index).Info("reusing the existing config-2 partition")
	default:
		switch t := tbl.(type) {
		case *gpt.Table:
			res.Table = "gpt"
			target, err = addGPTPartition(d, t, device, log)
		case *mbr.Table:
			res.Table = "mbr"
			target, err = addMBRPartition(d, t, device)
		default:
			err = fmt.Errorf("%s has an unsupported partition table %T", device, tbl)
		}
		if err != nil {
			return nil, err
		}
	}
	if res.Table == "" {
		if _, ok := tbl.(*gpt.Table); ok {
			res.Table = "gpt"
		} else {
			res.Table = "mbr"
		}
	}
	data := image
	res.Format = kind
	if ss == 4096 && kind == KindISO {
		files, err := filesOfImage(image)
		if err != nil {
			return nil, fmt.Errorf("read the config drive to rebuild it as vfat: %w", err)
		}
		size := target.size
		if size == 64<<20 {
			size = vfatFSSize
		}
		if data, err = buildVFAT(files, size, ss); err != nil {
			return nil, err
		}
		res.Format = KindVFAT
		log.WithField("sector_size", ss).Info("rebuilt the config drive as vfat: ISO 9660 cannot be mounted on 4096-byte sectors")
	}
	if int64(len(data)) > target.size {
		return nil, fmt.Errorf("config drive image is %d bytes but partition %d of %s holds only %d: %w", len(data), target.index, device, target.size, ErrNoSpace)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := writeAndVerify(rw, data, target.start); err != nil {
		return nil, fmt.Errorf("write the config drive to %s: %w", device, err)
	}
	if err := d.ReReadPartitionTable(); err != nil {
		log.WithError(err).Debug("kernel did not re-read the partition table (expected for image files and loop devices without partition scanning)")
	}
	closeDisk()
	res.Partition, res.Start, res.Size = target.index, target.start, target.size
	log.WithFields(logrus.Fields{"device": device, "partition": res.Partition, "start": res.Start, "size": res.Size,
		"format": res.Format, "reused": res.Reused}).Info("config drive written")
	return res, nil
}

func writeAndVerify(w backend.WritableFile, data []byte, off int64) error {
	if _, err := w.WriteAt(data, off); err != nil {
		return err
	}
	if s, ok := w.(interface{ Sync() error }); ok {
		if err := s.Sync(); err != nil {
			return fmt.Errorf("sync: %w", err)
		}
	}
	back := make([]byte, len(data))
	if _, err := w.ReadAt(back, off); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("read back: %w", err)
	}
	if sha256.Sum256(back) != sha256.Sum256(data) {
		return errors.New("read-back differs from what was written")
	}
	return nil
}

// regions lists the used partitions of a table as byte ranges.
func regions(tbl any, ss int64) []region {
	var out []region
	switch t := tbl.(type) {
	case *gpt.Table:
		for i, p := range t.Partitions {
			if p == nil || p.Type == gpt.Unused || (p.Start == 0 && p.End == 0) {
				continue
			}
			idx := p.Index
			if idx == 0 {
				idx = i + 1
			}
			out = append(out, region{idx, int64(p.Start) * ss, int64(p.End-p.Start+1) * ss})
		}
	case *mbr.Table:
		for i, p := range t.Partitions {
			if p == nil || p.Type == mbr.Empty || p.Size == 0 {
				continue
			}
			out = append(out, region{i + 1, int64(p.Start) * ss, int64(p.Size) * ss})
		}
	}
	return out
}

// findConfigPartitions returns the partitions whose filesystem is labelled config-2.
func findConfigPartitions(r io.ReaderAt, tbl any, ss int64) ([]region, error) {
	var out []region
	for _, reg := range regions(tbl, ss) {
		if _, label := Detect(io.NewSectionReader(r, reg.start, reg.size)); IsConfigDriveLabel(label) {
			out = append(out, reg)
		}
	}
	return out, nil
}

func alignDown(v, a uint64) uint64 { return v / a * a }

// addGPTPartition appends a 64 MiB partition ending at the last usable sector, first moving the backup GPT to
// the true end of the disk when the disk is larger than the image it was written from.
func addGPTPartition(d *disk.Disk, t *gpt.Table, device string, log *logrus.Entry) (region, error) {
	ss := uint64(d.LogicalBlocksize)
	if err := t.Verify(d.Backend, uint64(d.Size)); err != nil {
		log.WithError(err).Info("moving the backup GPT header to the end of the disk")
		if err := t.Repair(uint64(d.Size)); err != nil {
			return region{}, fmt.Errorf("repair the GPT of %s: %w", device, err)
		}
	}
	last := t.LastDataSector()
	var maxEnd uint64
	maxIdx := 0
	for i, p := range t.Partitions {
		if p == nil || p.Type == gpt.Unused || (p.Start == 0 && p.End == 0) {
			continue
		}
		if p.End > maxEnd {
			maxEnd = p.End
		}
		idx := p.Index
		if idx == 0 {
			idx = i + 1
		}
		if idx > maxIdx {
			maxIdx = idx
		}
	}
	need := uint64(PartitionSize) / ss
	align := uint64(1<<20) / ss
	if last+1 < need {
		return region{}, fmt.Errorf("%s is too small for a %d MiB config drive: %w", device, PartitionSize>>20, ErrNoSpace)
	}
	start := alignDown(last+1-need, align)
	if start <= maxEnd {
		start = last + 1 - need
	}
	if start <= maxEnd {
		free := int64(0)
		if last > maxEnd {
			free = int64((last - maxEnd) * ss)
		}
		return region{}, fmt.Errorf("the config drive needs %d MiB free at the end of %s, but only %d KiB are free after the last partition; leave room when installing (bootc_root_reserve_mib): %w",
			PartitionSize>>20, device, free>>10, ErrNoSpace)
	}
	p := &gpt.Partition{Index: maxIdx + 1, Start: start, End: last, Size: (last - start + 1) * ss, Type: gpt.LinuxFilesystem,
		Name: Label, GUID: strings.ToUpper(uuid.NewString())}
	t.Partitions = append(t.Partitions, p)
	if err := writeTable(d, t); err != nil {
		return region{}, fmt.Errorf("write the GPT of %s: %w", device, err)
	}
	return region{p.Index, int64(start * ss), int64((last - start + 1) * ss)}, nil
}

// addMBRPartition adds a primary partition in the last 64 MiB (below 2 TiB), following Ironic's rules.
func addMBRPartition(d *disk.Disk, t *mbr.Table, device string) (region, error) {
	ss := int64(d.LogicalBlocksize)
	used := 0
	var maxEnd int64
	free := -1
	for i, p := range t.Partitions {
		if p == nil || p.Type == mbr.Empty || p.Size == 0 {
			if free < 0 {
				free = i
			}
			continue
		}
		used++
		if end := (int64(p.Start) + int64(p.Size)) * ss; end > maxEnd {
			maxEnd = end
		}
	}
	if used > 3 || free < 0 {
		return region{}, fmt.Errorf("%s already has %d primary partitions; an MBR disk cannot take a fifth (Ironic's rule): %w", device, used, ErrNoSpace)
	}
	end := d.Size
	if end > mbrLimitBytes {
		end = mbrLimitBytes - 1<<20 // Ironic: 2097152-64-1 .. 2097152-1 MiB
	}
	end = end / (1 << 20) * (1 << 20)
	start := end - PartitionSize
	if start < maxEnd {
		return region{}, fmt.Errorf("the config drive needs %d MiB free at the end of %s, but only %d KiB are free after the last partition: %w",
			PartitionSize>>20, device, max(0, end-maxEnd)>>10, ErrNoSpace)
	}
	for len(t.Partitions) < 4 {
		t.Partitions = append(t.Partitions, &mbr.Partition{})
	}
	t.Partitions[free] = &mbr.Partition{Type: mbr.Linux, Start: uint32(start / ss), Size: uint32(PartitionSize / ss)}
	if err := writeTable(d, t); err != nil {
		return region{}, fmt.Errorf("write the MBR of %s: %w", device, err)
	}
	return region{free + 1, start, PartitionSize}, nil
}

// writeTable writes a partition table without asking the kernel to re-read it (go-diskfs' Disk.Partition fails
// on loop devices without partition scanning); WritePartition asks once at the end and tolerates a refusal.
func writeTable(d *disk.Disk, t interface {
	Write(backend.WritableFile, int64) error
}) error {
	rw, err := d.Backend.Writable()
	if err != nil {
		return err
	}
	return t.Write(rw, d.Size)
}

// ReadFiles lists the files of a config drive: an ISO or vfat image file, or the config-2 partition of a disk
// image or block device.
func ReadFiles(p string) (map[string][]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	kind, _ := Detect(f)
	if kind != KindUnknown {
		f.Close()
		return readImageFiles(p)
	}
	defer f.Close()
	d, err := diskfs.Open(p, diskfs.WithOpenMode(diskfs.ReadOnly))
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", p, err)
	}
	tbl, err := d.GetPartitionTable()
	ss := d.LogicalBlocksize
	d.Close()
	if err != nil {
		return nil, fmt.Errorf("%s is neither a config drive image nor a partitioned disk: %w", p, err)
	}
	parts, _ := findConfigPartitions(f, tbl, ss)
	if len(parts) == 0 {
		return nil, fmt.Errorf("%s has no partition labelled config-2", p)
	}
	buf := make([]byte, parts[0].size)
	if _, err := f.ReadAt(buf, parts[0].start); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return filesOfImage(buf)
}
