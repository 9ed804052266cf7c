// Package api owns the agent's command API (IPA's protocol on port 9999): the token check, one command at a
// time, IPA's command result JSON, and the progress of the running command.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/mux"
	"github.com/sirupsen/logrus"

	"github.com/ferric-metal/ferric/deploy"
)

// Handler runs a command. The returned value becomes command_result.
// ctx is the server's (New), not the request's: an async command outlives the HTTP call that started it. c is nil
// only for the progress query, which runs outside the command slot; an error fails the command (a *ClientError
// as code 400, any other as 500).
type Handler func(ctx context.Context, params json.RawMessage, c *Command) (any, error)

// Spec registers a command.
type Spec struct {
	Handler Handler
	// Async commands answer at once with RUNNING (unless wait=true); sync ones answer when done.
	Async bool
}

// ClientError marks an error caused by the request (command_error code 400).
type ClientError struct{ Err error }

// Error and Unwrap let errors.As find the cause through a ClientError, and post tell it from the agent's failures.
func (e *ClientError) Error() string { return e.Err.Error() }
func (e *ClientError) Unwrap() error { return e.Err }

// maxLines is how many log lines a command keeps for progress reports.
const maxLines = 2000

// Command is one command's state; it implements the installer's progress reporter.
// Its fields after mu are read by the API while the handler writes them, so every access takes mu; done is closed
// once the handler has returned and the result is set.
type Command struct {
	ID   string
	Name string // "ext.cmd"

	mu         sync.Mutex
	status     string
	err        *deploy.CommandError
	result     any
	phase      string
	bytesDone  int64
	bytesTotal int64
	lines      []string
	dropped    int
	started    time.Time
	phases     []deploy.Phase
	done       chan struct{}
}

// Phase records the current phase.
func (c *Command) Phase(name string) {
	c.mu.Lock()
	c.phase = name
	c.mu.Unlock()
	// The phase change also goes to the log lines, so that a reader of the lines alone sees where the install was.
	c.Line("phase: " + name)
}

// Bytes records download progress.
func (c *Command) Bytes(done, total int64) {
	c.mu.Lock()
	c.bytesDone, c.bytesTotal = done, total
	c.mu.Unlock()
}

// Line appends a log line.
func (c *Command) Line(s string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lines = append(c.lines, time.Now().UTC().Format("15:04:05.000")+" "+s)
	// Old lines are dropped, not new ones, and counted in dropped, so that Progress offsets stay absolute.
	if len(c.lines) > maxLines {
		c.dropped += len(c.lines) - maxLines
		c.lines = c.lines[len(c.lines)-maxLines:]
	}
}

// SetPhases records the final phase timings.
func (c *Command) SetPhases(p []deploy.Phase) {
	c.mu.Lock()
	c.phases = p
	c.mu.Unlock()
}

// view is the command as IPA's command result JSON (what Ironic's agent client parses): command_name without the
// extension prefix, command_result null while there is none.
func (c *Command) view() deploy.CommandResult {
	c.mu.Lock()
	defer c.mu.Unlock()
	var raw json.RawMessage
	if c.result != nil {
		raw, _ = json.Marshal(c.result)
	} else {
		raw = json.RawMessage("null")
	}
	short := c.Name
	if _, after, ok := strings.Cut(c.Name, "."); ok {
		short = after
	}
	return deploy.CommandResult{ID: c.ID, CommandName: short, CommandStatus: c.status, CommandError: c.err, CommandResult: raw}
}

// Progress returns the progress with log lines from offset since.
func (c *Command) Progress(since int) deploy.Progress {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := deploy.Progress{CommandID: c.ID, Command: c.Name, Status: c.status, Phase: c.phase, BytesDone: c.bytesDone,
		BytesTotal: c.bytesTotal, Started: c.started, Phases: c.phases}
	if c.bytesTotal > 0 {
		// One decimal, truncated, and capped at 100 in case a source sends more than it announced.
		p.Percent = float64(int(1000*float64(c.bytesDone)/float64(c.bytesTotal))) / 10
		if p.Percent > 100 {
			p.Percent = 100
		}
	}
	// since counts lines from the command's start: a reader behind the dropped lines resumes at the oldest kept one.
	first := since - c.dropped
	if first < 0 {
		first = 0
	}
	if first < len(c.lines) {
		p.Lines = append([]string(nil), c.lines[first:]...)
	}
	p.LineOffset = c.dropped + len(c.lines)
	return p
}

