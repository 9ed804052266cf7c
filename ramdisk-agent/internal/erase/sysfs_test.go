package erase

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeSys builds a sysfs tree under a temporary root: files maps paths (relative to root) to contents, links
// maps /dev/block entries to their targets (relative to root).
func fakeSys(t *testing.T, files map[string]string, links map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for p, c := range files {
		require.NoError(t, os.MkdirAll(filepath.Dir(filepath.Join(root, p)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(root, p), []byte(c), 0o644))
	}
	require.NoError(t, os.MkdirAll(filepath.Join(root, "dev", "block"), 0o755))
	for name, target := range links {
		require.NoError(t, os.Symlink(filepath.Join(root, target), filepath.Join(root, "dev", "block", name)))
	}
	return root
}

func TestReadLimits(t *testing.T) {
	const sda = "devices/pci0000:00/0000:00:1f.2/ata1/host0/target0:0:0/0:0:0:0/block/sda"
	queue := map[string]string{
		sda + "/queue/discard_max_bytes":      "2147450880\n",
		sda + "/queue/discard_granularity":    "4096\n",
		sda + "/queue/write_zeroes_max_bytes": "0\n",
		sda + "/queue/logical_block_size":     "512\n",
		sda + "/sda1/partition":               "1\n",
		sda + "/sda1/start":                   "2048\n",
		sda + "/sda1/size":                    "204800\n",
		sda + "/sda2/partition":               "2\n",
		sda + "/sda2/start":                   "206848\n",
		sda + "/sda2/size":                    "1000\n",
	}
	links := map[string]string{"8:0": sda, "8:1": sda + "/sda1"}
	with := func(extra map[string]string, drop ...string) map[string]string {
		out := map[string]string{}
		for k, v := range queue {
			out[k] = v
		}
		for k, v := range extra {
			out[k] = v
		}
		for _, k := range drop {
			delete(out, k)
		}
		return out
	}
	tests := []struct {
		name    string
		files   map[string]string
		minor   uint32
		want    limits
		wantErr string
	}{
		{name: "whole disk", files: queue, minor: 0, want: limits{Node: sda, Disk: sda, DiscardMax: 2147450880,
			DiscardGran: 4096, LogicalBlock: 512}},
		{name: "a partition reads its disk's queue", files: queue, minor: 1, want: limits{Node: sda + "/sda1",
			Disk: sda, Partition: true, DiscardMax: 2147450880, DiscardGran: 4096, LogicalBlock: 512}},
		{name: "no write_zeroes file (Linux < 4.10) means no offload",
			files: with(nil, sda+"/queue/write_zeroes_max_bytes"), want: limits{Node: sda, Disk: sda,
				DiscardMax: 2147450880, DiscardGran: 4096, LogicalBlock: 512}},
		{name: "granularity 0 (no discard) is raised to the block size",
			files: with(map[string]string{sda + "/queue/discard_max_bytes": "0", sda + "/queue/discard_granularity": "0",
				sda + "/queue/logical_block_size": "4096", sda + "/queue/write_zeroes_max_bytes": "33553920"}),
			want: limits{Node: sda, Disk: sda, DiscardGran: 4096, WriteZeroesMax: 33553920, LogicalBlock: 4096}},
		{name: "no discard file is an error", files: with(nil, sda+"/queue/discard_max_bytes"),
			wantErr: "discard_max_bytes"},
		{name: "garbage is an error", files: with(map[string]string{sda + "/queue/discard_granularity": "x"}),
			wantErr: "not a number"},
		{name: "unknown device", files: queue, minor: 7, wantErr: "8:7"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := fakeSys(t, tc.files, links)
			got, err := readLimits(root, 8, tc.minor)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			tc.want.Node, tc.want.Disk = filepath.Join(root, tc.want.Node), filepath.Join(root, tc.want.Disk)
			assert.Equal(t, tc.want, got)
		})
	}
	t.Run("partitions of the disk, by start, in bytes", func(t *testing.T) {
		root := fakeSys(t, queue, links)
		parts, err := sysfsPartitions(filepath.Join(root, sda))
		require.NoError(t, err)
		assert.Equal(t, []span{{2048 * 512, 204800 * 512}, {206848 * 512, 1000 * 512}}, parts)
	})
}

