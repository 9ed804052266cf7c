package cluster

import (
	"crypto/sha256"
	"encoding/binary"
	"slices"
	"sort"
	"strconv"
)

// ringReplicas is how many points each conductor has on the ring. More points spread nodes more evenly
// (with 3 conductors and 128 points each, every conductor's share stays within about 15 % of a third) at the
// price of a larger sorted slice; a ring is rebuilt only when membership changes.
const ringReplicas = 128

// Ring is a consistent hash ring over conductor host names: a node belongs to the first conductor point at or
// after the node's own hash. When a conductor joins or leaves, only the nodes between its points and their
// predecessors move, about 1/N of them, which is what makes take-over cheap: the survivors' own nodes stay put.
// A Ring is immutable once built, and safe to share.
type Ring struct {
	points []uint64
	owners []string // owners[i] owns points[i]
	hosts  []string // sorted member host names
}

// NewRing builds the ring of hosts (duplicates ignored). A ring of no hosts owns nothing.
func NewRing(hosts []string) *Ring {
	hosts = slices.Clone(hosts)
	sort.Strings(hosts)
	hosts = slices.Compact(hosts)
	type point struct {
		hash uint64
		host string
	}
	pts := make([]point, 0, len(hosts)*ringReplicas)
	for _, h := range hosts {
		for i := 0; i < ringReplicas; i++ {
			pts = append(pts, point{hash(h + "#" + strconv.Itoa(i)), h})
		}
	}
	// Ties (astronomically rare with 64-bit hashes) break by host name so every conductor builds the same ring.
	sort.Slice(pts, func(i, j int) bool {
		if pts[i].hash != pts[j].hash {
			return pts[i].hash < pts[j].hash
		}
		return pts[i].host < pts[j].host
	})
	r := &Ring{points: make([]uint64, len(pts)), owners: make([]string, len(pts)), hosts: hosts}
	for i, p := range pts {
		r.points[i], r.owners[i] = p.hash, p.host
	}
	return r
}

// Owner is the host that drives the node with this UUID, or "" on an empty ring.
func (r *Ring) Owner(uuid string) string {
	if r == nil || len(r.points) == 0 {
		return ""
	}
	h := hash(uuid)
	i := sort.Search(len(r.points), func(i int) bool { return r.points[i] >= h })
	if i == len(r.points) {
		i = 0 // past the last point: wrap around to the first
	}
	return r.owners[i]
}

// Hosts lists the ring's members, sorted.
func (r *Ring) Hosts() []string {
	if r == nil {
		return nil
	}
	return slices.Clone(r.hosts)
}

// hash is the first 8 bytes of SHA-256: stable across processes, versions and architectures, which every
// conductor of a fleet needs to agree on owners (Go's maphash is seeded per process).
func hash(s string) uint64 {
	sum := sha256.Sum256([]byte(s))
	return binary.BigEndian.Uint64(sum[:8])
}
