package api

// The field-table encoder of every resource's read path: nodes (nodejson.go), ports, portgroups, chassis, deploy
// templates, allocations, volume connectors and targets (recjson_tables.go; issue 15: no list may cost more per
// item than the node list). It writes each record straight into the response buffer from a field table built
// once per server, instead of building a map of every value and an ordered object per item and encoding them
// afterwards. The fields a page shows are chosen once per page, not per item. The bytes are exactly
// encodePy(render<Resource>(...)): TestRecordEncoderBytes compares the two, and the render functions stay the
// reference (and the answer of GET one, POST and PATCH).

import (
	"slices"
	"time"
)

// recPut writes one field's value of a record of type T, as the request's microversion shows it.
type recPut[T any] func(b []byte, x T, version int) []byte

// recField is one field of a record's answer: its name and microversion (its place in Ironic's order is its
// place in the table), its key already encoded with Python's ": " separator, and its writer.
type recField[T any] struct {
	fieldDef
	key []byte
	put recPut[T]
}

// recEncoder writes records of type T. uuid names a record for the next page's marker. With askedOrder (nodes,
// as renderNode does) a fields= answer has the asked fields in the asked order, each once, and links only when
// asked; otherwise (every other resource, as renderDefs does) it has them in Ironic's order, plus links.
type recEncoder[T any] struct {
	fields     []recField[T]
	index      map[string]int
	uuid       func(T) string
	askedOrder bool
}

// newRecEncoder builds the table of defs (Ironic's order); every field of defs needs a writer in puts.
func newRecEncoder[T any](defs []fieldDef, uuid func(T) string, puts map[string]recPut[T]) *recEncoder[T] {
	e := &recEncoder[T]{uuid: uuid, index: make(map[string]int, len(defs))}
	for _, d := range defs {
		e.index[d.name] = len(e.fields)
		put, ok := puts[d.name]
		if !ok {
			panic("recjson: no writer for field " + d.name) // a programming error, caught by every list test
		}
		e.fields = append(e.fields, recField[T]{fieldDef: d, key: append(appendString(nil, d.name), ": "...),
			put: put})
	}
	return e
}

// pick returns the fields a page shows, as renderDefs chooses them: those visible at version, in the table's
// order, and only the asked ones (plus links, which Ironic's sanitize always keeps) when fields is not nil. With
// askedOrder the asked fields are taken as asked (the handler has refused those newer than the request).
func (e *recEncoder[T]) pick(version int, fields []string) []*recField[T] {
	out := make([]*recField[T], 0, len(e.fields))
	if fields != nil && e.askedOrder {
		for _, name := range fields {
			if i, ok := e.index[name]; ok && !slices.Contains(out, &e.fields[i]) {
				out = append(out, &e.fields[i])
			}
		}
		return out
	}
	for i := range e.fields {
		f := &e.fields[i]
		if f.since > version {
			continue
		}
		if fields != nil && f.name != "links" && !containsStr(fields, f.name) {
			continue
		}
		out = append(out, f)
	}
	return out
}

// appendRec writes one record with the picked fields.
func appendRec[T any](b []byte, x T, version int, sel []*recField[T]) []byte {
	b = append(b, '{')
	for i, f := range sel {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = append(b, f.key...)
		b = f.put(b, x, version)
	}
	return append(b, '}')
}

// recPage is a page of records for the list skeleton (writePage): encodePy writes it as the list of items.
type recPage[T any] struct {
	items   []T
	version int
	sel     []*recField[T]
}

func (p *recPage[T]) appendPy(b []byte) []byte {
	b = append(b, '[')
	for i, x := range p.items {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = appendRec(b, x, p.version, p.sel)
	}
	return append(b, ']')
}

// page prepares a page of list for the skeleton: the value that encodes as its items, their number and the
// UUID of the last one (the next page's marker).
func (e *recEncoder[T]) page(list []T, version int, fields []string) (items pyAppender, n int, last string) {
	if len(list) > 0 {
		last = e.uuid(list[len(list)-1])
	}
	return &recPage[T]{items: list, version: version, sel: e.pick(version, fields)}, len(list), last
}

// The writers of the common value kinds. Each writes what encodePy writes for the value the render functions
// put in their maps (a string, null for an empty one, isoTime, timeOrNil, links ...).

func putStr[T any](get func(T) string) recPut[T] {
	return func(b []byte, x T, _ int) []byte { return appendString(b, get(x)) }
}

// putStrOrNull writes strOrNil: null for "".
func putStrOrNull[T any](get func(T) string) recPut[T] {
	return func(b []byte, x T, _ int) []byte {
		if s := get(x); s != "" {
			return appendString(b, s)
		}
		return append(b, "null"...)
	}
}

func putBool[T any](get func(T) bool) recPut[T] {
	return func(b []byte, x T, _ int) []byte {
		if get(x) {
			return append(b, "true"...)
		}
		return append(b, "false"...)
	}
}

// putAny writes any other value as encodePy does (JSON objects with sorted keys, lists, numbers).
func putAny[T any, V any](get func(T) V) recPut[T] {
	return func(b []byte, x T, _ int) []byte { return encodePy(b, get(x)) }
}

// putMasked writes maskSecrets(m): the JSON field with its secret values hidden, without the masked copy.
func putMasked[T any](get func(T) map[string]any) recPut[T] {
	return func(b []byte, x T, _ int) []byte { return appendMasked(b, get(x), 0) }
}

// putTime writes isoTime(t) (its characters never need escaping).
func putTime[T any](get func(T) time.Time) recPut[T] {
	return func(b []byte, x T, _ int) []byte { return appendISOTime(b, get(x)) }
}

// putTimeOrNull writes timeOrNil(t).
func putTimeOrNull[T any](get func(T) *time.Time) recPut[T] {
	return func(b []byte, x T, _ int) []byte {
		if t := get(x); t != nil && !t.IsZero() {
			return appendISOTime(b, *t)
		}
		return append(b, "null"...)
	}
}

func appendISOTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.UTC().AppendFormat(b, "2006-01-02T15:04:05.000000-07:00")
	return append(b, '"')
}

// putLinks writes links(base, kind, uuid, sub): the self and bookmark links of a record or of its sub-resource.
func putLinks[T any](base, kind string, uuid func(T) string, sub string) recPut[T] {
	return func(b []byte, x T, _ int) []byte { return appendLinks(b, base, kind, uuid(x), sub) }
}