func TestPlan(t *testing.T) {
	disk := limits{DiscardMax: 1 << 30, DiscardGran: 4096, WriteZeroesMax: 1 << 25, LogicalBlock: 512}
	plain := limits{DiscardGran: 512, LogicalBlock: 512}
	tests := []struct {
		name       string
		block      bool
		misaligned bool
		lim        limits
		method     string
		want       []string
		wantErr    string
	}{
		{name: "auto: discard, zeroout, overwrite", block: true, lim: disk,
			want: []string{MethodDiscard, MethodZeroout, MethodOverwrite}},
		{name: "auto without offloads: overwrite", block: true, lim: plain, want: []string{MethodOverwrite}},
		{name: "auto on a misaligned partition skips discard", block: true, misaligned: true, lim: disk,
			want: []string{MethodZeroout, MethodOverwrite}},
		{name: "auto on a regular file: overwrite", lim: disk, want: []string{MethodOverwrite}},
		{name: "forced discard", block: true, lim: disk, method: MethodDiscard, want: []string{MethodDiscard}},
		{name: "forced discard without discard", block: true, lim: plain, method: MethodDiscard,
			wantErr: "cannot discard (queue/discard_max_bytes=0): use zeroout or overwrite"},
		{name: "forced zeroout without offload (the kernel writes zeros)", block: true, lim: plain,
			method: MethodZeroout, want: []string{MethodZeroout}},
		{name: "forced zeroout on a file", lim: plain, method: MethodZeroout, wantErr: "not a block device"},
		{name: "forced overwrite", block: true, lim: disk, method: MethodOverwrite, want: []string{MethodOverwrite}},
		{name: "unknown method", block: true, lim: disk, method: "shred", wantErr: `unknown method "shred"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := &device{path: "/dev/sdx", block: tc.block, misaligned: tc.misaligned, lim: tc.lim,
				opts: Options{Method: tc.method}}
			steps, err := d.plan()
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			var got []string
			for _, s := range steps {
				got = append(got, s.method)
			}
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestWipeSpans(t *testing.T) {
	const mib = 1 << 20
	tests := []struct {
		name string
		r    span
		want []span
	}{
		{"smaller than a MiB: all of it once", span{4096, 8192}, []span{{4096, 8192}}},
		{"both ends", span{mib, 10 * mib}, []span{{mib, mib}, {10 * mib, mib}}},
		{"the first btrfs copy", span{0, 100 * mib}, []span{{0, mib}, {99 * mib, mib}, {64 * mib, 4096}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { assert.Equal(t, tc.want, wipeSpans(tc.r)) })
	}
}

func TestVerifyZeros(t *testing.T) {
	const size = 4<<20 + 1536 // a tail past the last whole 4 KiB
	tests := []struct {
		name    string
		dirty   int64 // offset of the one non-zero byte; -1 for none
		samples int
		want    int64
	}{
		{"all zeros", -1, 8, -1},
		{"the first byte", 0, 2, 0},
		{"the very last byte, past the last whole 4 KiB", size - 1, 2, size - 1},
		{"the last byte before the final sample (never read with 2 samples)", size - 65*1024, 2, -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "disk")
			f, err := os.Create(path)
			require.NoError(t, err)
			require.NoError(t, f.Truncate(size))
			if tc.dirty >= 0 {
				_, err = f.WriteAt([]byte{1}, tc.dirty)
				require.NoError(t, err)
			}
			require.NoError(t, f.Close())
			n, bad, err := verifyZeros(path, size, tc.samples)
			require.NoError(t, err)
			assert.Equal(t, tc.want, bad)
			if tc.want < 0 {
				assert.Equal(t, tc.samples, n)
			}
		})
	}
}
