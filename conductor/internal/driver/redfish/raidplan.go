package redfish

// The RAID planner of Ironic's redfish raid interface (ironic/drivers/modules/redfish/raid.py): it turns a
// node's target_raid_config logical disks into volumes to create, choosing for each one enough drives of the
// same kind (media type, protocol, capacity) for its RAID level and size, with the same rules: drives are
// counted in 64 MiB stripes, a drive already used by a planned volume is taken again only when the logical
// disk sets share_physical_disks, size_gb "MAX" needs physical_disks, and volumes naming their drives are
// planned first. It only reads: drives come from the BMC (raid.go), and nothing here talks to it.

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// stripeBytes is the stripe size Ironic's redfish RAID counts drive space in (64 MiB).
const stripeBytes = 64 << 20

// raidLevel is one RAID level as Ironic's redfish RAID knows it: a simple level's drive counts and overhead
// (drives of redundancy), or a spanned level made of spans of another.
type raidLevel struct {
	min, max, overhead int
	raidType           string // the Redfish RAIDType
	span               string // the level of each span; "" for simple levels
}

// raidLevelOf returns the level; false for the schema's JBOD and 2, which Redfish RAID cannot build.
func raidLevelOf(level string) (raidLevel, bool) {
	l, ok := map[string]raidLevel{
		"0": {min: 1, max: 1000, raidType: "RAID0"},
		"1": {min: 2, max: 2, overhead: 1, raidType: "RAID1"},
		"5": {min: 3, max: 1000, overhead: 1, raidType: "RAID5"},
		"6": {min: 4, max: 1000, overhead: 2, raidType: "RAID6"},
		// Spanned levels: RAID 1+0 is mirrors striped together, 5+0 and 6+0 two parity sets striped.
		"1+0": {raidType: "RAID10", span: "1"},
		"5+0": {raidType: "RAID50", span: "5"},
		"6+0": {raidType: "RAID60", span: "6"},
	}[level]
	return l, ok
}

// levelForType maps a Redfish RAIDType back to the raid_level Ironic records in raid_config.
func levelForType(raidType string) string {
	for _, level := range []string{"0", "1", "5", "6", "1+0", "5+0", "6+0"} {
		if l, _ := raidLevelOf(level); l.raidType == raidType {
			return level
		}
	}
	return ""
}

// planErr is a plan that does not fit; the planner tries the next candidate on any, as Ironic catches
// RedfishError while matching.
func planErr(format string, a ...any) error { return fmt.Errorf(format, a...) }

// levelRule resolves a spanned level to its span's rule, multiplied by the span count.
func levelRule(level string, spans int) (minDisks, maxDisks, overhead int, err error) {
	l, ok := raidLevelOf(level)
	if !ok {
		return 0, 0, 0, planErr("RAID level %s is not supported by the driver. Supported RAID levels: 0, 1, 5, 6, 1+0, 5+0, 6+0", level)
	}
	if l.span == "" {
		return l.min, l.max, l.overhead, nil
	}
	if spans <= 1 {
		return 0, 0, 0, planErr("RAID level %s: spanned RAID volumes cannot contain a single span", level)
	}
	s, _ := raidLevelOf(l.span)
	return s.min * spans, s.max * spans, s.overhead * spans, nil
}

// spansFor is the number of spans a level uses over n drives.
func spansFor(level string, n int) (int, error) {
	switch level {
	case "0", "1", "5", "6":
		return 1, nil
	case "5+0", "6+0":
		return 2, nil
	case "1+0":
		return n >> 1, nil
	}
	return 0, planErr("cannot calculate spans for RAID level %q", level)
}

// usableDrives is how many of n drives a level can use (spanned levels use an even number).
func usableDrives(level string, n int) int {
	if strings.Contains(level, "+") {
		return n >> 1 << 1
	}
	return n
}

// physDisk is one drive of a RAID-capable controller.
type physDisk struct {
	ID, Path, Storage   string // Drive Id, its @odata.id, and the Id of its Storage (the controller)
	MediaType, Protocol string
	Capacity            int64
}

// kind groups drives a volume may mix: Ironic requires homogeneous drives per logical disk.
func (d *physDisk) kind() string { return fmt.Sprintf("%s/%s/%d", d.MediaType, d.Protocol, d.Capacity) }

// logicalDisk is one target logical disk being planned. Size is in bytes, -1 for "MAX".
type logicalDisk struct {
	Index      int // position in target_raid_config, for messages
	Level      string
	Size       int64
	Drives     []string // drive Ids: the operator's physical_disks, or the planner's choice
	given      bool     // Drives came from the operator
	Share      bool
	DiskType   string
	Interface  string
	Count      int // number_of_physical_disks, 0 when not set
	Name       string
	Controller string
	Root       bool
}

