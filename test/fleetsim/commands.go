package fleetsim

// The agents' command API, as Ferric's agent serves it (IPA's protocol) for the calls a bootc deploy makes:
// POST /v1/commands (standby.execute_bootc_install asynchronously, ferric.progress at once, standby.power_off),
// GET /v1/commands and GET /v1/commands/{id} (with wait=true), every call with ?agent_token=. One router serves
// every agent under /agent/{node}; a node whose agent is off closes the connection unanswered, which is what the
// conductor sees of a machine that is not running its agent.

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/mux"

	"github.com/ferric-metal/ferric/deploy"
)

// command is one command an agent ran.
type command struct {
	id, name string
	started  time.Time
	done     chan struct{}

	mu     sync.Mutex
	status string
	phase  string
	bytes  int64
	total  int64
	lines  []string
	result any
	err    *deploy.CommandError
}

// view is IPA's command result JSON (command_name without its extension).
func (c *command) view() deploy.CommandResult {
	c.mu.Lock()
	defer c.mu.Unlock()
	raw := json.RawMessage("null")
	if c.result != nil {
		raw, _ = json.Marshal(c.result)
	}
	_, short, _ := strings.Cut(c.name, ".")
	return deploy.CommandResult{ID: c.id, CommandName: short, CommandStatus: c.status, CommandError: c.err, CommandResult: raw}
}

// progress is the command's deploy.Progress with the log lines from since on.
func (c *command) progress(since int) deploy.Progress {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := deploy.Progress{CommandID: c.id, Command: c.name, Status: c.status, Phase: c.phase, BytesDone: c.bytes,
		BytesTotal: c.total, Started: c.started, LineOffset: len(c.lines)}
	if c.total > 0 {
		p.Percent = float64(int(1000*float64(c.bytes)/float64(c.total))) / 10
	}
	if since >= 0 && since < len(c.lines) {
		p.Lines = append([]string(nil), c.lines[since:]...)
	}
	return p
}

// step moves the command to a phase with a log line.
func (c *command) step(phase string, done, total int64) {
	c.mu.Lock()
	c.phase, c.bytes, c.total = phase, done, total
	c.lines = append(c.lines, time.Now().UTC().Format("15:04:05.000")+" phase: "+phase)
	c.mu.Unlock()
}

// router serves every agent's command API under /agent/{node}.
func (f *Fleet) router() http.Handler {
	r := mux.NewRouter()
	r.HandleFunc("/agent/{node}/v1/commands", f.withAgent(listCommands)).Methods(http.MethodGet)
	r.HandleFunc("/agent/{node}/v1/commands/", f.withAgent(listCommands)).Methods(http.MethodGet)
	r.HandleFunc("/agent/{node}/v1/commands", f.withAgent(postCommand)).Methods(http.MethodPost)
	r.HandleFunc("/agent/{node}/v1/commands/", f.withAgent(postCommand)).Methods(http.MethodPost)
	r.HandleFunc("/agent/{node}/v1/commands/{id}", f.withAgent(getCommand)).Methods(http.MethodGet)
	return r
}

// withAgent finds the node's running agent and checks the token before handing the request to h. A node without
// a running agent drops the connection (a powered-off machine does not answer); a wrong token is IPA's 401.
func (f *Fleet) withAgent(h func(a *Agent, w http.ResponseWriter, r *http.Request)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		a := f.agent(mux.Vars(r)["node"])
		if a == nil {
			if hj, ok := w.(http.Hijacker); ok {
				if conn, _, err := hj.Hijack(); err == nil {
					conn.Close()
					return
				}
			}
			http.Error(w, "agent is off", http.StatusServiceUnavailable)
			return
		}
		a.mu.Lock()
		tok := a.token
		a.mu.Unlock()
		got := r.URL.Query().Get("agent_token")
		if tok == "" || subtle.ConstantTimeCompare([]byte(tok), []byte(got)) != 1 {
			writeFault(w, http.StatusUnauthorized, "Token invalid.")
			return
		}
		h(a, w, r)
	}
}