// Lines returns every kept log line.
func (c *Command) Lines() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.lines...)
}

// Config configures the server.
type Config struct {
	Version string
	// Token returns the current agent token ("" = none yet: every command call is refused).
	Token func() string
	// OnCommandDone runs after every asynchronous command (the agent forces a heartbeat).
	OnCommandDone func()
	Log           *logrus.Entry
}

// Server serves the command API.
// history keeps every command of this boot, oldest first; only its last one can be running (post refuses a second).
type Server struct {
	cfg      Config
	commands map[string]Spec
	started  time.Time
	ctx      context.Context

	mu      sync.Mutex
	history []*Command
	// router serves the API (routes.go); built once in New.
	router http.Handler
}

// New returns a server; ctx bounds every command's run.
func New(ctx context.Context, cfg Config, commands map[string]Spec) *Server {
	s := &Server{cfg: cfg, commands: commands, started: time.Now(), ctx: ctx}
	s.router = s.newRouter()
	return s
}

// fault is IPA's error body (faultcode, faultstring): Ironic's agent client reads faultstring, and takes a 409
// or "agent is busy" in it for AgentInProgress.
type fault struct {
	Faultcode   string `json:"faultcode"`
	Faultstring string `json:"faultstring"`
}

// writeJSON answers with v as JSON; an encoding error is not reported, the status line being out already.
func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// writeFault answers with a fault: "Client" for 4xx and "Server" for 5xx, as IPA's faultcode does. msg goes to the
// conductor and its logs: it must not carry the token.
func writeFault(w http.ResponseWriter, code int, msg string) {
	fc := "Client"
	if code >= 500 {
		fc = "Server"
	}
	writeJSON(w, code, fault{fc, msg})
}

// ServeHTTP serves the API through the router built in New (routes.go).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.router.ServeHTTP(w, r) }

// root serves the versions document (any method, no token).
func (s *Server) root(w http.ResponseWriter, _ *http.Request) {
	v1 := map[string]any{"id": "v1", "links": []map[string]string{{"href": "/v1/", "rel": "self"}}}
	writeJSON(w, 200, map[string]any{"name": "OpenStack Ironic Python Agent API", "description": "Ferric agent (IPA-compatible)",
		"versions": []any{v1}, "default_version": v1})
}

// v1 serves the v1 document (any method, no token).
func (s *Server) v1(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, 200, map[string]any{"id": "v1", "commands": []map[string]string{{"href": "/v1/commands/", "rel": "self"}},
		"status":      []map[string]string{{"href": "/v1/status/", "rel": "self"}},
		"media_types": []map[string]string{{"base": "application/json", "type": "application/vnd.openstack.ironic-python-agent.v1+json"}}})
}

// status serves the agent's start time and version (any method, no token).
func (s *Server) status(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, 200, map[string]any{"started_at": float64(s.started.UnixNano()) / 1e9, "version": s.cfg.Version})
}

// listCommands serves GET /commands: every command run so far, oldest first.
func (s *Server) listCommands(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	out := make([]deploy.CommandResult, 0, len(s.history))
	for _, c := range s.history {
		out = append(out, c.view())
	}
	s.mu.Unlock()
	writeJSON(w, 200, map[string]any{"commands": out})
}

// getCommand serves GET /commands/{id}; with wait=true it answers when the command has finished.
func (s *Server) getCommand(w http.ResponseWriter, r *http.Request) {
	id := mux.Vars(r)["id"]
	c := s.find(id)
	if c == nil {
		writeFault(w, 404, "Command "+id+" not found")
		return
	}
	if r.URL.Query().Get("wait") == "true" {
		s.wait(r.Context(), c)
	}
	writeJSON(w, 200, c.view())
}

// find returns the command with this id, nil when none ran in this boot.
func (s *Server) find(id string) *Command {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.history {
		if c.ID == id {
			return c
		}
	}
	return nil
}

