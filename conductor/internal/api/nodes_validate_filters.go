package api

// The node list filters of Ironic's get_all with their microversion gates (406 "Request not acceptable. The
// minimal required API version should be 1.N", as check_allow_filter_by_*), and the filters on fields the
// store keeps in the node's JSON body (fault, lessee, project, description_contains, retired): the store matches
// those in SQL (store.NodeFilter), so pages are exact.

import (
	"context"
	"net/url"
	"slices"

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

// parseBodyFilters sets the store filters on body fields (the store matches them in SQL, so limit, marker and
// the next link page over matching nodes only), and repeats them in the next link.
func parseBodyFilters(q url.Values, lq *listQuery) error {
	f := &lq.nodeFilter
	for key, dst := range map[string]**string{"fault": &f.Fault, "lessee": &f.Lessee, "project": &f.Project,
		"description_contains": &f.DescriptionContains, "bootc_image": &f.BootcImage, "bootc_digest": &f.BootcDigest} {
		if q.Has(key) {
			v := q.Get(key)
			*dst = &v
			lq.passOn.Set(key, v)
		}
	}
	if q.Has("conductor") {
		// The nodes the named conductor drives: all or none with one conductor, else the ring's share of the page.
		c := q.Get("conductor")
		lq.conductor = &c
		lq.passOn.Set("conductor", c)
	}
	if q.Has("retired") {
		b, err := toBool("retired", q.Get("retired"))
		if err != nil {
			return err
		}
		f.Retired = &b
		lq.passOn.Set("retired", q.Get("retired"))
	}
	return nil
}

// listMatching lists the nodes of lq: none when the conductor filter names another conductor, else the store's
// page. An answer showing only fields (nil: all) the store keeps in columns reads the columns alone (the
// default GET /v1/nodes: decoding each node's JSON body was most of its time).
func (s *Server) listMatching(ctx context.Context, lq *listQuery, fields []string) ([]*store.Node, error) {
	if lq.conductor != nil && s.cfg.Cluster == nil && *lq.conductor != s.eng.Host() {
		return nil, nil
	}
	list := s.eng.Store().ListNodes
	if columnFieldsOnly(fields) {
		list = s.eng.Store().ListNodeColumns
	}
	nodes, err := list(ctx, lq.nodeFilter, lq.opts)
	if err != nil || lq.conductor == nil || s.cfg.Cluster == nil {
		return nodes, err
	}
	// As Ironic's API filters by conductor: the page is read, then the nodes the ring gives to another
	// conductor are dropped from it.
	kept := nodes[:0]
	for _, n := range nodes {
		if s.cfg.Cluster.Owner(n.UUID, n.ConductorGroup) == *lq.conductor {
			kept = append(kept, n)
		}
	}
	return kept, nil
}

// columnFieldsOnly reports whether every field is rendered from what store.ListNodeColumns fills (the node's
// columns, the links, and this conductor's name).
func columnFieldsOnly(fields []string) bool {
	if fields == nil {
		return false
	}
	for _, f := range fields {
		switch f {
		case "uuid", "name", "driver", "provision_state", "power_state", "maintenance", "instance_uuid",
			"resource_class", "conductor_group", "owner", "reservation", "created_at", "updated_at",
			"provision_updated_at", "links", "ports", "states", "portgroups", "volume", "conductor":
		default:
			return false
		}
	}
	return true
}
