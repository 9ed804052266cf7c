// Package agentclient owns the conductor's calls to a node's agent command API (IPA's protocol on port 9999):
// every call carries the node's agent token, is bounded by a deadline, trusts only the certificate the agent
// sent in its heartbeat (when it uses https), and is retried on connection errors only.
package agentclient

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/ferric-metal/ferric/conductor/internal/transport"
	"github.com/ferric-metal/ferric/deploy"
)

// Sentinel errors.
var (
	// ErrBusy: the agent is running another command (HTTP 409).
	ErrBusy = errors.New("agent is busy")
	// ErrUnauthorized: the agent refused the token (HTTP 401).
	ErrUnauthorized = errors.New("agent refused the token")
	// ErrUnreachable: no answer came from the agent (refused connections, deadline).
	ErrUnreachable = errors.New("the agent did not answer")
	// ErrIdentity: the agent answered with a TLS certificate other than the one pinned by its first heartbeat.
	// Unlike silence this does not heal by waiting: something else holds the agent's address, or the agent
	// restarted with a new key; either way the conductor must not go on sending it secrets.
	ErrIdentity = errors.New("the agent's TLS certificate is not the pinned one")
)

// Result is a command result as the agent reports it (the shared contract's type).
type Result = deploy.CommandResult

// APIError is a non-2xx answer from the agent.
type APIError struct {
	Status int
	Body   string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("agent answered %d: %s", e.Status, strings.TrimSpace(e.Body))
}

// Config describes how to reach one agent.
type Config struct {
	URL      string        // callback_url from the heartbeat
	Token    string        // the node's agent token
	VerifyCA string        // PEM certificate the agent sent (agent_verify_ca); required for https
	Timeout  time.Duration // per request (default 60 s, Ironic's command_timeout)
	Attempts int           // connection attempts (default 3)
	// Transports shares one keep-alive transport per agent and pinned certificate between the clients built
	// for each poll; nil gives the client a transport of its own, closed by Close.
	Transports *transport.Cache
}

// Client talks to one agent.
type Client struct {
	cfg  Config
	http *http.Client
	base *url.URL
}

// New builds a client for an agent.
func New(cfg Config) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(cfg.URL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("agent url %q: expected http(s)://host:port", cfg.URL)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 60 * time.Second
	}
	if cfg.Attempts == 0 {
		cfg.Attempts = 3
	}
	ts := transport.Settings{Scheme: u.Scheme, Host: u.Host}
	if u.Scheme == "https" {
		if cfg.VerifyCA == "" {
			return nil, errors.New("agent uses https but sent no certificate (agent_verify_ca); refusing to talk to it unverified")
		}
		ts.CAPEM = []byte(cfg.VerifyCA)
	}
	var tr http.RoundTripper
	if cfg.Transports != nil {
		tr, err = cfg.Transports.Get(ts)
	} else {
		tr, err = transport.Build(ts, transport.Config{MaxIdleConnsPerHost: 2, IdleConnTimeout: 30 * time.Second})
	}
	if errors.Is(err, transport.ErrNoCertificate) {
		return nil, errors.New("agent_verify_ca holds no PEM certificate")
	}
	if err != nil {
		return nil, fmt.Errorf("agent url %q: %w", cfg.URL, err)
	}
	return &Client{cfg: cfg, http: &http.Client{Transport: tr, Timeout: cfg.Timeout}, base: u}, nil
}

// Close releases the idle connections of a transport of the client's own; a shared transport keeps them for
// the next poll (the cache closes them).
func (c *Client) Close() { c.http.CloseIdleConnections() }

func (c *Client) url(path string, q url.Values) string {
	if q == nil {
		q = url.Values{}
	}
	q.Set("agent_token", c.cfg.Token)
	return c.base.String() + path + "?" + q.Encode()
}

// do sends one request, retrying only when the connection could not be made.
func (c *Client) do(ctx context.Context, method, path string, q url.Values, body any, out any) error {
	var payload []byte
	if body != nil {
		var err error
		if payload, err = json.Marshal(body); err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
	}
	var lastErr error
	for attempt := 0; attempt < c.cfg.Attempts; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Duration(attempt) * time.Second):
			}
		}
		req, err := http.NewRequestWithContext(ctx, method, c.url(path, q), bytes.NewReader(payload))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := c.http.Do(req)
		if err != nil {
			lastErr = scrub(err, c.cfg.Token)
			if isConnectError(err) && ctx.Err() == nil {
				continue
			}
			if isCertificateError(err) {
				return fmt.Errorf("%w: %v", ErrIdentity, lastErr)
			}
			return fmt.Errorf("%w: %v", ErrUnreachable, lastErr)
		}
		data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("read agent answer: %w", err)
		}
		switch {
		case resp.StatusCode == http.StatusConflict:
			return fmt.Errorf("%w: %s", ErrBusy, strings.TrimSpace(string(data)))
		case resp.StatusCode == http.StatusUnauthorized:
			return ErrUnauthorized
		case resp.StatusCode >= 300:
			return &APIError{Status: resp.StatusCode, Body: string(data)}
		}
		if out == nil {
			return nil
		}
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("decode agent answer: %w", err)
		}
		return nil
	}
	return fmt.Errorf("%w: %s refused %d connection attempts: %v", ErrUnreachable, c.base.Host, c.cfg.Attempts, lastErr)
}

// isConnectError reports errors where the request never reached the agent.
func isConnectError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// isCertificateError reports a failed verification of the agent's certificate against the pinned one.
func isCertificateError(err error) bool {
	var (
		unknown  x509.UnknownAuthorityError
		host     x509.HostnameError
		invalid  x509.CertificateInvalidError
		verifErr *tls.CertificateVerificationError
	)
	return errors.As(err, &unknown) || errors.As(err, &host) || errors.As(err, &invalid) || errors.As(err, &verifErr)
}

// scrub removes the token from an error text (url.Error includes the URL).
func scrub(err error, token string) error {
	if token == "" {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), token, "***"))
}

// Execute starts a command ("ext.name" with params). With wait the agent answers when it finished.
func (c *Client) Execute(ctx context.Context, name string, params any, wait bool) (*Result, error) {
	if params == nil {
		params = map[string]any{}
	}
	var r Result
	q := url.Values{"wait": {fmt.Sprint(wait)}}
	if err := c.do(ctx, http.MethodPost, "/v1/commands/", q, map[string]any{"name": name, "params": params}, &r); err != nil {
		return nil, fmt.Errorf("run %s on the agent: %w", name, err)
	}
	return &r, nil
}

// Commands lists the commands the agent ran, in order.
func (c *Client) Commands(ctx context.Context) ([]Result, error) {
	var out struct {
		Commands []Result `json:"commands"`
	}
	if err := c.do(ctx, http.MethodGet, "/v1/commands/", nil, nil, &out); err != nil {
		return nil, fmt.Errorf("list agent commands: %w", err)
	}
	return out.Commands, nil
}

// Command returns one command's result.
func (c *Client) Command(ctx context.Context, id string) (*Result, error) {
	var r Result
	if err := c.do(ctx, http.MethodGet, "/v1/commands/"+url.PathEscape(id), nil, nil, &r); err != nil {
		return nil, fmt.Errorf("get agent command %s: %w", id, err)
	}
	return &r, nil
}
