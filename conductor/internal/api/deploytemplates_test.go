package api

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const tmplBody = `{"name": "CUSTOM_HYPERTHREADING_ON", "extra": {"k": "v"}, "steps": [{"interface": "bios",
	"step": "apply_configuration", "args": {"settings": [{"name": "LogicalProc", "value": "Enabled"}]}, "priority": 150}]}`

func decodeObj(t *testing.T, rec *httptest.ResponseRecorder) map[string]any {
	var m map[string]any
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &m), rec.Body.String())
	return m
}

// TestDeployTemplatesGate: before 1.55 a GET is a 404 and any other method a 405, as Ironic answers.
func TestDeployTemplatesGate(t *testing.T) {
	srv, _, _ := stepServer(t)
	for _, tc := range []struct {
		method, path, version string
		code                  int
	}{
		{"GET", "/v1/deploy_templates", "", 404},
		{"GET", "/v1/deploy_templates", "1.54", 404},
		{"GET", "/v1/deploy_templates/CUSTOM_X", "1.54", 404},
		{"POST", "/v1/deploy_templates", "1.54", 405},
		{"PATCH", "/v1/deploy_templates/CUSTOM_X", "1.54", 405},
		{"DELETE", "/v1/deploy_templates/CUSTOM_X", "1.54", 405},
		{"GET", "/v1/deploy_templates", "1.55", 200},
		{"GET", "/v1/deploy_templates/", "latest", 200},
	} {
		t.Run(tc.method+" "+tc.path+" "+tc.version, func(t *testing.T) {
			body := ""
			if tc.method == "POST" {
				body = tmplBody
			}
			rec := call(srv, tc.method, tc.path, tc.version, body)
			assert.Equal(t, tc.code, rec.Code, rec.Body.String())
		})
	}
}

// TestDeployTemplatesCRUD: create (201, Location, Ironic's field order), show by UUID and name, list with its
// default fields, detail and fields=, patch, delete; each refusal with Ironic's status.
func TestDeployTemplatesCRUD(t *testing.T) {
	srv, _, _ := stepServer(t)
	rec := call(srv, "POST", "/v1/deploy_templates", "1.55", tmplBody)
	require.Equal(t, 201, rec.Code, rec.Body.String())
	created := decodeObj(t, rec)
	id := created["uuid"].(string)
	assert.Equal(t, "http://127.0.0.1:6385/v1/deploy_templates/"+id, rec.Header().Get("Location"))
	assert.True(t, strings.HasPrefix(rec.Body.String(), `{"uuid": "`+id+`", "created_at": `), rec.Body.String())
	assert.Contains(t, rec.Body.String(), `"steps": [{"interface": "bios", "step": "apply_configuration", "args": {"settings": [{"name": "LogicalProc", "value": "Enabled"}]}, "priority": 150}]`)
	assert.Nil(t, created["updated_at"])
	assert.Equal(t, map[string]any{"k": "v"}, created["extra"])

	for _, ident := range []string{id, "CUSTOM_HYPERTHREADING_ON"} {
		rec = call(srv, "GET", "/v1/deploy_templates/"+ident, "1.55", "")
		require.Equal(t, 200, rec.Code)
		assert.Equal(t, created, decodeObj(t, rec))
	}
	rec = call(srv, "GET", "/v1/deploy_templates/"+id+"?fields=name", "1.55", "")
	require.Equal(t, 200, rec.Code)
	assert.Equal(t, []string{"links", "name"}, keys(decodeObj(t, rec)))

	rec = call(srv, "GET", "/v1/deploy_templates", "1.55", "")
	require.Equal(t, 200, rec.Code)
	items := decodeObj(t, rec)["deploy_templates"].([]any)
	require.Len(t, items, 1)
	assert.Equal(t, []string{"links", "name", "uuid"}, keys(items[0].(map[string]any)))
	rec = call(srv, "GET", "/v1/deploy_templates?detail=true", "1.55", "")
	assert.Equal(t, created, decodeObj(t, rec)["deploy_templates"].([]any)[0])

	rec = call(srv, "PATCH", "/v1/deploy_templates/"+id, "1.55",
		`[{"op": "replace", "path": "/name", "value": "CUSTOM_HT_ON"}, {"op": "replace", "path": "/steps/0/priority", "value": "20"},
		  {"op": "add", "path": "/extra/b", "value": 1}]`)
	require.Equal(t, 200, rec.Code, rec.Body.String())
	patched := decodeObj(t, rec)
	assert.Equal(t, "CUSTOM_HT_ON", patched["name"])
	assert.Equal(t, 20.0, patched["steps"].([]any)[0].(map[string]any)["priority"], "a priority string of digits is accepted")
	assert.Equal(t, map[string]any{"k": "v", "b": 1.0}, patched["extra"])
	assert.NotNil(t, patched["updated_at"])

	require.Equal(t, 204, call(srv, "DELETE", "/v1/deploy_templates/CUSTOM_HT_ON", "1.55", "").Code)
	rec = call(srv, "GET", "/v1/deploy_templates/"+id, "1.55", "")
	require.Equal(t, 404, rec.Code)
	assert.Equal(t, "Deploy template "+id+" could not be found.", faultString(t, rec))
}

