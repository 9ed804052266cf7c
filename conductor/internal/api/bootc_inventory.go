package api

// The operator's view of image-mode hosts (Ferric's extension, normal API auth): a node's last bootc report and
// its reporter credential's state, revocation and rotation of that credential, and the fleet's booted images with
// their nodes and a stale flag. The credential and its hash never appear in any answer.

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/gorilla/mux"

	"github.com/ferric-metal/ferric/bootchost"
	"github.com/ferric-metal/ferric/conductor/internal/fleet"
	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// bootcInventoryRoutes registers the operator's image-mode endpoints.
func (s *Server) bootcInventoryRoutes(v *mux.Router) {
	v.HandleFunc("/nodes/{node}/bootc", s.getNodeBootc).Methods(http.MethodGet)
	v.HandleFunc("/nodes/{node}/bootc/credential", s.revokeBootcCredential).Methods(http.MethodDelete)
	v.HandleFunc("/nodes/{node}/bootc/credential/rotate", s.rotateBootcCredential).Methods(http.MethodPost)
	v.HandleFunc("/bootc/images", s.listBootcImages).Methods(http.MethodGet)
}

// nodeReporter finds the node and its reporter; a node without one is a 404 that says how to get one.
func (s *Server) nodeReporter(r *http.Request) (*store.Node, *store.BootcReporter, error) {
	n, err := s.getNodeOr404(r, mux.Vars(r)["node"])
	if err != nil {
		return nil, nil, err
	}
	rep, err := s.eng.Store().BootcReporter(r.Context(), n.UUID)
	if errors.Is(err, store.ErrNotFound) {
		return n, nil, notFound("Node %s has no image-mode reporter: deploy it with the bootc deploy interface and a "+
			"config drive given as a dict or as gzip+base64 (not a URL), from an image that runs ferric-hostd.", n.UUID)
	}
	return n, rep, err
}