// writeFault answers with IPA's error body.
func writeFault(w http.ResponseWriter, code int, msg string) {
	fc := "Client"
	if code >= 500 {
		fc = "Server"
	}
	writeJSON(w, code, map[string]string{"faultcode": fc, "faultstring": msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func listCommands(a *Agent, w http.ResponseWriter, _ *http.Request) {
	a.mu.Lock()
	out := make([]deploy.CommandResult, 0, len(a.history))
	for _, c := range a.history {
		out = append(out, c.view())
	}
	a.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"commands": out})
}

func getCommand(a *Agent, w http.ResponseWriter, r *http.Request) {
	id := mux.Vars(r)["id"]
	var c *command
	a.mu.Lock()
	for _, x := range a.history {
		if x.id == id {
			c = x
		}
	}
	a.mu.Unlock()
	if c == nil {
		writeFault(w, http.StatusNotFound, "Command "+id+" not found")
		return
	}
	if r.URL.Query().Get("wait") == "true" {
		select {
		case <-c.done:
		case <-r.Context().Done():
		}
	}
	writeJSON(w, http.StatusOK, c.view())
}

// postCommand starts a command: one at a time (409 while one runs, as IPA), the progress query outside the slot.
func postCommand(a *Agent, w http.ResponseWriter, r *http.Request) {
	var req struct {
		Name   string          `json:"name"`
		Params json.RawMessage `json:"params"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 80<<20)).Decode(&req); err != nil {
		writeFault(w, http.StatusBadRequest, "Invalid JSON body: "+err.Error())
		return
	}
	if req.Name == deploy.CmdProgress {
		a.progress(w, req.Params)
		return
	}
	run, ok := a.handler(req.Name)
	if !ok {
		writeFault(w, http.StatusNotFound, "Unknown command: "+req.Name)
		return
	}
	c := &command{id: uuid.NewString(), name: req.Name, started: time.Now().UTC(), status: deploy.StatusRunning, done: make(chan struct{})}
	a.mu.Lock()
	if n := len(a.history); n > 0 {
		select {
		case <-a.history[n-1].done:
		default:
			a.mu.Unlock()
			writeFault(w, http.StatusConflict, "Agent is busy: command "+a.history[n-1].name+" is still running")
			return
		}
	}
	a.history = append(a.history, c)
	a.mu.Unlock()
	// The command runs in the fleet's context, not the request's: it outlives the call that started it.
	go func() {
		run(a.fleet.ctx, c, req.Params)
		close(c.done)
		if req.Name != deploy.CmdPowerOff {
			a.forceHeartbeat()
		}
	}()
	if r.URL.Query().Get("wait") == "true" {
		<-c.done
	}
	writeJSON(w, http.StatusOK, c.view())
	if req.Name == deploy.CmdPowerOff {
		// The machine goes down after it answered, as IPA's power_off does.
		<-c.done
		a.selfOff.Store(true)
		a.fleet.powerOffAgent(a)
	}
}

// progress answers ferric.progress for the last command at once.
func (a *Agent) progress(w http.ResponseWriter, params json.RawMessage) {
	var p struct {
		Since int `json:"since"`
	}
	_ = json.Unmarshal(params, &p) // no since: from the start
	a.mu.Lock()
	var last *command
	if n := len(a.history); n > 0 {
		last = a.history[n-1]
	}
	a.mu.Unlock()
	var res deploy.Progress
	if last != nil {
		res = last.progress(p.Since)
	}
	writeJSON(w, http.StatusOK, deploy.CommandResult{ID: uuid.NewString(), CommandName: "progress",
		CommandStatus: deploy.StatusSucceeded, CommandResult: mustJSON(res)})
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		return json.RawMessage("null")
	}
	return b
}

// handler returns the function that runs command name; it sets the command's final status.
func (a *Agent) handler(name string) (func(ctx context.Context, c *command, params json.RawMessage), bool) {
	switch name {
	case deploy.CmdBootcInstall:
		return a.install, true
	case deploy.CmdPowerOff, deploy.CmdSync, deploy.CmdCollectLogs:
		return func(_ context.Context, c *command, _ json.RawMessage) { c.finish(map[string]any{}, nil) }, true
	}
	return nil, false
}

// finish records the command's outcome: result on success, else a failure with msg.
func (c *command) finish(result any, failure error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if failure != nil {
		c.status = deploy.StatusFailed
		c.err = &deploy.CommandError{Type: "CommandExecutionError", Code: 500, Message: failure.Error(), Details: failure.Error()}
		return
	}
	c.status, c.result = deploy.StatusSucceeded, result
}

// imageBytes is the size the simulated pull reports (a small bootc image).
const imageBytes = 900 << 20

// install runs standby.execute_bootc_install: it counts the install for the node, then spends Timing.Install in
// three phases (pull with byte progress, install, config drive) and reports the pinned digest as installed, which
// is what the conductor checks. It fails at once on params the conductor must never send (no pinned digest).
func (a *Agent) install(ctx context.Context, c *command, raw json.RawMessage) {
	a.fleet.countInstall(a.uuid)
	var p deploy.BootcInstallParams
	if err := json.Unmarshal(raw, &p); err != nil {
		c.finish(nil, errorf("invalid params: %v", err))
		return
	}
	ref := strings.TrimPrefix(p.ImageSource, "oci://")
	_, digest, ok := strings.Cut(ref, "@")
	if !ok {
		c.finish(nil, errorf("image_source %q is not pinned to a digest", p.ImageSource))
		return
	}
	total := a.fleet.cfg.Timing.Install
	pull, rest := total*6/10, total*3/10
	const ticks = 6
	for i := 1; i <= ticks; i++ {
		if !sleep(ctx, pull/ticks) {
			c.finish(nil, ctx.Err())
			return
		}
		c.step("pulling image", int64(i)*imageBytes/ticks, imageBytes)
	}
	c.step("installing", imageBytes, imageBytes)
	if !sleep(ctx, rest) {
		c.finish(nil, ctx.Err())
		return
	}
	c.step("writing config drive", imageBytes, imageBytes)
	if !sleep(ctx, total-pull-rest) {
		c.finish(nil, ctx.Err())
		return
	}
	a.fleet.markInstalled(a.uuid)
	c.finish(deploy.InstallResult{Message: "installed", Device: "/dev/sda", DeviceReason: "the only disk", ImageRef: ref,
		ImageDigest: digest, RootSizeMiB: 20480, Phases: []deploy.Phase{{Name: "pull", Seconds: pull.Seconds()},
			{Name: "install", Seconds: rest.Seconds()}}}, nil)
}

// errorf is fmt.Errorf for command failures (a separate name keeps the handlers readable).
func errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }
