package redfish

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// drives builds n drives of one kind, named from first.
func drives(first, n int, media, protocol string, gib int64) []*physDisk {
	var out []*physDisk
	for i := first; i < first+n; i++ {
		out = append(out, &physDisk{ID: fmt.Sprintf("D%d", i), Path: fmt.Sprintf("/d/%d", i), Storage: "C1",
			MediaType: media, Protocol: protocol, Capacity: gib << 30})
	}
	return out
}

func newPlanner(disks []*physDisk) *planner {
	p := &planner{disks: disks, free: map[*physDisk]int64{}}
	for _, d := range disks {
		p.free[d] = d.Capacity
	}
	return p
}

// TestRAIDPlan: the drive matching of Ironic's redfish RAID, case by case: which drives each logical disk gets,
// or why the configuration cannot be built.
func TestRAIDPlan(t *testing.T) {
	ssd4 := func() []*physDisk { return drives(0, 4, "SSD", "SATA", 10) }
	mixed := func() []*physDisk {
		return append(drives(0, 2, "HDD", "SAS", 10), drives(2, 2, "SSD", "SATA", 10)...)
	}
	gb := func(n int64) int64 { return n << 30 }
	for _, tc := range []struct {
		name  string
		disks []*physDisk
		lds   []*logicalDisk
		want  [][]string // drives of each planned disk, in target order
		err   string
	}{
		{"RAID1 then RAID0 on unused drives", ssd4(), []*logicalDisk{{Level: "1", Size: gb(5)}, {Index: 1, Level: "0", Size: gb(8)}},
			[][]string{{"D0", "D1"}, {"D2"}}, ""},
		{"shared drives", ssd4()[:2], []*logicalDisk{{Level: "1", Size: gb(4)}, {Index: 1, Level: "1", Size: gb(4), Share: true}},
			[][]string{{"D0", "D1"}, {"D0", "D1"}}, ""},
		{"not shared: no drives left", ssd4()[:2], []*logicalDisk{{Level: "1", Size: gb(4)}, {Index: 1, Level: "1", Size: gb(4)}},
			nil, "failed to find matching physical disks for all logical disks"},
		{"number_of_physical_disks", ssd4(), []*logicalDisk{{Level: "5", Size: gb(3), Count: 4}}, [][]string{{"D0", "D1", "D2", "D3"}}, ""},
		{"disk_type", mixed(), []*logicalDisk{{Level: "1", Size: gb(1), DiskType: "ssd"}}, [][]string{{"D2", "D3"}}, ""},
		{"interface_type", mixed(), []*logicalDisk{{Level: "1", Size: gb(1), Interface: "sas"}}, [][]string{{"D0", "D1"}}, ""},
		{"RAID 1+0 on four", ssd4(), []*logicalDisk{{Level: "1+0", Size: gb(15)}}, [][]string{{"D0", "D1", "D2", "D3"}}, ""},
		{"RAID 1+0 on three", ssd4()[:3], []*logicalDisk{{Level: "1+0", Size: gb(1)}}, nil,
			"RAID level 1+0: spanned RAID volumes cannot contain a single span"},
		{"JBOD", ssd4(), []*logicalDisk{{Level: "JBOD", Size: gb(1)}}, nil, `cannot calculate spans for RAID level "JBOD"`},
		{"given drives and MAX", ssd4(), []*logicalDisk{{Level: "1", Size: -1, Drives: []string{"D2", "D3"}, given: true},
			{Index: 1, Level: "0", Size: gb(1)}}, [][]string{{"D2", "D3"}, {"D0"}}, ""},
		{"given drives too small", ssd4(), []*logicalDisk{{Level: "1", Size: gb(11), Drives: []string{"D0", "D1"}, given: true}},
			nil, "logical disk 0 (raid_level 1, size_gb 11): the physical disk space (10737418240 bytes) is not enough"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			planned, err := newPlanner(tc.disks).plan(tc.lds)
			if tc.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.err)
				return
			}
			require.NoError(t, err)
			got := make([][]string, len(planned))
			for _, ld := range planned {
				got[ld.Index] = ld.Drives
				assert.Equal(t, "C1", ld.Controller)
			}
			assert.Equal(t, tc.want, got)
		})
	}
}

// TestRAIDStripes: drive space counts in whole 64 MiB stripes, as in Ironic: a RAID 1 of 1 GiB fits drives of
// 1 GiB + 32 MiB and takes 1 GiB of each; RAID 5 spreads the volume over the data drives.
func TestRAIDStripes(t *testing.T) {
	disks := drives(0, 2, "SSD", "SATA", 1)
	for _, d := range disks {
		d.Capacity += 32 << 20
	}
	most, err := maxVolume("1", disks, map[*physDisk]int64{disks[0]: disks[0].Capacity, disks[1]: disks[1].Capacity}, 1)
	require.NoError(t, err)
	assert.EqualValues(t, 1<<30, most)
	assert.EqualValues(t, 1<<30, usagePerDrive("1", 1<<30, 2, 1))
	assert.EqualValues(t, 512<<20, usagePerDrive("5", 1<<30, 3, 1))
	assert.EqualValues(t, 64<<20, usagePerDrive("0", 1, 1, 1), "a byte takes a stripe")
	assert.Equal(t, "1+0", levelForType("RAID10"))
	assert.Equal(t, "", levelForType("RAID3"))
}