// getNodeBootc serves GET /v1/nodes/{node}/bootc: the last report, its age, and the credential's state.
func (s *Server) getNodeBootc(w http.ResponseWriter, r *http.Request) {
	n, rep, err := s.nodeReporter(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if rep.Report == nil {
		s.writeError(w, r, notFound("Node %s has a reporter credential since %s but its host never reported: check that "+
			"its image runs ferric-hostd and that the host reaches the conductor's API.", n.UUID, isoTime(rep.CreatedAt)))
		return
	}
	// Field order is fixed (ordered) so that the CLI and humans reading curl output see the summary first and the
	// raw status, the longest part, last.
	out := newOrdered()
	out.set("node_uuid", n.UUID)
	out.set("reported_at", isoTime(rep.Report.ReportedAt))
	// The age is computed here, not by clients, so that a client with a skewed clock still sees a silent host.
	out.set("age_seconds", max(0, int64(time.Since(rep.Report.ReportedAt)/time.Second)))
	out.set("hostd_version", rep.Report.HostdVersion)
	out.set("boot_id", rep.Report.BootID)
	out.set("follows", strOrNil(rep.Report.SpecRef))
	out.set("incompatible", rep.Report.Incompatible)
	// The summary reads the stored status again; it was valid when stored, so an error leaves the summary empty.
	if h, err := bootchost.Parse(rep.Report.Status); err == nil {
		out.set("booted", entrySummary(h.Status.Booted))
		out.set("staged", entrySummary(h.Status.Staged))
		out.set("rollback", entrySummary(h.Status.Rollback))
		out.set("rollback_queued", h.Status.RollbackQueued)
	}
	out.set("status", rep.Report.Status)
	out.set("credential", credentialState(rep))
	writeJSON(w, http.StatusOK, out)
}

// entrySummary is one deployment in brief: image, digest, version, build time and flags; nil for none.
func entrySummary(e *bootchost.BootEntry) any {
	if e == nil || e.Image == nil {
		return nil
	}
	// Image, digest and version are what operators compare across hosts; the rest stays in the raw status.
	o := newOrdered()
	o.set("image", e.Image.Image.Image)
	o.set("digest", e.Image.ImageDigest)
	o.set("version", e.Image.Version)
	if e.Image.Timestamp != nil {
		o.set("timestamp", isoTime(*e.Image.Timestamp))
	} else {
		o.set("timestamp", nil)
	}
	o.set("incompatible", e.Incompatible)
	o.set("pinned", e.Pinned)
	return o
}

// credentialState is what an operator may know of the credential: its dates and flags, never it or its hash.
func credentialState(rep *store.BootcReporter) *ordered {
	o := newOrdered()
	o.set("created_at", isoTime(rep.CreatedAt))
	if rep.RotatedAt != nil {
		o.set("rotated_at", isoTime(*rep.RotatedAt))
	} else {
		o.set("rotated_at", nil)
	}
	o.set("revoked", rep.Revoked)
	o.set("rotate_requested", rep.RotateRequested)
	return o
}

// revokeBootcCredential serves DELETE /v1/nodes/{node}/bootc/credential: the host's reporter is refused from
// now on (204); only a new deploy gives it a credential again.
func (s *Server) revokeBootcCredential(w http.ResponseWriter, r *http.Request) {
	n, _, err := s.nodeReporter(r)
	// Revoking twice is not an error: the operator's intent (the host is refused) holds either way.
	if err == nil {
		err = s.eng.Store().RevokeBootcCredential(r.Context(), n.UUID)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.log.WithField("node", n.UUID).Info("reporter credential revoked")
	w.WriteHeader(http.StatusNoContent)
}

// rotateBootcCredential serves POST /v1/nodes/{node}/bootc/credential/rotate: the reporter is told to rotate at
// its next poll (202); a revoked credential cannot rotate (409).
func (s *Server) rotateBootcCredential(w http.ResponseWriter, r *http.Request) {
	n, rep, err := s.nodeReporter(r)
	if err == nil && rep.Revoked {
		err = conflict("The reporter credential of node %s is revoked; deploy the node again to give it a new one.", n.UUID)
	}
	if err == nil {
		err = s.eng.Store().RequestBootcRotation(r.Context(), n.UUID)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

// imagesQuery is the parsed query of GET /v1/bootc/images.
type imagesQuery struct {
	lq      *listQuery
	digest  string
	refresh bool
}

// parseImagesQuery reads limit and marker (the nodes of each image), digest (one image) and refresh.
func parseImagesQuery(q url.Values) (*imagesQuery, error) {
	for k := range q {
		switch k {
		case "limit", "marker", "digest", "refresh":
		default:
			return nil, badRequest("Unknown query parameter %q; use limit, marker, digest or refresh", k)
		}
	}
	iq := &imagesQuery{lq: &listQuery{passOn: url.Values{}}, digest: q.Get("digest")}
	// No sort keys: nodes are listed by UUID, which is what the marker pages on.
	if err := parsePaging(q, iq.lq, nil); err != nil {
		return nil, err
	}
	// A marker names a node of one image's list: it pages that image only.
	if iq.lq.opts.Marker != "" && iq.digest == "" {
		return nil, badRequest("marker pages the nodes of one image: give digest=<the image's digest> with it")
	}
	if v := q.Get("refresh"); v != "" {
		b, err := toBool("refresh", v)
		if err != nil {
			return nil, err
		}
		iq.refresh = b
	}
	return iq, nil
}

// listBootcImages serves GET /v1/bootc/images: each booted digest with its references, node count, a page of its
// nodes and whether the tags its hosts follow now resolve to another digest.
func (s *Server) listBootcImages(w http.ResponseWriter, r *http.Request) {
	iq, err := parseImagesQuery(r.URL.Query())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	imgs, err := s.eng.Store().ListBootcImages(r.Context(), iq.digest)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	// An empty fleet answers an empty list (never null), as Ironic's lists do.
	out := make([]any, 0, len(imgs))
	for _, im := range imgs {
		o, err := s.imageEntry(r, im, iq)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		out = append(out, o)
	}
	writeJSON(w, http.StatusOK, map[string]any{"images": out})
}

// imageEntry renders one image: its page of nodes (with a next link when the page is full) and its stale check.
func (s *Server) imageEntry(r *http.Request, im store.BootcImage, iq *imagesQuery) (*ordered, error) {
	ctx := r.Context()
	page, err := s.eng.Store().ListBootcNodes(ctx, im.Digest, iq.lq.opts)
	if err != nil {
		return nil, err
	}
	nodes := make([]any, 0, len(page))
	for _, n := range page {
		nodes = append(nodes, map[string]any{"uuid": n.UUID, "name": strOrNil(n.Name)})
	}
	// The stale check needs every followed reference of the image, not just those of this page's nodes.
	all, err := s.eng.Store().ListBootcNodes(ctx, im.Digest, store.ListOptions{})
	if err != nil {
		return nil, err
	}
	followed, stale, reason := s.staleCheck(r, im.Digest, all, iq.refresh)
	o := newOrdered()
	o.set("digest", im.Digest)
	o.set("references", im.References)
	o.set("node_count", im.NodeCount)
	o.set("stale", stale)
	o.set("stale_reason", strOrNil(reason))
	o.set("followed", followed)
	o.set("nodes", nodes)
	// A full page may have more behind it: the next link pages this image alone (digest=), as a marker names a
	// node of one image's list.
	if len(page) > 0 && len(page) == iq.lq.opts.Limit {
		v := url.Values{"digest": {im.Digest}, "limit": {strconv.Itoa(iq.lq.opts.Limit)}, "marker": {page[len(page)-1].UUID}}
		o.set("next", s.cfg.PublicURL+"/v1/bootc/images?"+v.Encode())
	}
	return o, nil
}

// staleCheck runs the fleet's stale check of the image (fleet.CheckImage, shared with the web page) and renders
// its followed references; the stale flag is nil (JSON null) when unknown, with the reason.
func (s *Server) staleCheck(r *http.Request, digest string, nodes []store.BootcNode, refresh bool) ([]any, any, string) {
	c := fleet.CheckImage(r.Context(), s.eng.Store(), s.cfg.Bootc.Stale, digest, nodes, refresh)
	followed := make([]any, 0, len(c.Followed))
	for _, f := range c.Followed {
		o := newOrdered()
		o.set("reference", f.Ref)
		o.set("resolved_digest", strOrNil(f.Digest))
		o.set("checked_at", isoTime(f.CheckedAt))
		if f.Err != "" {
			o.set("stale", nil)
			o.set("reason", f.Err)
		} else {
			o.set("stale", *f.Stale)
		}
		followed = append(followed, o)
	}
	if c.Stale == nil {
		return followed, nil, c.Reason
	}
	return followed, *c.Stale, c.Reason
}
