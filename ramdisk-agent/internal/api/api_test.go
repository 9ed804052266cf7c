package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/deploy"
)

// newServer runs the command API; done counts finished async commands (from the commands' goroutines).
func newServer(t *testing.T, release chan struct{}, done *atomic.Int32) *httptest.Server {
	l := logrus.New()
	l.SetOutput(io.Discard)
	s := New(context.Background(), Config{Version: "test", Token: func() string { return "tok" }, Log: logrus.NewEntry(l),
		OnCommandDone: func() { done.Add(1) }}, map[string]Spec{
		"standby.slow": {Async: true, Handler: func(ctx context.Context, _ json.RawMessage, c *Command) (any, error) {
			c.Phase("pull")
			c.Bytes(50, 100)
			c.Line("working")
			<-release
			return map[string]string{"result": "done"}, nil
		}},
		"standby.fail": {Async: true, Handler: func(context.Context, json.RawMessage, *Command) (any, error) {
			return nil, &ClientError{Err: errors.New("bad image")}
		}},
		"deploy.get_deploy_steps": {Handler: func(context.Context, json.RawMessage, *Command) (any, error) { return map[string]int{"n": 1}, nil }},
		deploy.CmdProgress:        {Handler: func(context.Context, json.RawMessage, *Command) (any, error) { return map[string]string{"p": "x"}, nil }},
	})
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return srv
}

func call(t *testing.T, method, url, body string) (int, map[string]any) {
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func TestProtocol(t *testing.T) {
	release := make(chan struct{})
	var done atomic.Int32
	srv := newServer(t, release, &done)
	u := srv.URL + "/v1/commands/"

	code, out := call(t, "GET", srv.URL+"/v1/status", "")
	assert.Equal(t, 200, code)
	assert.Equal(t, "test", out["version"])
	code, out = call(t, "GET", u, "")
	assert.Equal(t, 401, code, "the token is required")
	assert.Equal(t, "Token invalid.", out["faultstring"])
	code, _ = call(t, "GET", u+"?agent_token=nope", "")
	assert.Equal(t, 401, code)

	for _, tc := range []struct{ body, want string }{
		{`{"name":`, "Invalid JSON"}, {`{"params":{}}`, "command name"}, {`{"name":"x.y","params":[]}`, "params must be an object"},
		{`{"name":"nodot","params":{}}`, "command name"},
	} {
		code, out = call(t, "POST", u+"?agent_token=tok", tc.body)
		assert.Equal(t, 400, code, tc.body)
		assert.Contains(t, out["faultstring"], tc.want)
	}
	code, _ = call(t, "POST", u+"?agent_token=tok", `{"name":"no.such","params":{}}`)
	assert.Equal(t, 404, code)

	code, out = call(t, "POST", u+"?agent_token=tok&wait=false", `{"name":"standby.slow","params":{}}`)
	require.Equal(t, 200, code)
	assert.Equal(t, "RUNNING", out["command_status"])
	assert.Equal(t, "slow", out["command_name"])
	id := out["id"].(string)
	code, out = call(t, "POST", u+"?agent_token=tok", `{"name":"deploy.get_deploy_steps","params":{}}`)
	assert.Equal(t, 409, code, "one command at a time")
	assert.Contains(t, out["faultstring"], "busy")
	code, out = call(t, "POST", u+"?agent_token=tok", `{"name":"ferric.progress","params":{}}`)
	assert.Equal(t, 200, code, "progress is answered while busy")

	close(release)
	code, out = call(t, "GET", srv.URL+"/commands/"+id+"?agent_token=tok&wait=true", "")
	require.Equal(t, 200, code, "routes work without /v1 too")
	assert.Equal(t, "SUCCEEDED", out["command_status"])
	assert.Equal(t, map[string]any{"result": "done"}, out["command_result"])

	code, out = call(t, "POST", u+"?agent_token=tok&wait=true", `{"name":"standby.fail","params":{}}`)
	require.Equal(t, 200, code)
	assert.Equal(t, "FAILED", out["command_status"])
	cerr := out["command_error"].(map[string]any)
	assert.Equal(t, "bad image", cerr["message"])
	assert.Equal(t, 400.0, cerr["code"])

	code, out = call(t, "GET", u+"?agent_token=tok", "")
	require.Equal(t, 200, code)
	assert.Len(t, out["commands"], 2, "progress queries are not commands")
	require.Eventually(t, func() bool { return done.Load() == 2 }, time.Second, 10*time.Millisecond, "a heartbeat is forced after each async command")
}

func TestProgress(t *testing.T) {
	c := &Command{ID: "1", Name: "standby.execute_bootc_install", status: "RUNNING", done: make(chan struct{})}
	c.Phase("pull")
	c.Bytes(30, 120)
	for i := 0; i < 3; i++ {
		c.Line("line")
	}
	p := c.Progress(0)
	assert.Equal(t, "pull", p.Phase)
	assert.Equal(t, 25.0, p.Percent)
	assert.Len(t, p.Lines, 4)
	assert.Equal(t, 4, p.LineOffset)
	assert.Empty(t, c.Progress(4).Lines, "only new lines after the offset")
	for i := 0; i < maxLines+10; i++ {
		c.Line("more")
	}
	p = c.Progress(4)
	assert.Len(t, p.Lines, maxLines, "old lines are dropped, the offset stays consistent")
	assert.Equal(t, 4+maxLines+10, p.LineOffset)
}
