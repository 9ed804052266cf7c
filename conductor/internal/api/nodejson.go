package api

// The node read path's encoder (issue 15's speed targets: GET one node, GET /v1/nodes and /v1/nodes/detail over
// 1,000 nodes). It writes a node straight into the response buffer from a field table built once per server,
// instead of building renderNode's ordered map (a map insert per field, a map per link, a masked copy of every
// JSON field) and encoding it afterwards. The bytes are exactly encodePy(renderNode(...)): TestNodeEncoderBytes
// compares the two on varied nodes, and renderNode stays the reference (and the document create/patch answer).

import (
	"net/http"
	"sort"

	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// nodeEncoder holds the node field table (recjson.go's encoder, in renderNode's asked-order mode) and a few
// response buffers for reuse (a detailed page of 1,000 nodes is a few MB: growing a fresh buffer for each request
// cost more than writing it). The buffers wait in a channel rather than a sync.Pool, which the garbage collector
// empties, and large answers collect garbage often. Every list answer borrows them (lists.go).
type nodeEncoder struct {
	rec  *recEncoder[*nodeView]
	bufs chan *[]byte
}

// Buffer reuse bounds: how many wait, and the largest kept (larger answers let theirs go).
const (
	keptBufs   = 4
	maxKeptBuf = 8 << 20
)

// newNodeEncoder builds the table from nodeFields, with direct writers for the values renderNode builds as
// maps: links (two small maps each) and the masked JSON fields (a copy each).
func newNodeEncoder() *nodeEncoder {
	masked := map[string]func(n *store.Node) map[string]any{
		"driver_info":          func(n *store.Node) map[string]any { return n.DriverInfo },
		"driver_internal_info": func(n *store.Node) map[string]any { return n.DriverInternalInfo },
		"instance_info":        func(n *store.Node) map[string]any { return n.InstanceInfo },
	}
	subs := map[string]string{"links": "", "ports": "ports", "states": "states", "portgroups": "portgroups",
		"volume": "volume"}
	var defs []fieldDef
	puts := map[string]recPut[*nodeView]{}
	for _, f := range nodeFields() {
		defs = append(defs, fieldDef{f.name, f.since})
		get := f.get
		puts[f.name] = func(b []byte, v *nodeView, _ int) []byte { return encodePy(b, get(v)) }
		if m, ok := masked[f.name]; ok {
			puts[f.name] = func(b []byte, v *nodeView, _ int) []byte { return appendMasked(b, m(v.n), 0) }
		}
		if sub, ok := subs[f.name]; ok {
			puts[f.name] = func(b []byte, v *nodeView, _ int) []byte {
				return appendLinks(b, v.base, "nodes", v.n.UUID, sub)
			}
		}
	}
	rec := newRecEncoder(defs, func(v *nodeView) string { return v.n.UUID }, puts)
	rec.askedOrder = true
	return &nodeEncoder{rec: rec, bufs: make(chan *[]byte, keptBufs)}
}

// appendNode writes the node as renderNode renders it: fields nil means every field of the version, else
// those fields in the caller's order (a field asked twice once, at its first place, as renderNode's ordered
// object keeps it).
func (e *nodeEncoder) appendNode(b []byte, v *nodeView, version int, fields []string) []byte {
	return appendRec(b, v, version, e.rec.pick(version, fields))
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
	v := &nodeView{n: n, base: s.cfg.PublicURL, host: s.eng.Host(), ring: s.cfg.Cluster}
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
	ring    Membership
}

func (l *nodeList) appendPy(b []byte) []byte {
	b = append(b, '[')
	v := &nodeView{base: l.base, host: l.host, ring: l.ring}
	sel := l.enc.rec.pick(l.version, l.fields) // once per page
	for i, n := range l.nodes {
		if i > 0 {
			b = append(b, ", "...)
		}
		v.n = n
		b = appendRec(b, v, l.version, sel)
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
		if v != nil && secretKey(k, depth) {
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
