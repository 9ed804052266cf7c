package api

import (
	"encoding/json"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/conductor/internal/store"
)

func sampleNode() *store.Node {
	n := &store.Node{UUID: "0862e37f-c229-4fe3-aa45-d637b29e7b5e", Name: "n1", Driver: "fake-hardware",
		ProvisionState: "enroll", CreatedAt: time.Now(), Extra: map[string]any{"rack": "r1", "list": []any{1.0, 2.0}}}
	n.Normalize()
	for _, k := range []string{"boot", "deploy", "power", "management"} {
		n.Interfaces[k] = "fake"
	}
	return n
}

func TestApplyPatchTable(t *testing.T) {
	tests := []struct {
		name    string
		patch   string
		wantErr string
		check   func(t *testing.T, n *store.Node)
	}{
		{"add nested", `[{"op":"add","path":"/extra/a~1b","value":{"c":1}}]`, "", func(t *testing.T, n *store.Node) {
			assert.Equal(t, map[string]any{"c": 1.0}, n.Extra["a/b"])
		}},
		{"list append", `[{"op":"add","path":"/extra/list/-","value":3}]`, "", func(t *testing.T, n *store.Node) {
			assert.Equal(t, []any{1.0, 2.0, 3.0}, n.Extra["list"])
		}},
		{"list insert", `[{"op":"add","path":"/extra/list/0","value":0}]`, "", func(t *testing.T, n *store.Node) {
			assert.Equal(t, []any{0.0, 1.0, 2.0}, n.Extra["list"])
		}},
		{"list remove", `[{"op":"remove","path":"/extra/list/1"}]`, "", func(t *testing.T, n *store.Node) {
			assert.Equal(t, []any{1.0}, n.Extra["list"])
		}},
		{"remove root dict resets", `[{"op":"remove","path":"/extra"}]`, "", func(t *testing.T, n *store.Node) {
			assert.Empty(t, n.Extra)
		}},
		{"remove name", `[{"op":"remove","path":"/name"}]`, "", func(t *testing.T, n *store.Node) {
			assert.Empty(t, n.Name)
		}},
		{"ops in order", `[{"op":"add","path":"/extra/x","value":1},{"op":"replace","path":"/extra/x","value":2}]`, "", func(t *testing.T, n *store.Node) {
			assert.Equal(t, 2.0, n.Extra["x"])
		}},
		{"index out of range", `[{"op":"replace","path":"/extra/list/5","value":1}]`, "out of range", nil},
		{"bad index", `[{"op":"add","path":"/extra/list/x","value":1}]`, "not a valid list index", nil},
		{"into scalar", `[{"op":"add","path":"/extra/rack/x","value":1}]`, "not an object or a list", nil},
		{"bad name", `[{"op":"replace","path":"/name","value":"has space"}]`, "Expected a logical name", nil},
		{"uuid as name", `[{"op":"replace","path":"/name","value":"0862e37f-c229-4fe3-aa45-d637b29e7b5e"}]`, "logical name", nil},
		{"readonly", `[{"op":"add","path":"/reservation","value":"x"}]`, "Cannot patch /reservation", nil},
		{"no path", `[{"op":"add","value":1}]`, "Invalid path", nil},
		{"no value", `[{"op":"add","path":"/extra/x"}]`, "needs a 'value'", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := sampleNode()
			err := patchNodeDoc(n, []byte(tc.patch), MaxVersion)
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.wantErr)
				return
			}
			require.NoError(t, err)
			tc.check(t, n)
		})
	}
}

// patchNodeDoc runs the PATCH pipeline of the API on a node in memory.
func patchNodeDoc(n *store.Node, body []byte, version int) error {
	ops, err := parsePatch(body)
	if err != nil {
		return err
	}
	doc := docOf(n, version)
	if err := applyPatch(doc, ops, patchableFields(version)); err != nil {
		return err
	}
	return applyDoc(n, doc, patchableFields(version))
}

func FuzzApplyPatch(f *testing.F) {
	for _, s := range []string{
		`[{"op":"add","path":"/extra/foo","value":"bar"}]`,
		`[{"op":"replace","path":"/maintenance","value":"true"}]`,
		`[{"op":"remove","path":"/extra/list/0"}]`,
		`[{"op":"add","path":"/extra/list/-","value":[1,{"a":null}]}]`,
		`[{"op":"add","path":"/driver_info/a~0b~1c","value":1}]`,
		`{"not":"a list"}`, `[]`, `[null]`, `[{"op":"replace","path":"/","value":1}]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		n := sampleNode()
		err := patchNodeDoc(n, body, MaxVersion)
		if err == nil {
			// Whatever a patch did, the node must still encode.
			_, err := json.Marshal(n)
			require.NoError(t, err)
			return
		}
		code, msg := status(err)
		assert.Equal(t, 400, code, "patch errors are client errors: %v", err)
		assert.NotEmpty(t, msg)
	})
}

func FuzzParseNodeQuery(f *testing.F) {
	for _, s := range []string{"limit=10&marker=0862e37f-c229-4fe3-aa45-d637b29e7b5e", "fields=uuid,name",
		"detail=true", "maintenance=true&associated=false", "sort_key=name&sort_dir=desc", "limit=-1",
		"resource_class=&conductor_group=A", "fields=uuid&detail=1", "%zz", "owner=x"} {
		f.Add(s, 89, false)
	}
	f.Fuzz(func(t *testing.T, raw string, version int, detailPath bool) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		lq, err := parseNodeQuery(q, version, detailPath)
		if err != nil {
			code, _ := status(err)
			assert.Equal(t, 400, code, "%v", err)
			return
		}
		assert.True(t, lq.opts.Limit > 0 && lq.opts.Limit <= maxLimit, "limit %d", lq.opts.Limit)
		if lq.fields != nil {
			assert.Equal(t, "uuid", lq.fields[0])
			assert.False(t, lq.detail)
		}
	})
}

// The wire encoder agrees with encoding/json on every value it writes itself.
func FuzzEncodePy(f *testing.F) {
	for _, s := range []string{`{"a":[1,2.5,"x\u2028<>&"],"b":{"c":null,"d":true}}`, `"\u0000\ud800"`, `[1e300,-0.0,12345678901234567]`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, doc string) {
		var v any
		if json.Unmarshal([]byte(doc), &v) != nil {
			return
		}
		var got, want any
		require.NoError(t, json.Unmarshal(encodePy(nil, v), &got), string(encodePy(nil, v)))
		want = v
		assert.Equal(t, want, got)
	})
}
