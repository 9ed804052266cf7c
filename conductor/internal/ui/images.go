package ui

// The booted images and the FleetLock reboot groups.

import (
	"net/http"
	"sort"

	"github.com/ferric-metal/ferric/conductor/internal/fleet"
	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// hostsShown bounds the hosts listed under one image; the count says how many there are in all.
const hostsShown = 100

// imageRow is one booted image with its stale verdict and a first page of its hosts.
type imageRow struct {
	store.BootcImage
	Check fleet.ImageCheck
	Hosts []store.BootcNode
	// More is how many hosts boot it beyond those listed.
	More int
}

// images serves /ui/images: every booted digest, its references, node count, stale flag and hosts. The stale
// verdict is the API's (fleet.CheckImage on the same resolver), answered from the resolver's cache.
func (p *Pages) images(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	imgs, err := p.cfg.Store.ListBootcImages(ctx, "")
	if err != nil {
		p.storeFail(w, r, err)
		return
	}
	rows := make([]imageRow, 0, len(imgs))
	for _, im := range imgs {
		// The verdict needs every followed reference, so every node of the image is read, not only those shown.
		all, err := p.cfg.Store.ListBootcNodes(ctx, im.Digest, store.ListOptions{})
		if err != nil {
			p.storeFail(w, r, err)
			return
		}
		row := imageRow{BootcImage: im, Check: fleet.CheckImage(ctx, p.cfg.Store, p.cfg.Stale, im.Digest, all, false), Hosts: all}
		if len(all) > hostsShown {
			row.Hosts, row.More = all[:hostsShown], len(all)-hostsShown
		}
		rows = append(rows, row)
	}
	p.render(w, http.StatusOK, "images", page{Title: "Images", Nav: "images", Refresh: p.refreshSeconds(), Data: rows})
}

// groupRow is one reboot group: its slots (its own count or the conductor's default) and holders.
type groupRow struct {
	*store.FleetLockGroup
	SlotCount   int
	DefaultSlot bool // SlotCount is --fleetlock-slots, the group has no count of its own
	Holders     []holderRow
}

// holderRow is a slot's holder: ferric-hostd holds slots under its node's UUID, shown by the node's name. Any
// other FleetLock client (Zincati with its own id) has no name here and is shown by its id.
type holderRow struct {
	store.FleetLockHolder
	Name string
}

// fleetLock serves /ui/fleetlock: the reboot groups by name. The group's secret hash is never shown.
func (p *Pages) fleetLock(w http.ResponseWriter, r *http.Request) {
	groups, err := p.cfg.Store.ListFleetLockGroups(r.Context())
	if err != nil {
		p.storeFail(w, r, err)
		return
	}
	// The holders' names in one read for every group.
	var ids []string
	for _, g := range groups {
		for _, h := range g.Holders {
			ids = append(ids, h.ID)
		}
	}
	names, err := p.cfg.Store.NodeNames(r.Context(), ids)
	if err != nil {
		p.storeFail(w, r, err)
		return
	}
	sort.Slice(groups, func(i, j int) bool { return groups[i].Name < groups[j].Name })
	rows := make([]groupRow, 0, len(groups))
	for _, g := range groups {
		row := groupRow{FleetLockGroup: g, SlotCount: p.cfg.DefaultSlots, DefaultSlot: g.Slots == nil}
		if g.Slots != nil {
			row.SlotCount = *g.Slots
		}
		for _, h := range g.Holders {
			row.Holders = append(row.Holders, holderRow{FleetLockHolder: h, Name: names[h.ID]})
		}
		rows = append(rows, row)
	}
	p.render(w, http.StatusOK, "fleetlock", page{Title: "Reboot groups", Nav: "fleetlock", Refresh: p.refreshSeconds(), Data: rows})
}
