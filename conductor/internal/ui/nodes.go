package ui

// The nodes list and one node's page.

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"

	"github.com/gorilla/mux"

	"github.com/ferric-metal/ferric/conductor/internal/api"
	"github.com/ferric-metal/ferric/conductor/internal/driver/agentdeploy"
	"github.com/ferric-metal/ferric/conductor/internal/fsm"
	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// Paging of the nodes list: Ironic's default page is 1000; a page a person reads is smaller.
const (
	defaultLimit = 50
	maxLimit     = 500
	// actionsShown is how many of a node's latest day-2 actions its page lists.
	actionsShown = 20
)

// progress is a deploy's live progress as the deploy interfaces record it (agentdeploy.SetProgress).
type progress struct {
	Phase                 string
	Percent               float64
	BytesDone, BytesTotal int64
	UpdatedAt             string
}

// nodeRow is one line of the nodes list.
type nodeRow struct {
	*store.Node
	Progress                *progress
	BootedRef, BootedDigest string
}

// nodesData is the nodes page.
type nodesData struct {
	Rows   []nodeRow
	State  string   // the provision_state filter ("" = all)
	States []string // the filter's choices
	Limit  int
	Next   string // the next page's URL, "" on the last
}

// filterStates are the provision states offered by the filter: the stable ones and those a deploy passes.
func filterStates() []string {
	out := []string{}
	for _, s := range []fsm.State{fsm.Enroll, fsm.Manageable, fsm.Available, fsm.Deploying, fsm.DeployWait, fsm.Active,
		fsm.DeployFailed, fsm.Cleaning, fsm.CleanWait, fsm.CleanFailed, fsm.Inspecting, fsm.InspectFailed, fsm.Rescue,
		fsm.Servicing, fsm.Error} {
		out = append(out, string(s))
	}
	return out
}

// nodes serves /ui/: a page of nodes (limit, marker) filtered by provision_state.
func (p *Pages) nodes(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := defaultLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			p.fail(w, r, http.StatusBadRequest, fmt.Sprintf("limit=%q: give a number of nodes per page from 1 to %d.", v, maxLimit))
			return
		}
		limit = min(n, maxLimit)
	}
	d := nodesData{State: q.Get("provision_state"), States: filterStates(), Limit: limit}
	list, err := p.cfg.Store.ListNodes(r.Context(), store.NodeFilter{ProvisionState: d.State},
		store.ListOptions{Limit: limit, Marker: q.Get("marker")})
	if err != nil {
		// An unknown marker is the client's mistake, as in the API.
		if errors.Is(err, store.ErrNotFound) {
			p.fail(w, r, http.StatusBadRequest, "marker="+q.Get("marker")+" names no node; start again from the first page.")
			return
		}
		p.storeFail(w, r, err)
		return
	}
	// The booted image is the reporter's (image-mode hosts): one read for the whole page, not one per node;
	// nodes without a reporter or a report show none.
	uuids := make([]string, len(list))
	for i, n := range list {
		uuids[i] = n.UUID
	}
	reps, err := p.cfg.Store.BootcReporters(r.Context(), uuids)
	if err != nil {
		p.storeFail(w, r, err)
		return
	}
	for _, n := range list {
		row := nodeRow{Node: n, Progress: deployProgress(n)}
		if rep := reps[n.UUID]; rep != nil && rep.Report != nil {
			row.BootedRef, row.BootedDigest = rep.Report.BootedRef, rep.Report.BootedDigest
		}
		d.Rows = append(d.Rows, row)
	}
	// A full page may have more behind it (Ironic's rule for next links); the filter travels with the marker.
	if len(list) == limit {
		v := url.Values{"limit": {strconv.Itoa(limit)}, "marker": {list[len(list)-1].UUID}}
		if d.State != "" {
			v.Set("provision_state", d.State)
		}
		d.Next = "/ui/?" + v.Encode()
	}
	p.render(w, http.StatusOK, "nodes", page{Title: "Nodes", Nav: "nodes", Refresh: p.refreshSeconds(), Data: d})
}

// deployProgress reads deploy_progress from driver_internal_info; nil when no deploy recorded any.
func deployProgress(n *store.Node) *progress {
	m, ok := n.DriverInternalInfo[agentdeploy.KeyProgress].(map[string]any)
	if !ok {
		return nil
	}
	pr := &progress{}
	pr.Phase, _ = m["phase"].(string)
	pr.Percent = number(m["percent"])
	pr.BytesDone, pr.BytesTotal = int64(number(m["bytes_done"])), int64(number(m["bytes_total"]))
	pr.UpdatedAt, _ = m["updated_at"].(string)
	return pr
}

// number reads a JSON number (float64 after a store round trip, an integer before one).
func number(v any) float64 {
	switch x := v.(type) {
	case float64:
		return x
	case int:
		return float64(x)
	case int64:
		return float64(x)
	case json.Number:
		f, _ := x.Float64()
		return f
	}
	return 0
}

// field is one key and value of a node's JSON field, the value shown as compact JSON.
type field struct{ Key, Value string }

// nodeData is one node's page.
type nodeData struct {
	Node         *store.Node
	Progress     *progress
	InstanceInfo []field
	Installed    []field // what the deploy interface recorded the instance runs (<interface>_installed)
	Reporter     *store.BootcReporter
	Actions      []*store.BootcAction
}

// node serves /ui/nodes/{node}: the node by UUID or name.
func (p *Pages) node(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	n, err := p.cfg.Store.GetNode(ctx, mux.Vars(r)["node"])
	if err != nil {
		p.storeFail(w, r, err)
		return
	}
	// instance_info is masked as the API masks it (pull secrets, config drives); driver_info holds BMC
	// credentials and is not shown at all.
	d := nodeData{Node: n, Progress: deployProgress(n), InstanceInfo: fields(api.MaskSecrets(n.InstanceInfo))}
	for _, k := range []string{"bootc_installed", "direct_installed"} {
		if m, ok := n.DriverInternalInfo[k].(map[string]any); ok {
			d.Installed = fields(api.MaskSecrets(m))
		}
	}
	if d.Reporter, err = p.cfg.Store.BootcReporter(ctx, n.UUID); err != nil && !errors.Is(err, store.ErrNotFound) {
		p.storeFail(w, r, err)
		return
	}
	if d.Actions, err = p.cfg.Store.ListBootcActions(ctx, n.UUID, actionsShown); err != nil {
		p.storeFail(w, r, err)
		return
	}
	title := n.UUID
	if n.Name != "" {
		title = n.Name
	}
	p.render(w, http.StatusOK, "node", page{Title: "Node " + title, Nav: "nodes", Refresh: p.refreshSeconds(), Data: d})
}

// fields lists m's keys in order with their values as JSON.
func fields(m map[string]any) []field {
	out := make([]field, 0, len(m))
	for k, v := range m {
		b, err := json.Marshal(v)
		if err != nil {
			b = []byte(fmt.Sprint(v))
		}
		out = append(out, field{Key: k, Value: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}