// wait blocks until c has finished or ctx (the request's: the caller gave up) ends.
func (s *Server) wait(ctx context.Context, c *Command) {
	select {
	case <-c.done:
	case <-ctx.Done():
	}
}

// Last returns the most recent command (nil when none).
func (s *Server) Last() *Command {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.history) == 0 {
		return nil
	}
	return s.history[len(s.history)-1]
}

// post serves POST /commands: it validates the request, takes the one command slot and runs the command: at
// once for sync commands and for async ones with wait=true (which Ironic's agent client sends when it wants
// the result in the answer), else in the background.
func (s *Server) post(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Name   string          `json:"name"`
		Params json.RawMessage `json:"params"`
	}
	// 80 MiB bounds a body (configdrives travel in params, base64 and gzipped) without letting a client exhaust RAM.
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 80<<20))
	if err := dec.Decode(&req); err != nil {
		writeFault(w, 400, "Invalid JSON body: "+err.Error())
		return
	}
	if req.Name == "" || !strings.Contains(req.Name, ".") {
		writeFault(w, 400, "Missing or invalid command name: use \"<extension>.<command>\"")
		return
	}
	// A missing or non-object params is refused here, so that no handler has to check it.
	if len(req.Params) == 0 || req.Params[0] != '{' {
		writeFault(w, 400, "Missing or invalid params: params must be an object")
		return
	}
	spec, ok := s.commands[req.Name]
	if !ok {
		writeFault(w, 404, fmt.Sprintf("Unknown command: %s", req.Name))
		return
	}
	// The progress query is answered at once and never takes the command slot.
	if req.Name == deploy.CmdProgress {
		res, err := spec.Handler(r.Context(), req.Params, nil)
		if err != nil {
			writeFault(w, 400, err.Error())
			return
		}
		writeJSON(w, 200, deploy.CommandResult{ID: uuid.NewString(), CommandName: "progress", CommandStatus: deploy.StatusSucceeded,
			CommandResult: mustJSON(res)})
		return
	}
	// One command at a time, as IPA: the slot is checked and taken under s.mu, so two racing posts cannot both
	// start. The busy answer is a 409 "Agent is busy", which Ironic's agent client raises as AgentInProgress.
	s.mu.Lock()
	if n := len(s.history); n > 0 {
		last := s.history[n-1]
		select {
		case <-last.done:
		default:
			s.mu.Unlock()
			writeFault(w, 409, "Agent is busy: command "+last.Name+" is still running")
			return
		}
	}
	c := &Command{ID: uuid.NewString(), Name: req.Name, status: deploy.StatusRunning, started: time.Now().UTC(), done: make(chan struct{})}
	s.history = append(s.history, c)
	s.mu.Unlock()
	s.cfg.Log.WithField("command", req.Name).WithField("id", c.ID).Info("command started")
	run := func() {
		defer close(c.done)
		res, err := spec.Handler(s.ctx, req.Params, c)
		c.mu.Lock()
		if err != nil {
			code := 500
			var ce *ClientError
			// The type is CommandExecutionError for both: Ironic's agent client fails at once only on the type
			// TypeError, and leaves any other failure to the step that reads command_status and command_error.
			if errors.As(err, &ce) {
				code = 400
			}
			c.status = deploy.StatusFailed
			c.err = &deploy.CommandError{Type: "CommandExecutionError", Code: code, Message: err.Error(), Details: err.Error()}
		} else {
			c.status = deploy.StatusSucceeded
			c.result = res
		}
		c.mu.Unlock()
		s.cfg.Log.WithField("command", req.Name).WithField("status", c.status).Info("command finished")
		if spec.Async && s.cfg.OnCommandDone != nil {
			// Async completion triggers a heartbeat so that the conductor learns of it without waiting for the interval.
			go s.cfg.OnCommandDone()
		}
	}
	if spec.Async && r.URL.Query().Get("wait") != "true" {
		go run()
	} else {
		run()
	}
	writeJSON(w, 200, c.view())
}

// mustJSON marshals a handler's result; a value that does not marshal becomes null rather than a broken body.
func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		return json.RawMessage("null")
	}
	return b
}
