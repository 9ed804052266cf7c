package api

// Node history (Ironic API 1.78): GET /v1/nodes/{node}/history lists the events the conductor recorded about a
// node (engine/history.go says which), oldest first by default, with limit/marker/sort_key/sort_dir and ?detail;
// GET /v1/nodes/{node}/history/{event} shows one event in full. Records are read-only.

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"

	"github.com/gorilla/mux"

	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// historyVersion is the microversion that introduced node history.
const historyVersion = 78

// maxEventSummary is the longest event text a list without detail shows (Ironic truncates to 251 + "...").
const maxEventSummary = 255

// historyRoutes registers the node history endpoints.
func (s *Server) historyRoutes(v *mux.Router) {
	v.HandleFunc("/nodes/{node}/history", s.listHistory).Methods(http.MethodGet)
	v.HandleFunc("/nodes/{node}/history/{event}", s.getHistoryEvent).Methods(http.MethodGet)
}

// historyView renders one event as Ironic does: uuid, created_at, severity and event (truncated) in a list, plus
// event_type, conductor and user with detail; a self link to the event under the node's UUID.
func (s *Server) historyView(nodeUUID string, h *store.HistoryEvent, detail bool) *ordered {
	o := newOrdered()
	o.set("uuid", h.UUID)
	o.set("created_at", isoTime(h.CreatedAt))
	o.set("severity", h.Severity)
	event := h.Event
	if detail {
		o.set("event_type", h.EventType)
		o.set("conductor", h.Conductor)
		o.set("user", strOrNil(h.User))
	} else if len(event) > maxEventSummary {
		event = event[:maxEventSummary-4] + "..."
	}
	o.set("event", event)
	// Ironic gives a history event a self link only (no bookmark), under the node's UUID whatever the client
	// named it by.
	o.set("links", links(s.cfg.PublicURL, "nodes", nodeUUID, "history/"+h.UUID)[:1])
	return o
}

// parseHistoryQuery reads ?detail and the paging arguments; history is sorted by created_at unless told.
func parseHistoryQuery(q url.Values) (*listQuery, error) {
	lq := &listQuery{passOn: url.Values{}}
	for k := range q {
		switch k {
		case "detail", "limit", "marker", "sort_key", "sort_dir":
		default:
			return nil, badRequest("Unknown query parameter %q; node history takes detail, limit, marker, sort_key and sort_dir", k)
		}
	}
	if err := parsePaging(q, lq, store.HistorySortKeys()); err != nil {
		return nil, err
	}
	if lq.opts.SortKey == "" {
		lq.opts.SortKey = "created_at"
	}
	if d := q.Get("detail"); d != "" {
		b, err := toBool("detail", d)
		if err != nil {
			return nil, err
		}
		lq.detail = b
		lq.passOn.Set("detail", d)
	}
	return lq, nil
}

// listHistory answers {"history": [...]} and, when the page is full, "next".
func (s *Server) listHistory(w http.ResponseWriter, r *http.Request) {
	if err := requireVersion(r, historyVersion); err != nil {
		s.writeError(w, r, err)
		return
	}
	ident := mux.Vars(r)["node"]
	lq, err := parseHistoryQuery(r.URL.Query())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	nodeUUID, events, err := s.eng.History(r.Context(), ident, lq.opts)
	if err != nil {
		s.writeError(w, r, lockedOr404(ident, err))
		return
	}
	list := make([]*ordered, 0, len(events))
	for _, h := range events {
		list = append(list, s.historyView(nodeUUID, h, lq.detail))
	}
	out := newOrdered()
	out.set("history", list)
	// A full page may have a successor: "next" repeats detail and the sort, as nextLinks does for nodes. Ironic's
	// own next link here also repeats its internal field list and marker object; clients read only limit and
	// marker from it, so Ferric leaves those out.
	if n := len(events); n > 0 && n == lq.opts.Limit {
		v := url.Values{}
		for k, vals := range lq.passOn {
			v[k] = vals
		}
		v.Set("limit", strconv.Itoa(lq.opts.Limit))
		v.Set("marker", events[n-1].UUID)
		out.set("next", s.cfg.PublicURL+"/v1/nodes/"+url.PathEscape(ident)+"/history?"+v.Encode())
	}
	writeJSON(w, http.StatusOK, out)
}

// getHistoryEvent answers one event in full; an event of another node is not found.
func (s *Server) getHistoryEvent(w http.ResponseWriter, r *http.Request) {
	if err := requireVersion(r, historyVersion); err != nil {
		s.writeError(w, r, err)
		return
	}
	vars := mux.Vars(r)
	nodeUUID, h, err := s.eng.HistoryEvent(r.Context(), vars["node"], vars["event"])
	if err != nil {
		// The node was found (its UUID came back), so the missing thing is the event: Ironic's
		// NodeHistoryNotFound message, not the node's.
		if nodeUUID != "" && errors.Is(err, store.ErrNotFound) {
			err = notFound("Node history record %s could not be found.", vars["event"])
		}
		s.writeError(w, r, lockedOr404(vars["node"], err))
		return
	}
	writeJSON(w, http.StatusOK, s.historyView(nodeUUID, h, true))
}
