package store

// Decoded node bodies, kept for reuse: decoding a node's JSON body was the largest single cost of GET one node
// and of GET /v1/nodes/detail (issue 15's speed targets), while most reads find the body unchanged since the
// last one. The cache is the one every body-stored record uses (sql_bodycache.go); this file gives a node its
// deep copy.

import (
	"maps"
	"slices"
	"time"
)

// setID and deepCopy make a node a cachedRecord (sql_bodycache.go).
func (n *Node) setID(id int64)  { n.ID = id }
func (n *Node) deepCopy() *Node { return cloneNode(n) }

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
