// Package client is ferric-hostd's side of the bootchost protocol: the four calls to the conductor, each bounded
// by a timeout, authenticated by the reporter credential in a header (never in a URL, never logged), over TLS
// verified against the HostConfig's pinned CA when it carries one.
package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/ferric-metal/ferric/bootchost"
)

// ErrUnauthorized is the conductor's 401: the credential is wrong, revoked, or the node is unknown.
var ErrUnauthorized = errors.New("the conductor refused the reporter credential (401): the node's credential was " +
	"revoked or replaced; redeploy the node or write its current credential to the hostd configuration")

// Client talks to one conductor for one node. SetCredential swaps the credential after a rotation.
type Client struct {
	base *url.URL
	node string
	http *http.Client
	mu   sync.Mutex
	cred string
}

// New builds a client from the host configuration. timeout bounds each call.
func New(hc bootchost.HostConfig, timeout time.Duration) (*Client, error) {
	u, err := url.Parse(strings.TrimSuffix(hc.ConductorURL, "/"))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("conductor_url %q is not an http(s) URL", hc.ConductorURL)
	}
	// A clone of the default transport keeps its proxy-from-environment and dial time-outs; one client (and one
	// connection) serves every call of the process.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	if hc.CACert != "" {
		// Pinned: only this CA, not the system roots, vouches for the conductor.
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM([]byte(hc.CACert)) {
			return nil, errors.New("ca_cert holds no PEM certificate; fix ca_cert in the hostd configuration")
		}
		tr.TLSClientConfig.RootCAs = pool
	}
	return &Client{base: u, node: hc.NodeUUID, cred: hc.Credential, http: &http.Client{Transport: tr, Timeout: timeout}}, nil
}

// SetCredential makes later calls use cred.
func (c *Client) SetCredential(cred string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cred = cred
}

func (c *Client) credential() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cred
}

// path fills the protocol's placeholders, escaped.
func (c *Client) path(p, action string) string {
	p = strings.ReplaceAll(p, "{node}", url.PathEscape(c.node))
	return strings.ReplaceAll(p, "{action}", url.PathEscape(action))
}

// Report posts the host's status.
func (c *Client) Report(ctx context.Context, r bootchost.Report) error {
	return c.do(ctx, http.MethodPost, c.path(bootchost.PathReport, ""), r, nil)
}

// Desired asks what to do next.
func (c *Client) Desired(ctx context.Context) (bootchost.Desired, error) {
	var d bootchost.Desired
	err := c.do(ctx, http.MethodGet, c.path(bootchost.PathDesired, ""), nil, &d)
	return d, err
}

// Action reports an action's progress.
func (c *Client) Action(ctx context.Context, id string, u bootchost.ActionUpdate) error {
	return c.do(ctx, http.MethodPost, c.path(bootchost.PathAction, id), u, nil)
}

// Rotate asks for a new credential; the caller stores it before it uses it.
func (c *Client) Rotate(ctx context.Context) (string, error) {
	var r bootchost.CredentialRotation
	if err := c.do(ctx, http.MethodPost, c.path(bootchost.PathCredential, ""), nil, &r); err != nil {
		return "", err
	}
	if r.Credential == "" {
		return "", errors.New("the conductor's credential rotation answer carries no credential")
	}
	return r.Credential, nil
}

// ErrRebootRefused is a FleetLock refusal: every slot of the group is taken (or the lock manager failed); the
// reporter stays staged and asks again later, as Zincati does.
var ErrRebootRefused = errors.New("the FleetLock server refused a reboot slot")

// PreReboot takes a reboot slot of group from the conductor's FleetLock server; ErrRebootRefused (wrapped, with
// the server's answer) when it is not granted.
func (c *Client) PreReboot(ctx context.Context, group string) error {
	return c.fleetLock(ctx, bootchost.PathPreReboot, group)
}

// SteadyState gives the node's reboot slot of group back.
func (c *Client) SteadyState(ctx context.Context, group string) error {
	return c.fleetLock(ctx, bootchost.PathSteadyState, group)
}

// fleetLock makes one FleetLock call with the node's UUID as the client id.
func (c *Client) fleetLock(ctx context.Context, path, group string) error {
	var req bootchost.FleetLockRequest
	req.ClientParams.ID, req.ClientParams.Group = c.node, group
	err := c.doWith(ctx, http.MethodPost, path, req, nil, http.Header{"Fleet-Lock-Protocol": {"true"}})
	if err != nil && !errors.Is(err, ErrUnauthorized) && ctx.Err() == nil {
		return fmt.Errorf("%w: %w", ErrRebootRefused, err)
	}
	return err
}

// do makes one call: JSON in and out, 2xx or an error that carries the status and the start of the body (the
// conductor's answers never hold the credential, but the request's header is never part of an error).
func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	return c.doWith(ctx, method, path, in, out, nil)
}

// doWith is do with more request headers.
func (c *Client) doWith(ctx context.Context, method, path string, in, out any, extra http.Header) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base.String()+path, body)
	if err != nil {
		return err
	}
	for k, v := range extra {
		req.Header[k] = v
	}
	req.Header.Set("Authorization", "Bearer "+c.credential())
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusUnauthorized {
		return fmt.Errorf("%s %s: %w", method, path, ErrUnauthorized)
	}
	// The body is read up to a bound: a misbehaving server cannot make hostd buffer without end.
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%s %s: the conductor answered %s: %s", method, path, resp.Status, strings.TrimSpace(string(b)))
	}
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(out); err != nil {
		return fmt.Errorf("%s %s: reading the answer: %w", method, path, err)
	}
	return nil
}
