package api

// The node read path's encoder (issue 15's speed targets: GET one node, GET /v1/nodes and /v1/nodes/detail over
// 1,000 nodes). It writes a node straight into the response buffer from a field table built once per server,
// instead of building renderNode's ordered map (a map insert per field, a map per link, a masked copy of every
// JSON field) and encoding it afterwards. The bytes are exactly encodePy(renderNode(...)): TestNodeEncoderBytes
// compares the two on varied nodes, and renderNode stays the reference (and the document create/patch answer).

import (
	"net/http"
	"sort"
	"strings"

	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// encField is one node field: its place in Ironic's order, the microversion that introduced it, its key
// already encoded with Python's ": " separator, and how to write its value.
type encField struct {
	name  string
	since int
	key   []byte
	put   func(b []byte, v *nodeView) []byte
}

// nodeEncoder holds the field table and a few response buffers for reuse (a detailed page of 1,000 nodes is
// a few MB: growing a fresh buffer for each request cost more than writing it). The buffers wait in a channel
// rather than a sync.Pool, which the garbage collector empties, and large answers collect garbage often.
type nodeEncoder struct {
	fields []encField
	index  map[string]int
	bufs   chan *[]byte
}

// Buffer reuse bounds: how many wait, and the largest kept (larger answers let theirs go).
const (
	keptBufs   = 4
	maxKeptBuf = 8 << 20
)

// newNodeEncoder builds the table from nodeFields, with direct writers for the values renderNode builds as
// maps: links (two small maps each) and the masked JSON fields (a copy each).
func newNodeEncoder() *nodeEncoder {
	e := &nodeEncoder{index: map[string]int{}, bufs: make(chan *[]byte, keptBufs)}
	masked := map[string]func(n *store.Node) map[string]any{
		"driver_info":          func(n *store.Node) map[string]any { return n.DriverInfo },
		"driver_internal_info": func(n *store.Node) map[string]any { return n.DriverInternalInfo },
		"instance_info":        func(n *store.Node) map[string]any { return n.InstanceInfo },
	}
	subs := map[string]string{"links": "", "ports": "ports", "states": "states", "portgroups": "portgroups",
		"volume": "volume"}
	for _, f := range nodeFields() {
		ef := encField{name: f.name, since: f.since, key: append(appendString(nil, f.name), ": "...)}
		get := f.get
		ef.put = func(b []byte, v *nodeView) []byte { return encodePy(b, get(v)) }
		if m, ok := masked[f.name]; ok {
			ef.put = func(b []byte, v *nodeView) []byte { return appendMasked(b, m(v.n), 0) }
		}
		if sub, ok := subs[f.name]; ok {
			ef.put = func(b []byte, v *nodeView) []byte { return appendLinks(b, v.base, "nodes", v.n.UUID, sub) }
		}
		e.index[f.name] = len(e.fields)
		e.fields = append(e.fields, ef)
	}
	return e
}

// appendNode writes the node as renderNode renders it: fields nil means every field of the version, else
// those fields in the caller's order.
func (e *nodeEncoder) appendNode(b []byte, v *nodeView, version int, fields []string) []byte {
	b = append(b, '{')
	first := true
	put := func(f *encField) {
		if !first {
			b = append(b, ", "...)
		}
		first = false
		b = append(b, f.key...)
		b = f.put(b, v)
	}
	if fields != nil {
		// A field asked twice (fields=name,name; fields=links) is written once, at its first place, as
		// renderNode's ordered object keeps it.
		var onStack [128]bool
		seen := onStack[:]
		if len(e.fields) > len(seen) {
			seen = make([]bool, len(e.fields))
		}
		for _, name := range fields {
			if i, ok := e.index[name]; ok && !seen[i] {
				seen[i] = true
				put(&e.fields[i])
			}
		}
	} else {
		for i := range e.fields {
			if e.fields[i].since <= version {
				put(&e.fields[i])
			}
		}
	}
	return append(b, '}')
}

// getBuf and putBuf lend a response buffer.
func (e *nodeEncoder) getBuf() *[]byte {
	select {
	case p := <-e.bufs:
		return p
	default:
		b := make([]byte, 0, 4096)
		return &b
	}
}

func (e *nodeEncoder) putBuf(p *[]byte) {
	if cap(*p) > maxKeptBuf {
		return
	}
	*p = (*p)[:0]
	select {
	case e.bufs <- p:
	default: // enough wait already
	}
}

// writeNode answers with one node, as writeJSON(w, code, s.renderNode(n, version, fields)) would.
func (s *Server) writeNode(w http.ResponseWriter, code int, n *store.Node, version int, fields []string) {
	p := s.nodeEnc.getBuf()
	defer s.nodeEnc.putBuf(p)
	v := &nodeView{n: n, base: s.cfg.PublicURL, host: s.eng.Host()}
	*p = s.nodeEnc.appendNode(*p, v, version, fields)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(*p)
}

// nodeList is a page of nodes for writeList: encodePy writes it as the list of rendered nodes.
type nodeList struct {
	enc     *nodeEncoder
	nodes   []*store.Node
	version int
	fields  []string
	base    string
	host    string
}

func (l *nodeList) appendPy(b []byte) []byte {
	b = append(b, '[')
	v := &nodeView{base: l.base, host: l.host}
	for i, n := range l.nodes {
		if i > 0 {
			b = append(b, ", "...)
		}
		v.n = n
		b = l.enc.appendNode(b, v, l.version, l.fields)
	}
	return append(b, ']')
}

// appendLinks writes links(base, kind, id, sub) as encodePy would: two objects with keys href and rel.
func appendLinks(b []byte, base, kind, id, sub string) []byte {
	href := func(b []byte, v1 bool) []byte {
		b = append(b, '"')
		b = appendEscaped(b, base)
		if v1 {
			b = append(b, "/v1"...)
		}
		b = append(b, '/')
		b = appendEscaped(b, kind)
		b = append(b, '/')
		b = appendEscaped(b, id)
		if sub != "" {
			b = append(b, '/')
			b = appendEscaped(b, sub)
		}
		return append(b, '"')
	}
	b = append(b, `[{"href": `...)
	b = href(b, true)
	b = append(b, `, "rel": "self"}, {"href": `...)
	b = href(b, false)
	return append(b, `, "rel": "bookmark"}]`...)
}

// appendMasked writes maskDepth(m, depth) as encodePy would, without building the masked copy.
func appendMasked(b []byte, m map[string]any, depth int) []byte {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = appendString(b, k)
		b = append(b, ": "...)
		v := m[k]
		lk := strings.ToLower(k)
		secret := depth == 0 && (lk == "configdrive" || lk == "image_url")
		for _, s := range secretMarkers() {
			if strings.Contains(lk, s) {
				secret = true
			}
		}
		if secret && v != nil {
			b = append(b, `"******"`...)
			continue
		}
		b = appendMaskedValue(b, v, depth+1)
	}
	return append(b, '}')
}

// appendMaskedValue writes maskValue(v, depth) as encodePy would.
func appendMaskedValue(b []byte, v any, depth int) []byte {
	if depth > maxMaskDepth {
		switch v.(type) {
		case map[string]any, []any:
			return append(b, `"******"`...)
		}
		return encodePy(b, v)
	}
	switch x := v.(type) {
	case map[string]any:
		return appendMasked(b, x, depth)
	case []any:
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ", "...)
			}
			b = appendMaskedValue(b, e, depth+1)
		}
		return append(b, ']')
	case []map[string]any:
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ", "...)
			}
			b = appendMasked(b, e, depth+1)
		}
		return append(b, ']')
	}
	return encodePy(b, v)
}
