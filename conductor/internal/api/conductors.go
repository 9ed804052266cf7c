package api

// The conductors resource (Ironic API 1.49): GET /v1/conductors and GET /v1/conductors/{hostname}. A Ferric
// process is one conductor (API and engine in one), so the collection has one member, this process: alive while
// it answers, created when its API started, updated now (its heartbeat is the request being served). The list
// shows hostname, conductor_group and alive; ?detail=true and the single GET add drivers, created_at and
// updated_at; ?fields picks among them, as Ironic.

import (
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gorilla/mux"
)

// conductorsVersion is the microversion that exposes conductors.
const conductorsVersion = 49

// conductorFields are the fields of a conductor in Ironic's order; the first three are the list's default.
func conductorFields() []string {
	return []string{"hostname", "conductor_group", "alive", "drivers", "created_at", "updated_at", "links"}
}

// conductorsRoutes registers the collection and the single conductor; started is this API's start time.
func (s *Server) conductorsRoutes(v *mux.Router, started time.Time) {
	// With and without the trailing slash: python-ironicclient lists GET /v1/conductors/?detail=True.
	for _, p := range []string{"/conductors", "/conductors/"} {
		v.HandleFunc(p, func(w http.ResponseWriter, r *http.Request) { s.listConductors(w, r, started) }).
			Methods(http.MethodGet)
	}
	v.HandleFunc("/conductors/{hostname}", func(w http.ResponseWriter, r *http.Request) { s.getConductor(w, r, started) }).
		Methods(http.MethodGet)
}

// renderConductor renders this conductor with the given fields (links always, as Ironic).
func (s *Server) renderConductor(started time.Time, fields []string) *ordered {
	var drivers []string
	for _, h := range s.eng.Registry().HardwareTypes() {
		drivers = append(drivers, h.Name)
	}
	// conductor_group is "": Ferric has no conductor groups yet. drivers are the hardware types it serves.
	values := map[string]any{"hostname": s.eng.Host(), "conductor_group": "", "alive": true, "drivers": drivers,
		"created_at": isoTime(started), "updated_at": isoTime(nowUTC()),
		"links": links(s.cfg.PublicURL, "conductors", s.eng.Host(), "")}
	o := newOrdered()
	for _, k := range conductorFields() {
		if k == "links" || slices.Contains(fields, k) {
			o.set(k, values[k])
		}
	}
	return o
}

// conductorFieldsOf reads ?fields (nil when absent) and refuses unknown names with Ironic's message.
func conductorFieldsOf(r *http.Request) ([]string, error) {
	raw, ok := r.URL.Query()["fields"]
	if !ok {
		return nil, nil
	}
	var fields []string
	// Ironic's string_list: repeated or comma-separated, blanks skipped.
	for _, f := range strings.Split(strings.Join(raw, ","), ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		if !slices.Contains(conductorFields(), f) {
			return nil, badRequest("Field(s) \"%s\" are not valid", f)
		}
		fields = append(fields, f)
	}
	return fields, nil
}

// listConductors lists this conductor, honouring detail, fields, limit, marker and sort as far as one member
// can: a marker naming it ends the list.
func (s *Server) listConductors(w http.ResponseWriter, r *http.Request, started time.Time) {
	if err := requireVersion(r, conductorsVersion); err != nil {
		s.writeError(w, r, err)
		return
	}
	q := r.URL.Query()
	fields, err := conductorFieldsOf(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	detail := false
	if d := q.Get("detail"); d != "" {
		if detail, err = toBool("detail", d); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	if detail && fields != nil {
		s.writeError(w, r, badRequest("Can not specify ?detail=True and fields in the same request."))
		return
	}
	if k := q.Get("sort_key"); k == "alive" || k == "drivers" {
		s.writeError(w, r, badRequest("The sort_key value %s is an invalid field for sorting", k))
		return
	}
	switch {
	case detail:
		fields = conductorFields()
	case fields == nil:
		fields = conductorFields()[:3]
	}
	// One member: a page of any limit holds it, and a marker naming it (the last) leaves nothing after it.
	items := []any{}
	if q.Get("marker") != s.eng.Host() {
		items = append(items, s.renderConductor(started, fields))
	}
	writeJSON(w, http.StatusOK, map[string]any{"conductors": items})
}

// getConductor shows this conductor with every field (or ?fields); any other hostname is Ironic's 404.
func (s *Server) getConductor(w http.ResponseWriter, r *http.Request, started time.Time) {
	if err := requireVersion(r, conductorsVersion); err != nil {
		s.writeError(w, r, err)
		return
	}
	host := mux.Vars(r)["hostname"]
	if host != s.eng.Host() {
		s.writeError(w, r, notFound("Conductor %s could not be found.", host))
		return
	}
	fields, err := conductorFieldsOf(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if fields == nil {
		fields = conductorFields()
	}
	writeJSON(w, http.StatusOK, s.renderConductor(started, fields))
}
