package api

// List requests of every resource: their filters, sort keys, paging and next links, as Ironic parses them.

import (
	"net/url"
	"strconv"

	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// maxLimit is Ironic's [api]max_limit: the page size when no limit is given, and the cap on a larger one.
const maxLimit = 1000

// listQuery is a parsed list request (nodes, ports and the other resources' lists): the store filter and
// paging, the fields to show (nil: all of the version), whether the answer is detailed, and what the next
// link must repeat so the following page is the same query.
type listQuery struct {
	// nodeFilter and portFilter: only the one of the listed resource is used.
	nodeFilter store.NodeFilter
	portFilter store.PortFilter
	opts       store.ListOptions
	fields     []string
	detail     bool
	passOn     url.Values // arguments repeated in the next link
	// conductor is the conductor filter (parseBodyFilters): nil for none.
	conductor *string
}

// parseNodeQuery checks and parses the query of GET /v1/nodes[/detail]. It refuses unknown parameters and
// filters newer than version, and returns each error as the 400 or 406 to answer; nothing is looked up here
// except in the helpers that need the store later (chassis, parent node).
func parseNodeQuery(q url.Values, version int, detailPath bool) (*listQuery, error) {
	lq := &listQuery{detail: detailPath, passOn: url.Values{}}
	known := map[string]bool{"limit": true, "marker": true, "sort_key": true, "sort_dir": true, "fields": true,
		"detail": true, "provision_state": true, "driver": true, "maintenance": true, "associated": true,
		"resource_class": true, "conductor_group": true, "owner": true, "instance_uuid": true, "fault": true,
		"chassis_uuid": true, "conductor": true, "lessee": true, "project": true, "shard": true, "retired": true,
		"description_contains": true, "include_children": true, "parent_node": true, "sharded": true,
		// Ferric's extension (bootc_inventory.go): the nodes whose hosts last reported this booted image.
		"bootc_image": true, "bootc_digest": true}
	for k := range q {
		// An unknown parameter is a 400 rather than ignored: a misspelt filter must not list every node.
		if !known[k] {
			return nil, badRequest("Unknown query parameter %q", k)
		}
	}
	// Version gates come before value checks, so a too-new filter is 406 whatever its value.
	if err := checkFilterGates(q, version); err != nil {
		return nil, err
	}
	if err := parsePaging(q, lq, store.NodeSortKeys()); err != nil {
		return nil, err
	}
	// Filters on fields kept in the node's JSON body are matched by the store too, so paging stays correct.
	if err := parseBodyFilters(q, lq); err != nil {
		return nil, err
	}
	if d := q.Get("detail"); d != "" {
		// /nodes/detail is already detailed; detail= on it is contradictory and refused.
		if detailPath {
			return nil, badRequest("The detail parameter cannot be used with /nodes/detail")
		}
		// detail= arrived in 1.43; an older client using it gets a 400 naming the version.
		if version < 43 {
			return nil, badRequest("The detail parameter requires API version 1.43 or later")
		}
		b, err := toBool("detail", d)
		if err != nil {
			return nil, err
		}
		lq.detail = b
		lq.passOn.Set("detail", d)
	}
	if f := q.Get("fields"); f != "" {
		// The two ask for different shapes; Ironic refuses the pair instead of picking one.
		if lq.detail {
			return nil, badRequest("Can not specify ?detail=True and fields in the same request.")
		}
		fields, err := fieldSet(f, version)
		if err != nil {
			return nil, err
		}
		lq.fields = fields
		lq.passOn.Set("fields", f)
	}
	// Plain string filters: an empty value means "no filter".
	f := &lq.nodeFilter
	for key, dst := range map[string]*string{"provision_state": &f.ProvisionState, "driver": &f.Driver,
		"owner": &f.Owner, "instance_uuid": &f.InstanceUUID} {
		if v := q.Get(key); v != "" {
			*dst = v
			lq.passOn.Set(key, v)
		}
	}
	// Boolean filters accept true/false, 1/0, yes/no, on/off; anything else is a 400 naming the filter.
	for key, dst := range map[string]**bool{"maintenance": &f.Maintenance, "associated": &f.Associated} {
		if v := q.Get(key); v != "" {
			b, err := toBool(key, v)
			if err != nil {
				return nil, err
			}
			*dst = &b
			lq.passOn.Set(key, v)
		}
	}
	// Present but empty is a filter too: ?resource_class= lists the nodes without a resource class
	// (the store compares NULL as "").
	if q.Has("resource_class") {
		v := q.Get("resource_class")
		f.ResourceClass = &v
		lq.passOn.Set("resource_class", v)
	}
	// Same for conductor_group: "" is the default group, a real value to filter on.
	if q.Has("conductor_group") {
		v := q.Get("conductor_group")
		f.ConductorGroup = &v
		lq.passOn.Set("conductor_group", v)
	}
	if v := q.Get("chassis_uuid"); v != "" {
		// Chassis are named by UUID only, so a name here could never match: say so instead of returning nothing.
		if !isUUID(v) {
			return nil, badRequest("Expected UUID for chassis_uuid: %s", v)
		}
		f.ChassisUUID = v
		lq.passOn.Set("chassis_uuid", v)
	}
	// shard, sharded, parent_node and include_children have version gates and defaults of their own.
	if err := parseTreeFilters(q, version, f, lq.passOn); err != nil {
		return nil, err
	}
	return lq, nil
}

// parsePaging reads limit, marker, sort_key and sort_dir into lq, shared by every list. sortKeys are the
// columns the store can order by; sort_key and sort_dir are repeated in the next link, limit and marker are
// not (nextLinks sets them).
func parsePaging(q url.Values, lq *listQuery, sortKeys []string) error {
	lq.opts.Limit = maxLimit
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n <= 0 {
			return badRequest("Invalid limit %q: use a positive integer (at most %d)", l, maxLimit)
		}
		// A limit above max_limit is capped, not refused, as Ironic does.
		if n < maxLimit {
			lq.opts.Limit = n
		}
	}
	if m := q.Get("marker"); m != "" {
		// Markers are UUIDs (the last item of the previous page); a name is refused up front.
		if !isUUID(m) {
			return badRequest("Invalid marker %q: use the UUID of the last item of the previous page", m)
		}
		lq.opts.Marker = m
	}
	if k := q.Get("sort_key"); k != "" {
		ok := false
		for _, s := range sortKeys {
			// Only the store's sortable columns are accepted; the 400 lists them so the client can pick one.
			ok = ok || s == k
		}
		if !ok {
			return badRequest("The sort_key value \"%s\" is an invalid field for sorting; use one of %s", k, fmtList(sortKeys))
		}
		lq.opts.SortKey = k
		lq.passOn.Set("sort_key", k)
	}
	if d := q.Get("sort_dir"); d != "" {
		if d != "asc" && d != "desc" {
			return badRequest("Invalid sort direction: %s. Acceptable values are 'asc' or 'desc'", d)
		}
		lq.opts.SortDir = d
		lq.passOn.Set("sort_dir", d)
	}
	return nil
}

// nextLinks builds Ironic's "next" string and gophercloud's "<kind>_links" when the page is full. A short
// page is the last one, so it gets no link: that is how clients know to stop, as with Ironic.
func (s *Server) nextLinks(out *ordered, kind, path string, lq *listQuery, n int, lastUUID string) {
	if n == 0 || n < lq.opts.Limit {
		return
	}
	v := url.Values{}
	for k, vals := range lq.passOn {
		v[k] = vals
	}
	// The effective limit (capped at max_limit) and the last item's UUID, so page 2 starts right after page 1.
	v.Set("limit", strconv.Itoa(lq.opts.Limit))
	v.Set("marker", lastUUID)
	next := s.cfg.PublicURL + "/v1/" + path + "?" + v.Encode()
	out.set("next", next)
	out.set(kind+"_links", []map[string]string{{"href": next, "rel": "next"}})
}
