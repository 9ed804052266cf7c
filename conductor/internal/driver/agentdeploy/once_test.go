package agentdeploy

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/conductor/internal/agentclient"
	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/steps"
	"github.com/ferric-metal/ferric/conductor/internal/store"
	"github.com/ferric-metal/ferric/deploy"
)

// historyAgent is an agent's command API with the state StartOnce reads: its history, oldest first, one command
// running at a time (IPA's 409 otherwise). Commands it starts stay running.
type historyAgent struct {
	mu      sync.Mutex
	history []deploy.CommandResult
	posts   int
}

func (a *historyAgent) serve(t *testing.T) *agentclient.Client {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		defer a.mu.Unlock()
		if r.Method == http.MethodGet {
			_ = json.NewEncoder(w).Encode(map[string]any{"commands": a.history})
			return
		}
		var req struct {
			Name string `json:"name"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		a.posts++
		if k := len(a.history); k > 0 && a.history[k-1].CommandStatus == deploy.StatusRunning {
			w.WriteHeader(http.StatusConflict)
			_ = json.NewEncoder(w).Encode(map[string]string{"faultstring": "Agent is busy"})
			return
		}
		c := deploy.CommandResult{ID: "new", CommandName: req.Name, CommandStatus: deploy.StatusRunning}
		a.history = append(a.history, c)
		_ = json.NewEncoder(w).Encode(c)
	}))
	t.Cleanup(srv.Close)
	c, err := agentclient.New(agentclient.Config{URL: srv.URL, Token: "tok"})
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return c
}

func TestStartOnce(t *testing.T) {
	const name = deploy.CmdBootcInstall
	install := func(id, status string) deploy.CommandResult {
		return deploy.CommandResult{ID: id, CommandName: "execute_bootc_install", CommandStatus: status}
	}
	record := func(tag, url string, before any) map[string]any {
		return map[string]any{"tag": tag, "command": name, "agent_url": url, "before": before}
	}
	tests := []struct {
		name    string
		history []deploy.CommandResult
		record  map[string]any // the predecessor's write-ahead record, nil: none
		saveErr error
		wantID  string
		adopted bool
		posts   int
		wantErr error
	}{
		{name: "first send", wantID: "new", posts: 1},
		{name: "predecessor died after the send; the install already finished",
			history: []deploy.CommandResult{install("theirs", deploy.StatusSucceeded)},
			record:  record("install", "http://agent", float64(0)), wantID: "theirs", adopted: true},
		{name: "predecessor died before the send reached the agent",
			record: record("install", "http://agent", float64(0)), wantID: "new", posts: 1},
		{name: "fast track: an earlier deploy's install is not this one's",
			history: []deploy.CommandResult{install("old", deploy.StatusSucceeded), install("theirs", deploy.StatusFailed)},
			record:  record("install", "http://agent", float64(1)), wantID: "theirs", adopted: true},
		{name: "fast track without a record: a finished install is never adopted",
			history: []deploy.CommandResult{install("old", deploy.StatusSucceeded)}, wantID: "new", posts: 1},
		{name: "the agent booted again since the record",
			history: []deploy.CommandResult{install("other", deploy.StatusSucceeded)},
			record:  record("install", "http://old-agent", float64(0)), wantID: "new", posts: 1},
		{name: "a record of other work", history: []deploy.CommandResult{install("x", deploy.StatusSucceeded)},
			record: record("deploy:deploy.write_image", "http://agent", float64(0)), wantID: "new", posts: 1},
		{name: "no record, an install still running (a predecessor that predates the record)",
			history: []deploy.CommandResult{install("running", deploy.StatusRunning)}, wantID: "running", adopted: true},
		{name: "busy with another command", history: []deploy.CommandResult{{ID: "p", CommandName: "get_deploy_steps",
			CommandStatus: deploy.StatusRunning}}, posts: 1, wantErr: agentclient.ErrBusy},
		{name: "the record cannot be saved: nothing is sent", saveErr: store.ErrNotHolder, wantErr: store.ErrNotHolder},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			agent := &historyAgent{history: tc.history}
			c := agent.serve(t)
			n := &store.Node{UUID: "n1", DriverInternalInfo: map[string]any{"agent_url": "http://agent"}}
			if tc.record != nil {
				n.DriverInternalInfo[KeySending] = tc.record
			}
			var saved []map[string]any // the record as each save found it
			task := &driver.Task{Node: n, Log: quietLog(), Save: func(context.Context) error {
				rec, _ := n.DriverInternalInfo[KeySending].(map[string]any)
				saved = append(saved, rec)
				return tc.saveErr
			}}
			id, adopted, err := StartOnce(context.Background(), task, c, "install", name, func() (any, error) {
				return map[string]any{"image_source": "oci://r/i@sha256:0"}, nil
			})
			if tc.wantErr != nil {
				require.Error(t, err)
				assert.True(t, errors.Is(err, tc.wantErr), "got %v", err)
			} else {
				require.NoError(t, err)
			}
			assert.Equal(t, tc.wantID, id)
			assert.Equal(t, tc.adopted, adopted)
			assert.Equal(t, tc.posts, agent.posts, "install commands sent")
			assert.NotContains(t, n.DriverInternalInfo, KeySending, "the record is gone once the agent answered")
			if tc.posts > 0 {
				// Write-ahead: the record was saved before the send, with the count the history had then.
				require.Len(t, saved, 1)
				assert.Equal(t, "install", saved[0]["tag"])
				assert.Equal(t, len(sameCommands(tc.history, name)), saved[0]["before"])
			}
		})
	}
}

// TestResumeStep: of an agent interface's deploy steps, the core step and the conductor-side ones run again, the
// write and in-band steps are followed on the agent, anything else (and any clean step) is not carried on.
func TestResumeStep(t *testing.T) {
	for _, tc := range []struct {
		kind steps.Kind
		step steps.Step
		want driver.Resume
	}{
		{steps.Deploy, steps.Step{Interface: "deploy", Step: StepDeploy}, driver.ResumeRerun},
		{steps.Deploy, steps.Step{Interface: "deploy", Step: "write_image"}, driver.ResumeWait},
		{steps.Deploy, steps.Step{Interface: "deploy", Step: "bootc_install"}, driver.ResumeNever}, // not this interface's write
		{steps.Deploy, steps.Step{Interface: "raid", Step: "apply_configuration", InBand: true}, driver.ResumeWait},
		{steps.Deploy, steps.Step{Interface: "deploy", Step: StepSetBootToDisk}, driver.ResumeRerun},
		{steps.Deploy, steps.Step{Interface: "deploy", Step: StepPrepareBoot}, driver.ResumeRerun},
		{steps.Deploy, steps.Step{Interface: "deploy", Step: StepTearDownAgent}, driver.ResumeRerun},
		{steps.Deploy, steps.Step{Interface: "deploy", Step: StepBootInstance}, driver.ResumeRerun},
		{steps.Deploy, steps.Step{Interface: "bios", Step: "apply_configuration"}, driver.ResumeNever},
		{steps.Clean, steps.Step{Interface: "deploy", Step: "erase_devices", InBand: true}, driver.ResumeNever},
	} {
		assert.Equal(t, tc.want, ResumeStep(tc.kind, tc.step, "write_image"), "%s %s", tc.kind, tc.step.ID())
	}
}