// describe names a logical disk for errors: its index, level and size.
func (l *logicalDisk) describe() string {
	size := "MAX"
	if l.Size >= 0 {
		size = fmt.Sprint(l.Size >> 30)
	}
	return fmt.Sprintf("logical disk %d (raid_level %s, size_gb %s)", l.Index, l.Level, size)
}

// planner holds the drives and what each has left while volumes are placed.
type planner struct {
	disks []*physDisk
	free  map[*physDisk]int64
}

// cloneFree copies a free-space map: each candidate placement works on its own, as Ironic copies it per try.
func cloneFree(free map[*physDisk]int64) map[*physDisk]int64 {
	out := make(map[*physDisk]int64, len(free))
	for k, v := range free {
		out[k] = v
	}
	return out
}

// maxVolume is the largest volume of level the drives hold: whole stripes of the smallest free space, times the
// drives that hold data.
func maxVolume(level string, disks []*physDisk, free map[*physDisk]int64, spans int) (int64, error) {
	_, _, overhead, err := levelRule(level, spans)
	if err != nil {
		return 0, err
	}
	if len(disks) <= overhead {
		return 0, planErr("the number of physical drives (%d) is too few for the required number of overhead drives (%d)",
			len(disks), overhead)
	}
	// The smallest drive bounds the volume: every drive of a RAID set gives the same space.
	least := free[disks[0]]
	for _, d := range disks {
		least = min(least, free[d])
	}
	return least / stripeBytes * stripeBytes * int64(len(disks)-overhead), nil
}

// usagePerDrive is what a volume of size takes from each of its drives, in whole stripes.
func usagePerDrive(level string, size int64, n, spans int) int64 {
	_, _, overhead, _ := levelRule(level, spans) // checked by maxVolume before
	stripes := (size + stripeBytes - 1) / stripeBytes
	data := int64(n - overhead)
	return (stripes + data - 1) / data * stripeBytes
}

// place checks that ld fits on its Drives given free space, takes the space from free, and fills in the
// controller (Ironic's _calculate_volume_props).
func (p *planner) place(ld *logicalDisk, free map[*physDisk]int64) error {
	var sel []*physDisk
	for _, d := range p.disks {
		if slices.Contains(ld.Drives, d.ID) {
			sel = append(sel, d)
		}
	}
	if len(sel) == 0 {
		return planErr("none of physical_disks %v is a drive of a RAID controller", ld.Drives)
	}
	spans, err := spansFor(ld.Level, len(sel))
	if err != nil {
		return err
	}
	if spans == 0 || len(sel)%spans != 0 {
		return planErr("for RAID level %s, the number of physical disks provided (%d) must be a multiple of the spans count (%d)",
			ld.Level, len(sel), spans)
	}
	most, err := maxVolume(ld.Level, sel, free, spans)
	if err != nil {
		return err
	}
	size := ld.Size
	switch {
	case size < 0 && most == 0:
		return planErr("size set to 'MAX' but could not allocate physical disk space")
	case size < 0:
		size = most // MAX: all the drives have left (the BMC sizes it; this only books the space)
	case most < size:
		return planErr("the physical disk space (%d bytes) is not enough for the size of the logical disk (%d bytes)", most, size)
	}
	use := usagePerDrive(ld.Level, size, len(sel), spans)
	for _, d := range sel {
		if free[d] < use {
			return planErr("the free space of a disk (%d bytes) is not enough for the per-disk size of the logical disk (%d bytes)",
				free[d], use)
		}
		free[d] -= use
	}
	// An operator's controller is kept as given; otherwise the drives' controller is recorded for grouping.
	if ld.Controller == "" {
		ld.Controller = sel[0].Storage
	}
	return nil
}

// group is the drives of one kind, in the BMC's order.
type group struct {
	kind  *physDisk // a drive of the kind (media type, protocol, capacity)
	disks []*physDisk
}

// groups sorts drives by kind, leaving out those in skip.
func groups(disks []*physDisk, skip func(*physDisk) bool) []*group {
	var out []*group
	for _, d := range disks {
		i := slices.IndexFunc(out, func(g *group) bool { return g.kind.kind() == d.kind() })
		if i < 0 {
			out = append(out, &group{kind: d})
			i = len(out) - 1
		}
		if !skip(d) {
			out[i].disks = append(out[i].disks, d)
		}
	}
	return out
}

// protocolName is the interface_type a Redfish drive protocol matches (Ironic maps SAS and SATA only).
func protocolName(p string) string {
	return map[string]string{"SAS": "sas", "SATA": "sata"}[p]
}