// TestDeployTemplatesRefusals: every negative case of create, patch, list and delete.
func TestDeployTemplatesRefusals(t *testing.T) {
	srv, _, _ := stepServer(t)
	const fixedUUID = "11111111-2222-4333-8444-555555555555"
	rec := call(srv, "POST", "/v1/deploy_templates", "1.55",
		`{"uuid": "`+fixedUUID+`", "name": "CUSTOM_A", "steps": [{"interface": "bios", "step": "factory_reset", "args": {}, "priority": 10}]}`)
	require.Equal(t, 201, rec.Code, rec.Body.String())
	step := `{"interface": "bios", "step": "factory_reset", "args": {}, "priority": 10}`
	for _, tc := range []struct {
		name, method, path, body string
		code                     int
		want                     string
	}{
		{"no name", "POST", "", `{"steps": [` + step + `]}`, 400, "'name' is a required property"},
		{"no steps", "POST", "", `{"name": "CUSTOM_B"}`, 400, "'steps' is a required property"},
		{"empty steps", "POST", "", `{"name": "CUSTOM_B", "steps": []}`, 400, "at least one deploy step"},
		{"bad name", "POST", "", `{"name": "lower", "steps": [` + step + `]}`, 400, "'lower' is not a valid trait"},
		{"name too long", "POST", "", `{"name": "CUSTOM_` + strings.Repeat("X", 250) + `", "steps": [` + step + `]}`, 400, "is too long"},
		{"unknown field", "POST", "", `{"name": "CUSTOM_B", "steps": [` + step + `], "owner": "x"}`, 400, "('owner' was unexpected)"},
		{"bad interface", "POST", "", `{"name": "CUSTOM_B", "steps": [{"interface": "network", "step": "x", "args": {}, "priority": 1}]}`,
			400, "'network' is not one of bios, deploy, firmware, management, power, raid, vendor"},
		{"step without args", "POST", "", `{"name": "CUSTOM_B", "steps": [{"interface": "bios", "step": "x", "priority": 1}]}`,
			400, "'args' is a required property"},
		{"negative priority", "POST", "", `{"name": "CUSTOM_B", "steps": [{"interface": "bios", "step": "x", "args": {}, "priority": -1}]}`,
			400, "priority: -1 is not valid"},
		{"priority not digits", "POST", "", `{"name": "CUSTOM_B", "steps": [{"interface": "bios", "step": "x", "args": {}, "priority": "1a"}]}`,
			400, "priority: 1a is not valid"},
		{"extra step key", "POST", "", `{"name": "CUSTOM_B", "steps": [{"interface": "bios", "step": "x", "args": {}, "priority": 1, "order": 2}]}`,
			400, "('order' was unexpected)"},
		{"duplicate steps", "POST", "", `{"name": "CUSTOM_B", "steps": [` + step + `, ` + step + `]}`, 400,
			"Duplicates: interface: bios, step: factory_reset."},
		{"bad uuid", "POST", "", `{"uuid": "x", "name": "CUSTOM_B", "steps": [` + step + `]}`, 400, "Expected a UUID but received x"},
		{"duplicate name", "POST", "", `{"name": "CUSTOM_A", "steps": [` + step + `]}`, 409,
			"A deploy template with name CUSTOM_A already exists."},
		{"duplicate uuid", "POST", "", `{"uuid": "` + fixedUUID + `", "name": "CUSTOM_B", "steps": [` + step + `]}`, 409,
			"A deploy template with UUID " + fixedUUID + " already exists."},
		{"patch uuid", "PATCH", "/CUSTOM_A", `[{"op": "replace", "path": "/uuid", "value": "` + fixedUUID + `"}]`, 400,
			"Cannot patch /uuid. Only the following can be updated: extra, name, steps"},
		{"patch bad name", "PATCH", "/CUSTOM_A", `[{"op": "replace", "path": "/name", "value": "x"}]`, 400, "'x' is not a valid trait"},
		{"patch remove steps", "PATCH", "/CUSTOM_A", `[{"op": "remove", "path": "/steps/0"}]`, 400, "at least one deploy step"},
		{"patch bad step", "PATCH", "/CUSTOM_A", `[{"op": "add", "path": "/steps/0/foo", "value": 1}]`, 400, "('foo' was unexpected)"},
		{"patch unknown", "PATCH", "/CUSTOM_NOPE", `[{"op": "replace", "path": "/name", "value": "CUSTOM_C"}]`, 404,
			"Deploy template CUSTOM_NOPE could not be found."},
		{"delete unknown", "DELETE", "/CUSTOM_NOPE", "", 404, "Deploy template CUSTOM_NOPE could not be found."},
		{"list unknown param", "GET", "?node=x", "", 400, "Unknown query parameter"},
		{"list sort by steps", "GET", "?sort_key=steps", "", 400, "is an invalid field for sorting"},
		{"list fields and detail", "GET", "?fields=name&detail=true", "", 400, "Can not specify ?detail=True and fields"},
		{"list bad field", "GET", "?fields=owner", "", 400, "Field(s) \"owner\" are not valid"},
		{"list unknown marker", "GET", "?marker=" + "99999999-2222-4333-8444-555555555555", "", 404, "could not be found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := call(srv, tc.method, "/v1/deploy_templates"+tc.path, "1.55", tc.body)
			require.Equal(t, tc.code, rec.Code, rec.Body.String())
			assert.Contains(t, faultString(t, rec), tc.want)
		})
	}
	// Nothing refused was stored, and the first template is unchanged.
	rec = call(srv, "GET", "/v1/deploy_templates?detail=true", "1.55", "")
	items := decodeObj(t, rec)["deploy_templates"].([]any)
	require.Len(t, items, 1)
	assert.Equal(t, "CUSTOM_A", items[0].(map[string]any)["name"])
	assert.Len(t, items[0].(map[string]any)["steps"], 1)
}

