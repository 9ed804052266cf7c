package store

import (
	"reflect"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fillShareable sets every map, slice and pointer field of the struct rv (nested JSON in the maps, a step with
// arguments in a slice of steps), so that a copy sharing any of them shows.
func fillShareable(t *testing.T, rv reflect.Value) {
	now := time.Now()
	for i := 0; i < rv.NumField(); i++ {
		f := rv.Field(i)
		switch f.Kind() {
		case reflect.Map:
			f.Set(reflect.ValueOf(map[string]any{"nested": map[string]any{"list": []any{map[string]any{"k": "v"}}}}))
		case reflect.Slice:
			switch f.Type() {
			case reflect.TypeOf([]string{}):
				f.Set(reflect.ValueOf([]string{"A"}))
			case reflect.TypeOf([]TemplateStep{}):
				f.Set(reflect.ValueOf([]TemplateStep{{Step: "s", Args: map[string]any{"k": []any{"v"}}}}))
			default:
				t.Fatalf("field %s: teach this test its type", rv.Type().Field(i).Name)
			}
		case reflect.Pointer:
			require.Equal(t, reflect.TypeOf(&now), f.Type(), "field %s: teach this test its type", rv.Type().Field(i).Name)
			f.Set(reflect.ValueOf(&now))
		}
	}
}

// TestBodyCopiesShare: every record's deepCopy copies each map, slice and pointer, nested JSON and template
// step arguments included (a field added later without a copy fails here).
func TestBodyCopiesShare(t *testing.T) {
	for _, rec := range []any{&Port{}, &Portgroup{}, &Allocation{}, &DeployTemplate{}, &VolumeConnector{},
		&VolumeTarget{}} {
		rv := reflect.ValueOf(rec).Elem()
		fillShareable(t, rv)
		var cp any
		switch x := rec.(type) {
		case *Port:
			cp = x.deepCopy()
		case *Portgroup:
			cp = x.deepCopy()
		case *Allocation:
			cp = x.deepCopy()
		case *DeployTemplate:
			cp = x.deepCopy()
		case *VolumeConnector:
			cp = x.deepCopy()
		case *VolumeTarget:
			cp = x.deepCopy()
		}
		require.Equal(t, rec, cp)
		cv := reflect.ValueOf(cp).Elem()
		for i := 0; i < rv.NumField(); i++ {
			name := rv.Type().Field(i).Name
			switch rv.Field(i).Kind() {
			case reflect.Map, reflect.Slice, reflect.Pointer:
				assert.NotEqual(t, rv.Field(i).Pointer(), cv.Field(i).Pointer(), "%T.%s is shared", rec, name)
			}
			if rv.Field(i).Kind() == reflect.Map {
				cv.Field(i).Interface().(map[string]any)["nested"].(map[string]any)["list"] = "changed"
				assert.NotEqual(t, "changed", rv.Field(i).Interface().(map[string]any)["nested"].(map[string]any)["list"],
					"%T.%s shares nested JSON", rec, name)
			}
		}
		if tpl, ok := cp.(*DeployTemplate); ok {
			tpl.Steps[0].Args["k"] = "changed"
			assert.Equal(t, []any{"v"}, rec.(*DeployTemplate).Steps[0].Args["k"], "step arguments are shared")
		}
	}
}

// TestBodyCacheCopies: a record read twice is decoded once, and what a reader changes never reaches the next.
func TestBodyCacheCopies(t *testing.T) {
	var c bodyCache[Port, *Port]
	body := `{"uuid": "u1", "extra": {"a": {"b": [1, 2]}}}`
	first, err := c.decode(7, body, "port")
	require.NoError(t, err)
	first.Extra["a"].(map[string]any)["b"].([]any)[0] = "x"
	second, err := c.decode(7, body, "port")
	require.NoError(t, err)
	assert.Equal(t, []any{1.0, 2.0}, second.Extra["a"].(map[string]any)["b"])
	assert.Equal(t, int64(7), second.ID)
	third, err := c.decode(7, `{"uuid": "u1"}`, "port")
	require.NoError(t, err)
	assert.Equal(t, map[string]any{}, third.Extra, "a changed body is decoded again, and normalised")
	_, err = c.decode(8, `{`, "port")
	assert.ErrorContains(t, err, "decode port 8")
}