// candidates are the drives of g that ld may use, least free space first: of its disk_type and
// interface_type, with space left, and unused unless ld shares drives.
func candidates(ld *logicalDisk, g *group, free map[*physDisk]int64) []*physDisk {
	if ld.DiskType != "" && !strings.EqualFold(ld.DiskType, g.kind.MediaType) {
		return nil
	}
	if ld.Interface != "" && ld.Interface != protocolName(g.kind.Protocol) {
		return nil
	}
	var out []*physDisk
	for _, d := range g.disks {
		if free[d] > 0 && (ld.Share || free[d] == d.Capacity) {
			out = append(out, d)
		}
	}
	slices.SortStableFunc(out, func(a, b *physDisk) int { return cmp.Compare(free[a], free[b]) })
	return out
}

// assign places the first logical disk of queue on drives of one kind, then the rest recursively, trying drive
// counts from the level's minimum up; on success the placed disks are back in queue (as Ironic's
// _assign_disks_to_volume). A level that cannot be planned at all is an error, not a false.
func (p *planner) assign(queue *[]*logicalDisk, gs []*group, free map[*physDisk]int64) (bool, map[*physDisk]int64, error) {
	ld := (*queue)[0]
	*queue = (*queue)[1:]
	// The disk goes back to the front of the queue whenever it is not placed, also on an error (Ironic loses it).
	fail := func(err error) (bool, map[*physDisk]int64, error) {
		*queue = append([]*logicalDisk{ld}, *queue...)
		return false, free, err
	}
	for _, g := range gs {
		disks := candidates(ld, g, free)
		maxSpans, err := spansFor(ld.Level, len(disks))
		if err != nil {
			return fail(err)
		}
		minDisks, _, _, err := levelRule(ld.Level, min(2, maxSpans))
		if err != nil {
			return fail(err)
		}
		_, maxDisks, _, err := levelRule(ld.Level, maxSpans)
		if err != nil {
			return fail(err)
		}
		// The fewest drives first: RAID sets stay small and leave drives for the logical disks still queued.
		for n := minDisks; n <= min(maxDisks, len(disks)); n++ {
			if (ld.Count > 0 && ld.Count != n) || usableDrives(ld.Level, n) != n {
				continue
			}
			cand, candFree := *ld, cloneFree(free)
			cand.Drives = nil
			for _, d := range disks[:n] {
				cand.Drives = append(cand.Drives, d.ID)
			}
			if p.place(&cand, candFree) != nil {
				continue
			}
			// The rest of the queue must fit too; if not, the next drive count (or kind) is tried for this disk.
			if len(*queue) > 0 {
				ok, rest, err := p.assign(queue, gs, candFree)
				if err != nil || !ok {
					continue
				}
				candFree = rest
			}
			*queue = append(*queue, &cand)
			return true, candFree, nil
		}
	}
	return fail(nil)
}

// plan places every logical disk (Ironic's _find_configuration): first those with physical_disks and a size,
// then those without physical_disks (on drives not reserved by a shared "MAX" volume, then on those too), then
// those with physical_disks and size "MAX", which take what is left. The disks come back in that order, each with
// its drives and controller.
func (p *planner) plan(lds []*logicalDisk) ([]*logicalDisk, error) {
	reserved, excluded := map[string]bool{}, map[string]bool{}
	for _, ld := range lds {
		for _, id := range ld.Drives {
			switch {
			case ld.given && ld.Size < 0 && ld.Share:
				reserved[id] = true
			case ld.given && !ld.Share:
				excluded[id] = true
			}
		}
	}
	var out, queue, last []*logicalDisk
	for _, ld := range lds {
		switch {
		case ld.given && ld.Size >= 0:
			if err := p.place(ld, p.free); err != nil {
				return nil, fmt.Errorf("%s: %w", ld.describe(), err)
			}
			out = append(out, ld)
		case ld.given:
			last = append(last, ld)
		default:
			queue = append(queue, ld)
		}
	}
	// Drives reserved by a shared MAX volume are kept out of the first try, so that the MAX volume gets as much
	// as possible; the second try uses them too.
	if len(queue) > 0 {
		gs := groups(p.disks, func(d *physDisk) bool { return reserved[d.ID] || excluded[d.ID] })
		ok, free, err := p.assign(&queue, gs, p.free)
		if err == nil && !ok {
			gs = groups(p.disks, func(d *physDisk) bool { return excluded[d.ID] && !reserved[d.ID] })
			ok, free, err = p.assign(&queue, gs, p.free)
		}
		if err != nil {
			return nil, err
		}
		if !ok {
			var names []string
			for _, ld := range queue {
				names = append(names, ld.describe())
			}
			return nil, planErr("failed to find matching physical disks for all logical disks (%s)", strings.Join(names, "; "))
		}
		p.free = free
		out = append(out, queue...)
	}
	for _, ld := range last {
		if err := p.place(ld, p.free); err != nil {
			return nil, fmt.Errorf("%s: %w", ld.describe(), err)
		}
		out = append(out, ld)
	}
	return out, nil
}
