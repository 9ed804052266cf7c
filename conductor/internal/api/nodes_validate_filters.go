package api

// The node list filters of Ironic's get_all with their microversion gates (406 "Request not acceptable. The
// minimal required API version should be 1.N", as check_allow_filter_by_*), and the filters on fields the
// store keeps in the node's JSON body (fault, lessee, project, description_contains, retired, conductor): those
// are matched here, page by page, so the store's query stays the same for both databases.

import (
	"context"
	"net/url"
	"slices"
	"strings"

	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// filterGates are the filters newer than 1.1 and the microversion each needs. description_contains, project
// and retired have none in Ironic's code.
func filterGates() map[string]int {
	return map[string]int{"provision_state": 9, "driver": 16, "resource_class": 21, "fault": 42,
		"conductor_group": 46, "conductor": 49, "owner": 50, "lessee": 65}
}

// checkFilterGates refuses the filters newer than the request.
func checkFilterGates(q url.Values, version int) error {
	for _, k := range []string{"provision_state", "driver", "resource_class", "fault", "conductor_group", "conductor",
		"owner", "lessee"} {
		if q.Has(k) {
			if err := needVersion(version, filterGates()[k]); err != nil {
				return err
			}
		}
	}
	// Sorting by a field newer than the request is 406 too (Ironic's check_allowed_fields([sort_key])).
	if k := q.Get("sort_key"); fieldSince()[k] > version {
		return notAcceptable()
	}
	if f := q.Get("fault"); q.Has("fault") && !slices.Contains(validFaults(), f) {
		return badRequest("Unrecognized fault \"%s\" is specified, allowed faults are %s", f, fmtList(validFaults()))
	}
	return nil
}

// parseBodyFilters sets lq.match from the filters on body fields, and repeats them in the next link.
func parseBodyFilters(q url.Values, lq *listQuery) error {
	// Each filter given adds a predicate; a node is listed when all hold (Ironic ANDs its filters).
	var preds []func(n *store.Node, host string) bool
	str := func(key string, get func(n *store.Node) string) {
		if q.Has(key) {
			want := q.Get(key)
			preds = append(preds, func(n *store.Node, _ string) bool { return get(n) == want })
			lq.passOn.Set(key, want)
		}
	}
	str("fault", func(n *store.Node) string { return n.Fault })
	str("lessee", func(n *store.Node) string { return n.Lessee })
	if q.Has("project") {
		p := q.Get("project")
		preds = append(preds, func(n *store.Node, _ string) bool { return n.Owner == p || n.Lessee == p })
		lq.passOn.Set("project", p)
	}
	if q.Has("description_contains") {
		d := q.Get("description_contains")
		preds = append(preds, func(n *store.Node, _ string) bool { return strings.Contains(n.Description, d) })
		lq.passOn.Set("description_contains", d)
	}
	if q.Has("conductor") {
		// Every node is served by this conductor, which names itself by its host.
		c := q.Get("conductor")
		preds = append(preds, func(_ *store.Node, host string) bool { return host == c })
		lq.passOn.Set("conductor", c)
	}
	if q.Has("retired") {
		b, err := toBool("retired", q.Get("retired"))
		if err != nil {
			return err
		}
		preds = append(preds, func(n *store.Node, _ string) bool { return n.Retired == b })
		lq.passOn.Set("retired", q.Get("retired"))
	}
	if len(preds) == 0 {
		return nil
	}
	lq.match = func(n *store.Node, host string) bool {
		for _, p := range preds {
			if !p(n, host) {
				return false
			}
		}
		return true
	}
	return nil
}

// listMatching lists the nodes of the store's filter that also match lq.match, filling the page from as many
// store pages as it takes, so limit, marker and the next link behave as if the store had filtered.
func (s *Server) listMatching(ctx context.Context, lq *listQuery) ([]*store.Node, error) {
	if lq.match == nil {
		return s.eng.Store().ListNodes(ctx, lq.nodeFilter, lq.opts)
	}
	// Each store page is a full limit of candidates; the loop ends on a short page (the store has no more) or
	// once the page is full, and the next link's marker is then the last node listed, as without a filter.
	opts, host := lq.opts, s.eng.Host()
	var out []*store.Node
	for {
		batch, err := s.eng.Store().ListNodes(ctx, lq.nodeFilter, opts)
		if err != nil {
			return nil, err
		}
		for _, n := range batch {
			if lq.match(n, host) {
				out = append(out, n)
				if len(out) == lq.opts.Limit {
					return out, nil
				}
			}
		}
		if len(batch) < opts.Limit || len(batch) == 0 {
			return out, nil
		}
		opts.Marker = batch[len(batch)-1].UUID
	}
}
