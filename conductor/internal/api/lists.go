package api

// The list skeleton every resource's list handler ends in: the page's items under the resource's key and, when
// the page is full, Ironic's "next" link and gophercloud's "<key>_links". A page's items come as one value that
// encodes itself (a *nodeList, or a *recPage from recjson.go), written straight into a pooled buffer.

import "net/http"

// writeList answers a list request: items (n of them) under key ("nodes", "ports", ...) and, when the page is
// full, the next links at key (or key/detail) after last, the UUID of the page's last item.
func (s *Server) writeList(w http.ResponseWriter, key string, detail bool, lq *listQuery, items pyAppender, n int,
	last string) {
	path := key
	if detail {
		path = key + "/detail"
	}
	s.writeListAt(w, key, path, lq, items, n, last)
}

// writeListAt is writeList with the path of the next link given (volume lists name /v1/volume/<key>).
func (s *Server) writeListAt(w http.ResponseWriter, key, path string, lq *listQuery, items pyAppender, n int,
	last string) {
	out := newOrdered()
	out.set(key, items)
	if n > 0 {
		s.nextLinks(out, key, path, lq, n, last)
	}
	p := s.nodeEnc.getBuf()
	defer s.nodeEnc.putBuf(p)
	*p = encodePy(*p, out)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	w.Write(*p)
}
