package api

// Node children (Ironic API 1.83) and shards (1.82): GET /v1/nodes/{node}/children lists the UUIDs of a node's
// children; GET /v1/shards counts nodes per shard; node lists take ?shard= (a comma-separated list), ?sharded=,
// ?parent_node= and ?include_children= as Ironic does — and, at every version, leave out nodes that have a parent
// unless include_children or parent_node asks for them.

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/gorilla/mux"

	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// Microversions of shards and of parent/child nodes.
const (
	shardsVersion   = 82
	childrenVersion = 83
)

// childrenRoutes registers the children and shards endpoints.
func (s *Server) childrenRoutes(v *mux.Router) {
	v.HandleFunc("/nodes/{node}/children", s.listChildren).Methods(http.MethodGet)
	v.HandleFunc("/shards", s.listShards).Methods(http.MethodGet)
	// Ironic has no single shard resource: GET /v1/shards/{name} is a 404 whatever the name.
	v.HandleFunc("/shards/{shard}", s.getShard).Methods(http.MethodGet)
}

// errVersionTooLow is Ironic's 406 for a filter newer than the request's microversion.
func errVersionTooLow(minor int) error {
	return &httpError{http.StatusNotAcceptable, fmt.Sprintf(
		"Request not acceptable. The minimal required API version should be 1.%d", minor)}
}

// parseTreeFilters reads shard, sharded, parent_node and include_children into f (see store.NodeFilter).
func parseTreeFilters(q url.Values, version int, f *store.NodeFilter, passOn url.Values) error {
	if q.Has("shard") || q.Has("sharded") {
		if version < shardsVersion {
			return errVersionTooLow(shardsVersion)
		}
	}
	if q.Has("parent_node") || q.Has("include_children") {
		if version < childrenVersion {
			return errVersionTooLow(childrenVersion)
		}
	}
	if q.Has("shard") {
		v := q.Get("shard")
		for _, sh := range strings.Split(v, ",") {
			if sh = strings.TrimSpace(sh); sh != "" {
				f.Shards = append(f.Shards, sh)
			}
		}
		passOn.Set("shard", v)
	}
	if q.Has("sharded") {
		b, err := toBool("sharded", q.Get("sharded"))
		if err != nil {
			return err
		}
		f.Sharded = &b
		passOn.Set("sharded", q.Get("sharded"))
	}
	if q.Has("include_children") {
		b, err := toBool("include_children", q.Get("include_children"))
		if err != nil {
			return err
		}
		f.IncludeChildren = b
		passOn.Set("include_children", q.Get("include_children"))
	}
	if v := q.Get("parent_node"); v != "" {
		f.ParentNode = v
		passOn.Set("parent_node", v)
	}
	f.HideChildren = true
	return nil
}

// listChildren answers {"children": [uuid, ...], "links": ...}: every child of the node, unpaged, as Ironic.
func (s *Server) listChildren(w http.ResponseWriter, r *http.Request) {
	if err := requireVersion(r, childrenVersion); err != nil {
		s.writeError(w, r, err)
		return
	}
	n, err := s.getNodeOr404(r, mux.Vars(r)["node"])
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	kids, err := s.eng.Store().ListNodes(r.Context(), store.NodeFilter{ParentNode: n.UUID}, store.ListOptions{})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	uuids := make([]string, 0, len(kids))
	for _, k := range kids {
		uuids = append(uuids, k.UUID)
	}
	o := newOrdered()
	o.set("children", uuids)
	// Ironic's links here is one link object (not a list) pointing at the node list filtered by parent.
	o.set("links", map[string]string{"href": s.cfg.PublicURL + "/v1/nodes?parent_node=" + n.UUID, "rel": "children"})
	writeJSON(w, http.StatusOK, o)
}

// listShards answers {"shards": [{"name": ..., "count": ...}]}.
func (s *Server) listShards(w http.ResponseWriter, r *http.Request) {
	if err := requireVersion(r, shardsVersion); err != nil {
		s.writeError(w, r, err)
		return
	}
	shards, err := s.eng.Store().ListShards(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	o := newOrdered()
	o.set("shards", shards)
	writeJSON(w, http.StatusOK, o)
}

// getShard is Ironic's explicit 404 for a single shard.
func (s *Server) getShard(w http.ResponseWriter, r *http.Request) {
	s.writeError(w, r, notFound("The resource could not be found."))
}

// checkParentNode validates a parent_node set by a create or PATCH (before: the value it had) and stores the
// parent's UUID, as Ironic does when the client names the parent by name. An unchanged value is not looked up.
func (s *Server) checkParentNode(r *http.Request, n *store.Node, before string) error {
	if n.ParentNode == before || n.ParentNode == "" {
		return nil
	}
	uuid, err := s.eng.ResolveParentNode(r.Context(), n, n.ParentNode)
	if err != nil {
		return err
	}
	n.ParentNode = uuid
	return nil
}
