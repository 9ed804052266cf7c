package store

// Decoded record bodies, kept for reuse: decoding a record's JSON body was the largest cost of reading it (GET
// one node, and every list of 1,000 nodes, ports, portgroups, allocations, deploy templates or volume
// connectors/targets; issue 15's speed targets), while most reads find the body unchanged since the last one.
// A read still fetches the body; when it is byte for byte the one decoded before for that row, the record is a
// deep copy of that decoding instead of a new decoding. The result is the same by construction (a decoding
// depends on the body alone), and callers own what they get: nothing they change reaches the cache.

import (
	"encoding/json"
	"fmt"
	"sync"
	"time"
)

// maxCachedBodies bounds each cache; past it the cache starts again empty (a simple bound: a larger table
// decodes as before).
const maxCachedBodies = 8192

// cachedRecord is a body-stored record that can copy itself deeply (every map, slice and pointer its own).
type cachedRecord[T any] interface {
	bodyRecord[T]
	deepCopy() *T
}

// bodyCache maps a row id to its last decoded body.
type bodyCache[T any, P cachedRecord[T]] struct {
	mu sync.Mutex
	m  map[int64]cachedBody[T]
}

type cachedBody[T any] struct {
	body string
	v    *T // never handed out: readers get copies
}

// bodyCaches holds the caches of the records other than nodes.
type bodyCaches struct {
	ports      bodyCache[Port, *Port]
	portgroups bodyCache[Portgroup, *Portgroup]
	allocs     bodyCache[Allocation, *Allocation]
	templates  bodyCache[DeployTemplate, *DeployTemplate]
	connectors bodyCache[VolumeConnector, *VolumeConnector]
	targets    bodyCache[VolumeTarget, *VolumeTarget]
}

// decode returns the record of row id with this body (ID set, normalised); kind names it in an error.
func (c *bodyCache[T, P]) decode(id int64, body, kind string) (*T, error) {
	c.mu.Lock()
	hit, ok := c.m[id]
	c.mu.Unlock()
	if ok && hit.body == body {
		return P(hit.v).deepCopy(), nil
	}
	var v T
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		return nil, fmt.Errorf("decode %s %d: %w", kind, id, err)
	}
	P(&v).setID(id)
	P(&v).Normalize()
	keep := P(&v).deepCopy()
	c.mu.Lock()
	if c.m == nil || len(c.m) >= maxCachedBodies {
		c.m = make(map[int64]cachedBody[T], 64)
	}
	c.m[id] = cachedBody[T]{body: body, v: keep}
	c.mu.Unlock()
	return &v, nil
}

// scan is scanBody through the cache: it reads an (id, body) row.
func (c *bodyCache[T, P]) scan(kind string) func(rowScanner) (*T, error) {
	return func(sc rowScanner) (*T, error) {
		var (
			id   int64
			body string
		)
		if err := sc.Scan(&id, &body); err != nil {
			return nil, err
		}
		return c.decode(id, body, kind)
	}
}

// The deep copies (TestBodyCopiesShare checks that none leaves a map, slice or pointer shared). Each copies the
// struct, then every JSON map deeply (cloneJSONMap, sql_nodecache.go) and every slice and pointer.

func (p *Port) deepCopy() *Port {
	c := *p
	c.Extra, c.InternalInfo = cloneJSONMap(p.Extra), cloneJSONMap(p.InternalInfo)
	c.LocalLinkConnection = cloneJSONMap(p.LocalLinkConnection)
	c.UpdatedAt = cloneTime(p.UpdatedAt)
	return &c
}

func (g *Portgroup) deepCopy() *Portgroup {
	c := *g
	c.Extra, c.InternalInfo, c.Properties = cloneJSONMap(g.Extra), cloneJSONMap(g.InternalInfo),
		cloneJSONMap(g.Properties)
	c.UpdatedAt = cloneTime(g.UpdatedAt)
	return &c
}

func (a *Allocation) deepCopy() *Allocation {
	c := *a
	c.Traits, c.CandidateNodes = cloneStrings(a.Traits), cloneStrings(a.CandidateNodes)
	c.Extra = cloneJSONMap(a.Extra)
	c.UpdatedAt = cloneTime(a.UpdatedAt)
	return &c
}

// A template's steps are copied one by one: their arguments are JSON maps of their own.
func (t *DeployTemplate) deepCopy() *DeployTemplate {
	c := *t
	if t.Steps != nil {
		c.Steps = make([]TemplateStep, len(t.Steps))
		for i, st := range t.Steps {
			st.Args = cloneJSONMap(st.Args)
			c.Steps[i] = st
		}
	}
	c.Extra = cloneJSONMap(t.Extra)
	c.UpdatedAt = cloneTime(t.UpdatedAt)
	return &c
}

func (v *VolumeConnector) deepCopy() *VolumeConnector {
	c := *v
	c.Extra = cloneJSONMap(v.Extra)
	c.UpdatedAt = cloneTime(v.UpdatedAt)
	return &c
}

func (v *VolumeTarget) deepCopy() *VolumeTarget {
	c := *v
	c.Extra, c.Properties = cloneJSONMap(v.Extra), cloneJSONMap(v.Properties)
	c.UpdatedAt = cloneTime(v.UpdatedAt)
	return &c
}

// cloneTime copies a timestamp pointer (nil stays nil: an unset updated_at).
func cloneTime(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	v := *t
	return &v
}

// cloneStrings copies s, keeping nil nil and empty empty (the API shows the two differently).
func cloneStrings(s []string) []string {
	if s == nil {
		return nil
	}
	return append(make([]string, 0, len(s)), s...)
}
