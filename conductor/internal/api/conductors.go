package api

// The conductors resource (Ironic API 1.49): GET /v1/conductors and GET /v1/conductors/{hostname}: the
// conductors registered in the database (cluster package), alive when online and heartbeated within
// --conductor-dead-after, as Ironic's; without a cluster, this process alone. The list
// shows hostname, conductor_group and alive; ?detail=true and the single GET add drivers, created_at and
// updated_at; ?fields picks among them, as Ironic.

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/ferric-metal/ferric/conductor/internal/cluster"
	"github.com/ferric-metal/ferric/conductor/internal/store"
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

// conductorsOf lists the conductors by host name: the registered ones (alive or not) with a cluster, else this
// process alone, alive while it answers, created when its API started.
func (s *Server) conductorsOf(started time.Time) []cluster.Member {
	if s.cfg.Cluster != nil {
		return s.cfg.Cluster.Members()
	}
	var drivers []string
	for _, h := range s.eng.Registry().HardwareTypes() {
		drivers = append(drivers, h.Name)
	}
	return []cluster.Member{{Conductor: store.Conductor{Hostname: s.eng.Host(), Drivers: drivers, Online: true,
		CreatedAt: started, UpdatedAt: nowUTC()}, Alive: true}}
}

// renderConductor renders one conductor with the given fields (links always, as Ironic).
func (s *Server) renderConductor(m cluster.Member, fields []string) *ordered {
	drivers := m.Drivers
	if drivers == nil {
		drivers = []string{}
	}
	created, updated := m.CreatedAt.UTC(), m.UpdatedAt.UTC()
	values := map[string]any{"hostname": m.Hostname, "conductor_group": m.ConductorGroup, "alive": m.Alive,
		"drivers": drivers, "created_at": isoTime(created), "updated_at": isoTime(updated),
		"links": links(s.cfg.PublicURL, "conductors", m.Hostname, "")}
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
	page, err := conductorPage(s.conductorsOf(started), q)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	items := []any{}
	for _, m := range page {
		items = append(items, s.renderConductor(m, fields))
	}
	body := map[string]any{"conductors": items}
	if lim, _ := strconv.Atoi(q.Get("limit")); lim > 0 && len(page) == lim {
		next := url.Values{"limit": {q.Get("limit")}, "marker": {page[len(page)-1].Hostname}}
		if q.Get("sort_dir") != "" {
			next.Set("sort_dir", q.Get("sort_dir"))
		}
		body["next"] = s.cfg.PublicURL + "/v1/conductors?" + next.Encode()
	}
	writeJSON(w, http.StatusOK, body)
}

// getConductor shows this conductor with every field (or ?fields); any other hostname is Ironic's 404.
func (s *Server) getConductor(w http.ResponseWriter, r *http.Request, started time.Time) {
	if err := requireVersion(r, conductorsVersion); err != nil {
		s.writeError(w, r, err)
		return
	}
	host := mux.Vars(r)["hostname"]
	i := slices.IndexFunc(s.conductorsOf(started), func(m cluster.Member) bool { return m.Hostname == host })
	if i < 0 {
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
	writeJSON(w, http.StatusOK, s.renderConductor(s.conductorsOf(started)[i], fields))
}

// conductorPage orders the conductors by host name (sort_dir desc reverses it; hostname is the one sort key
// offered besides the timestamps, which sort the same way for a list this short), starts after marker and stops
// at limit, as Ironic pages the conductors table.
func conductorPage(all []cluster.Member, q url.Values) ([]cluster.Member, error) {
	all = slices.Clone(all)
	key := q.Get("sort_key")
	less := func(a, b cluster.Member) int { return strings.Compare(a.Hostname, b.Hostname) }
	switch key {
	case "", "hostname", "id":
	case "created_at":
		less = func(a, b cluster.Member) int { return a.CreatedAt.Compare(b.CreatedAt) }
	case "updated_at":
		less = func(a, b cluster.Member) int { return a.UpdatedAt.Compare(b.UpdatedAt) }
	case "conductor_group":
		less = func(a, b cluster.Member) int { return strings.Compare(a.ConductorGroup, b.ConductorGroup) }
	default:
		return nil, badRequest("The sort_key value %s is an invalid field for sorting", key)
	}
	slices.SortStableFunc(all, less)
	if q.Get("sort_dir") == "desc" {
		slices.Reverse(all)
	}
	if m := q.Get("marker"); m != "" {
		i := slices.IndexFunc(all, func(c cluster.Member) bool { return c.Hostname == m })
		all = all[i+1:] // a marker naming no conductor (i = -1) starts from the top
	}
	if lim, err := strconv.Atoi(q.Get("limit")); err == nil && lim > 0 && lim < len(all) {
		all = all[:lim]
	}
	return all, nil
}
