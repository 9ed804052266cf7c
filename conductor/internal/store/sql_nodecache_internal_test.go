package store

import (
	"reflect"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCloneNodeShares: every map, slice and pointer field of a node is copied by cloneNode, nested JSON
// included (a field added to Node later without a copy in cloneNode fails here).
func TestCloneNodeShares(t *testing.T) {
	n := &Node{}
	rv := reflect.ValueOf(n).Elem()
	now, yes := time.Now(), true
	for i := 0; i < rv.NumField(); i++ {
		f := rv.Field(i)
		switch f.Kind() {
		case reflect.Map:
			m := reflect.MakeMap(f.Type())
			if f.Type().Elem().Kind() == reflect.Interface {
				m.SetMapIndex(reflect.ValueOf("nested"), reflect.ValueOf(map[string]any{"list": []any{map[string]any{"k": "v"}}}))
			} else {
				m.SetMapIndex(reflect.ValueOf("k"), reflect.ValueOf("v"))
			}
			f.Set(m)
		case reflect.Slice:
			f.Set(reflect.ValueOf([]string{"A"}))
		case reflect.Pointer:
			switch f.Type().Elem().Kind() {
			case reflect.Bool:
				f.Set(reflect.ValueOf(&yes))
			default:
				require.Equal(t, reflect.TypeOf(&now), f.Type(), "field %s: teach this test its type", rv.Type().Field(i).Name)
				f.Set(reflect.ValueOf(&now))
			}
		}
	}
	c := cloneNode(n)
	require.Equal(t, n, c)
	cv := reflect.ValueOf(c).Elem()
	for i := 0; i < rv.NumField(); i++ {
		switch rv.Field(i).Kind() {
		case reflect.Map, reflect.Slice, reflect.Pointer:
			assert.NotEqual(t, rv.Field(i).Pointer(), cv.Field(i).Pointer(), "field %s is shared", rv.Type().Field(i).Name)
		}
	}
	c.Extra["nested"].(map[string]any)["list"].([]any)[0].(map[string]any)["k"] = "changed"
	assert.Equal(t, "v", n.Extra["nested"].(map[string]any)["list"].([]any)[0].(map[string]any)["k"])
}

// TestNodeCacheCopies: a node read twice is decoded once, and what a reader changes never reaches the next.
func TestNodeCacheCopies(t *testing.T) {
	var c bodyCache[Node, *Node]
	body := `{"uuid": "u1", "extra": {"a": {"b": [1, 2]}}, "traits": ["T"]}`
	first, err := c.decode(7, body, "node")
	require.NoError(t, err)
	first.Extra["a"].(map[string]any)["b"].([]any)[0] = "x"
	first.Traits[0] = "changed"
	second, err := c.decode(7, body, "node")
	require.NoError(t, err)
	assert.Equal(t, []any{1.0, 2.0}, second.Extra["a"].(map[string]any)["b"])
	assert.Equal(t, []string{"T"}, second.Traits)
	assert.Equal(t, int64(7), second.ID)
	third, err := c.decode(7, `{"uuid": "u1", "traits": []}`, "node")
	require.NoError(t, err)
	assert.Equal(t, []string{}, third.Traits, "a changed body is decoded again")
	assert.Equal(t, map[string]any{}, third.Extra)
}
