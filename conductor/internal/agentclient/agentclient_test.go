package agentclient

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/test/certtest"

	"github.com/ferric-metal/ferric/deploy"
)

// agentStub is a minimal agent command API holding real state: the commands it ran and whether one runs.
type agentStub struct {
	mu       sync.Mutex
	token    string
	commands []Result
	busy     bool
}

func (a *agentStub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if r.URL.Query().Get("agent_token") != a.token {
		w.WriteHeader(http.StatusUnauthorized)
		w.Write([]byte(`{"faultcode":"Client","faultstring":"Token invalid."}`))
		return
	}
	switch r.Method {
	case http.MethodGet:
		json.NewEncoder(w).Encode(map[string]any{"commands": a.commands})
	case http.MethodPost:
		if a.busy {
			w.WriteHeader(http.StatusConflict)
			w.Write([]byte(`{"faultcode":"Client","faultstring":"Agent is busy"}`))
			return
		}
		var req struct {
			Name   string         `json:"name"`
			Params map[string]any `json:"params"`
		}
		json.NewDecoder(r.Body).Decode(&req)
		res := Result{ID: "id-1", CommandName: req.Name, CommandStatus: deploy.StatusSucceeded, CommandResult: json.RawMessage(`{"result":"ok"}`)}
		a.commands = append(a.commands, res)
		a.busy = r.URL.Query().Get("wait") == "false"
		json.NewEncoder(w).Encode(res)
	}
}

func pemOf(_ testing.TB, srv *httptest.Server) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))
}

// selfSigned returns the PEM of a fresh self-signed certificate for 127.0.0.1.
func selfSigned(t *testing.T) string {
	return string(certtest.SelfSigned(t, certtest.Options{CN: "other"}).CertPEM)
}

func TestClient(t *testing.T) {
	stub := &agentStub{token: "tok-123"}
	srv := httptest.NewTLSServer(stub)
	defer srv.Close()
	ctx := context.Background()

	c, err := New(Config{URL: srv.URL, Token: "tok-123", VerifyCA: pemOf(t, srv)})
	require.NoError(t, err)
	r, err := c.Execute(ctx, "standby.sync", nil, true)
	require.NoError(t, err)
	assert.Equal(t, deploy.StatusSucceeded, r.CommandStatus)
	_, err = c.Execute(ctx, "standby.sync", nil, false)
	require.NoError(t, err)
	_, err = c.Execute(ctx, "standby.sync", nil, true)
	assert.ErrorIs(t, err, ErrBusy)
	list, err := c.Commands(ctx)
	require.NoError(t, err)
	assert.Len(t, list, 2)

	bad, err := New(Config{URL: srv.URL, Token: "wrong", VerifyCA: pemOf(t, srv)})
	require.NoError(t, err)
	_, err = bad.Commands(ctx)
	assert.ErrorIs(t, err, ErrUnauthorized)
	assert.NotContains(t, err.Error(), "wrong", "the token never appears in errors")

	// Pinning: another server's certificate is not trusted.
	pinned, err := New(Config{URL: srv.URL, Token: "tok-123", VerifyCA: selfSigned(t), Attempts: 1})
	require.NoError(t, err)
	_, err = pinned.Commands(ctx)
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrIdentity, "a certificate other than the pinned one is an identity failure, not silence")
	assert.NotErrorIs(t, err, ErrUnreachable)
	assert.Contains(t, err.Error(), "certificate")
	assert.NotContains(t, err.Error(), "tok-123")

	_, err = New(Config{URL: srv.URL, Token: "tok-123"})
	assert.ErrorContains(t, err, "agent_verify_ca", "https without a certificate is refused")
	_, err = New(Config{URL: "ftp://x", Token: "t"})
	assert.Error(t, err)
}

func TestRetriesConnectErrorsOnly(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close() // nothing listens: the first attempt is refused
	stub := &agentStub{token: "t"}
	go func() {
		time.Sleep(300 * time.Millisecond)
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return
		}
		http.Serve(l, stub)
	}()
	c, err := New(Config{URL: "http://" + addr, Token: "t", Attempts: 3})
	require.NoError(t, err)
	list, err := c.Commands(context.Background())
	require.NoError(t, err, "connection refused is retried")
	assert.Empty(t, list)

	c2, err := New(Config{URL: "http://" + addr, Token: "bad", Attempts: 3})
	require.NoError(t, err)
	start := time.Now()
	_, err = c2.Commands(context.Background())
	assert.ErrorIs(t, err, ErrUnauthorized)
	assert.Less(t, time.Since(start), 500*time.Millisecond, "answers are not retried")
}

func TestSilentAgentIsUnreachableAtOnce(t *testing.T) {
	// A hung node: the socket accepts connections, nothing ever answers.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			defer conn.Close()
		}
	}()
	c, err := New(Config{URL: "http://" + ln.Addr().String(), Token: "t", Timeout: 200 * time.Millisecond, Attempts: 3})
	require.NoError(t, err)
	start := time.Now()
	_, err = c.Command(context.Background(), "id")
	assert.ErrorIs(t, err, ErrUnreachable)
	assert.Less(t, time.Since(start), time.Second, "a deadline is not retried")

	ln2, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	refused := ln2.Addr().String()
	ln2.Close()
	c2, err := New(Config{URL: "http://" + refused, Token: "t", Attempts: 2})
	require.NoError(t, err)
	_, err = c2.Commands(context.Background())
	assert.ErrorIs(t, err, ErrUnreachable, "refused connections, once retried, are unreachable too")
}

// TestKeepsCallbackPathPrefix checks that a callback_url with a path (agents behind one listener, as the fleet
// simulator serves them: http://host:port/agent/<node>) is called under that path, not at the server's root.
func TestKeepsCallbackPathPrefix(t *testing.T) {
	tests := []struct{ name, suffix, want string }{
		{"a path", "/agent/node-1", "/agent/node-1/v1/commands/"},
		{"a path with a trailing slash", "/agent/node-1/", "/agent/node-1/v1/commands/"},
		{"no path", "", "/v1/commands/"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			var paths []string
			stub := &agentStub{token: "tok"}
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				paths = append(paths, r.URL.Path)
				mu.Unlock()
				stub.ServeHTTP(w, r)
			}))
			defer srv.Close()
			c, err := New(Config{URL: srv.URL + tc.suffix, Token: "tok"})
			require.NoError(t, err)
			defer c.Close()
			_, err = c.Execute(context.Background(), deploy.CmdSync, nil, true)
			require.NoError(t, err)
			_, err = c.Commands(context.Background())
			require.NoError(t, err)
			mu.Lock()
			defer mu.Unlock()
			assert.Equal(t, []string{tc.want, tc.want}, paths)
		})
	}
}