// TestDeployTemplatesPaging: limit, marker and sort follow the node listing's rules, with a next link.
func TestDeployTemplatesPaging(t *testing.T) {
	srv, _, _ := stepServer(t)
	for _, name := range []string{"CUSTOM_C", "CUSTOM_A", "CUSTOM_B"} {
		rec := call(srv, "POST", "/v1/deploy_templates", "1.55",
			`{"name": "`+name+`", "steps": [{"interface": "bios", "step": "factory_reset", "args": {"password": "s3cret"}, "priority": 1}]}`)
		require.Equal(t, 201, rec.Code, rec.Body.String())
		assert.NotContains(t, rec.Body.String(), "s3cret", "step arguments are masked as Ironic masks them")
	}
	rec := call(srv, "GET", "/v1/deploy_templates?sort_key=name&limit=2", "1.55", "")
	require.Equal(t, 200, rec.Code)
	page := decodeObj(t, rec)
	items := page["deploy_templates"].([]any)
	require.Len(t, items, 2)
	assert.Equal(t, "CUSTOM_A", items[0].(map[string]any)["name"])
	next, _ := page["next"].(string)
	require.NotEmpty(t, next)
	rec = call(srv, "GET", strings.TrimPrefix(next, "http://127.0.0.1:6385"), "1.55", "")
	require.Equal(t, 200, rec.Code)
	items = decodeObj(t, rec)["deploy_templates"].([]any)
	require.Len(t, items, 1)
	assert.Equal(t, "CUSTOM_C", items[0].(map[string]any)["name"])
}

// TestDeployWithTemplateThroughAPI: the whole path on fake-hardware: trait on the node, a template of that name,
// instance_info.traits, deploy; the template's step is in the deploy log. Instance traits the node lacks are
// Ironic's 400.
func TestDeployWithTemplateThroughAPI(t *testing.T) {
	srv, st, n := stepServer(t)
	require.Equal(t, 204, call(srv, "PUT", "/v1/nodes/"+n.UUID+"/traits/CUSTOM_X", "1.55", "").Code)
	require.Equal(t, 201, call(srv, "POST", "/v1/deploy_templates", "1.55",
		`{"name": "CUSTOM_X", "steps": [{"interface": "bios", "step": "factory_reset", "args": {}, "priority": 150}]}`).Code)
	require.Equal(t, 202, call(srv, "PUT", "/v1/nodes/"+n.UUID+"/states/provision", "1.55", `{"target": "provide"}`).Code)
	srv.eng.Wait()

	rec := call(srv, "PATCH", "/v1/nodes/"+n.UUID, "1.55", `[{"op": "add", "path": "/instance_info/traits", "value": ["CUSTOM_Y"]}]`)
	require.Equal(t, 200, rec.Code, rec.Body.String())
	rec = call(srv, "PUT", "/v1/nodes/"+n.UUID+"/states/provision", "1.55", `{"target": "active"}`)
	require.Equal(t, 400, rec.Code, rec.Body.String())
	assert.Contains(t, faultString(t, rec), "Cannot specify instance traits that are not also set on the node. Node "+n.UUID+" is missing traits CUSTOM_Y")

	rec = call(srv, "PATCH", "/v1/nodes/"+n.UUID, "1.55", `[{"op": "replace", "path": "/instance_info/traits", "value": ["CUSTOM_X"]}]`)
	require.Equal(t, 200, rec.Code, rec.Body.String())
	rec = call(srv, "PUT", "/v1/nodes/"+n.UUID+"/states/provision", "1.55", `{"target": "active"}`)
	require.Equal(t, 202, rec.Code, rec.Body.String())
	srv.eng.Wait()
	got, err := st.GetNode(context.Background(), n.UUID)
	require.NoError(t, err)
	assert.Equal(t, "active", got.ProvisionState, got.LastError)
	lines, err := st.DeployLog(context.Background(), n.UUID, "")
	require.NoError(t, err)
	var log strings.Builder
	for _, l := range lines {
		log.WriteString(l.Message + "\n")
	}
	assert.Contains(t, log.String(), "deploy steps: bios.factory_reset (priority 150), deploy.deploy (priority 100)")
	assert.Contains(t, log.String(), "fake deploy step bios.factory_reset done")
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
