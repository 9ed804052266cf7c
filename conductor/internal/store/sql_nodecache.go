package store

// Decoded node bodies, kept for reuse: decoding a node's JSON body was the largest single cost of GET one node
// and of GET /v1/nodes/detail (issue 15's speed targets), while most reads find the body unchanged since the
// last one. A read still fetches the body; when it is byte for byte the one decoded before for that row, the
// node is a deep copy of that decoding instead of a new decoding. The result is the same by construction (a
// decoding depends on the body alone), and callers own what they get: nothing they change reaches the cache.

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"
)

// maxCachedNodes bounds the cache; past it the cache starts again empty (a simple bound: a fleet larger than
// this decodes as before).
const maxCachedNodes = 8192

// nodeCache maps a node row id to its last decoded body.
type nodeCache struct {
	mu sync.Mutex
	m  map[int64]cachedNode
}

type cachedNode struct {
	body string
	n    *Node // never handed out: readers get copies
}

// decode returns the node of row id with this body (ID set, normalised, Reservation empty).
func (c *nodeCache) decode(id int64, body string) (*Node, error) {
	c.mu.Lock()
	hit, ok := c.m[id]
	c.mu.Unlock()
	if ok && hit.body == body {
		return cloneNode(hit.n), nil
	}
	var n Node
	if err := json.Unmarshal([]byte(body), &n); err != nil {
		return nil, fmt.Errorf("decode node %d: %w", id, err)
	}
	n.ID = id
	n.Normalize()
	keep := cloneNode(&n)
	c.mu.Lock()
	if c.m == nil || len(c.m) >= maxCachedNodes {
		c.m = make(map[int64]cachedNode, 64)
	}
	c.m[id] = cachedNode{body: body, n: keep}
	c.mu.Unlock()
	return &n, nil
}

// cloneNode copies n deeply: every map, slice and pointer of the copy is its own (TestCloneNodeShares checks
// that no field is left shared).
func cloneNode(n *Node) *Node {
	c := *n
	for _, m := range []*map[string]any{&c.DriverInfo, &c.DriverInternalInfo, &c.Properties, &c.InstanceInfo,
		&c.Extra, &c.NetworkData, &c.CleanStep, &c.DeployStep, &c.ServiceStep, &c.RAIDConfig, &c.TargetRAIDConfig} {
		*m = cloneJSONMap(*m)
	}
	c.Interfaces = maps.Clone(n.Interfaces)
	c.Traits = slices.Clone(n.Traits)
	for _, t := range []**time.Time{&c.ProvisionUpdatedAt, &c.InspectionStartedAt, &c.InspectionFinishedAt,
		&c.UpdatedAt} {
		if *t != nil {
			v := **t
			*t = &v
		}
	}
	for _, b := range []**bool{&c.AutomatedClean, &c.SecureBoot} {
		if *b != nil {
			v := **b
			*b = &v
		}
	}
	return &c
}

// cloneJSONMap copies a decoded JSON object deeply (objects and arrays; the other JSON values are immutable).
func cloneJSONMap(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = cloneJSONValue(v)
	}
	return out
}

func cloneJSONValue(v any) any {
	switch x := v.(type) {
	case map[string]any:
		return cloneJSONMap(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = cloneJSONValue(e)
		}
		return out
	}
	return v
}
