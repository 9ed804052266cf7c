package ui

// The rollouts pages: every rollout of a bootc image with its state and wave, and one rollout with its waves and
// each node's status in it (package rollout drives them; these pages only read the store).

import (
	"net/http"

	"github.com/gorilla/mux"

	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// rolloutWave is one wave of a rollout page: its number, whether it is the current one, and its nodes.
type rolloutWave struct {
	Number  int
	Current bool
	Nodes   []rolloutNode
}

// rolloutNode is one node of a rollout page with its name ("" when it has none or was deleted: the page shows
// the UUID).
type rolloutNode struct {
	store.BootcRolloutNode
	Name string
}

// rollouts serves /ui/rollouts: every rollout, newest first as the store lists them.
func (p *Pages) rollouts(w http.ResponseWriter, r *http.Request) {
	list, err := p.cfg.Store.ListBootcRollouts(r.Context(), "")
	if err != nil {
		p.storeFail(w, r, err)
		return
	}
	p.render(w, http.StatusOK, "rollouts", page{Title: "Rollouts", Nav: "rollouts", Refresh: p.refreshSeconds(), Data: list})
}

// rollout serves /ui/rollouts/{id}: the rollout and its nodes wave by wave, each by name linking to its page.
func (p *Pages) rollout(w http.ResponseWriter, r *http.Request) {
	id := mux.Vars(r)["id"]
	ro, err := p.cfg.Store.GetBootcRollout(r.Context(), id)
	if err != nil {
		p.storeFail(w, r, err)
		return
	}
	nodes, err := p.cfg.Store.ListBootcRolloutNodes(r.Context(), ro.ID, -1)
	if err != nil {
		p.storeFail(w, r, err)
		return
	}
	// The nodes' names in one read for the whole rollout (thousands of hosts), not one per node.
	uuids := make([]string, len(nodes))
	for i, n := range nodes {
		uuids[i] = n.NodeUUID
	}
	names, err := p.cfg.Store.NodeNames(r.Context(), uuids)
	if err != nil {
		p.storeFail(w, r, err)
		return
	}
	// Nodes come wave by wave (the store orders them by wave and place); waves are numbered as the API numbers them.
	var waves []rolloutWave
	for _, n := range nodes {
		if len(waves) == 0 || waves[len(waves)-1].Number != n.Wave {
			waves = append(waves, rolloutWave{Number: n.Wave, Current: n.Wave == ro.CurrentWave})
		}
		waves[len(waves)-1].Nodes = append(waves[len(waves)-1].Nodes, rolloutNode{BootcRolloutNode: n, Name: names[n.NodeUUID]})
	}
	data := struct {
		Rollout *store.BootcRollout
		Waves   []rolloutWave
	}{ro, waves}
	p.render(w, http.StatusOK, "rollout", page{Title: "Rollout " + ro.ID, Nav: "rollouts", Refresh: p.refreshSeconds(), Data: data})
}
