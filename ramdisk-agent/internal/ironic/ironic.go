// Package ironic owns the agent's side of the conductor's ramdisk API: lookup with backoff, heartbeats, and the
// HTTP client that carries them (which conductor certificates it trusts).
package ironic

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
)

// ErrConflict: the conductor answered 409 (node locked).
var ErrConflict = errors.New("conductor answered 409")

// NewHTTPClient returns the client for the conductor's API: TLS 1.2 or newer, the conductor's certificate verified
// against the system roots plus caPEM (api_ca in agent.json, or --api-ca FILE). The heartbeat carries the agent
// token, so an https api_url is never used unverified.
func NewHTTPClient(caPEM string, timeout time.Duration) (*http.Client, error) {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool() // a ramdisk may have no system roots at all
	}
	if strings.TrimSpace(caPEM) != "" && !pool.AppendCertsFromPEM([]byte(caPEM)) {
		return nil, errors.New("api_ca holds no PEM certificate: pass the conductor's CA certificate (api_ca in agent.json or --api-ca FILE; the conductor's --agent-api-ca)")
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return &http.Client{Timeout: timeout, Transport: tr}, nil
}

// Client talks to the conductor's ramdisk endpoints.
type Client struct {
	Base string // API URL without /v1
	HTTP *http.Client
	Log  *logrus.Entry
	// InspectRetry is the first backoff wait of ContinueInspection (default 5 s; tests shorten it).
	InspectRetry time.Duration
}

// LookupResult is the part of the lookup answer the agent uses.
type LookupResult struct {
	Node struct {
		UUID         string         `json:"uuid"`
		Properties   map[string]any `json:"properties"`
		InstanceInfo map[string]any `json:"instance_info"`
	} `json:"node"`
	Config struct {
		HeartbeatTimeout float64 `json:"heartbeat_timeout"`
		AgentToken       *string `json:"agent_token"`
		// InspectionPowerOff is Ferric's: in a continue_inspection answer it says the conductor will power the
		// node off once it has processed the data, so the agent powers off now (Ferric's ramdisk does not act on
		// the BMC's ACPI shutdown, which would otherwise wait out the BMC driver's graceful timeout). IPA ignores it.
		InspectionPowerOff bool `json:"ferric_inspection_power_off"`
	} `json:"config"`
}

func (c *Client) do(ctx context.Context, method, path, version string, body any, out any) (int, error) {
	var rdr io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		rdr = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.Base, "/")+path, rdr)
	if err != nil {
		return 0, err
	}
	req.Header.Set("X-OpenStack-Ironic-API-Version", version)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := c.HTTP.Do(req)
	if err != nil {
		var cv *tls.CertificateVerificationError
		if errors.As(err, &cv) {
			return 0, fmt.Errorf("conductor %s presented a certificate this agent does not trust (%v): give the agent the conductor's CA certificate (api_ca in agent.json or --api-ca FILE; the conductor sends its --agent-api-ca or --tls-cert)", c.Base, cv.Err)
		}
		return 0, err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if resp.StatusCode == http.StatusConflict {
		return resp.StatusCode, ErrConflict
	}
	if resp.StatusCode >= 300 {
		return resp.StatusCode, fmt.Errorf("conductor answered %d: %s", resp.StatusCode, strings.TrimSpace(string(data)))
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return resp.StatusCode, fmt.Errorf("decode conductor answer: %w", err)
		}
	}
	return resp.StatusCode, nil
}

// Lookup asks for the node by MACs (or UUID) with exponential backoff from 1 s to 60 s until timeout.
func (c *Client) Lookup(ctx context.Context, macs []string, nodeUUID string, timeout time.Duration) (*LookupResult, error) {
	q := url.Values{}
	if len(macs) > 0 {
		q.Set("addresses", strings.Join(macs, ","))
	}
	if nodeUUID != "" {
		q.Set("node_uuid", nodeUUID)
	}
	var res LookupResult
	err := c.retry(ctx, "lookup", timeout, time.Second, func() (bool, error) {
		res = LookupResult{}
		_, err := c.do(ctx, http.MethodGet, "/v1/lookup?"+q.Encode(), "1.68", nil, &res)
		if err == nil && res.Node.UUID == "" {
			err = errors.New("lookup answer has no node uuid")
		}
		return false, err
	})
	if err != nil {
		return nil, fmt.Errorf("lookup failed for %s (addresses %s, node %s): %w", timeout, strings.Join(macs, ","), nodeUUID, err)
	}
	return &res, nil
}

// retry is the agent's backoff: it calls attempt until it succeeds, says stop (a permanent failure), ctx ends, or
// the next wait would pass timeout; waits double from first to 60 s, with up to half of each added as jitter.
func (c *Client) retry(ctx context.Context, what string, timeout, first time.Duration, attempt func() (stop bool, err error)) error {
	deadline := time.Now().Add(timeout)
	wait := first
	for n := 1; ; n++ {
		stop, err := attempt()
		if err == nil || stop {
			return err
		}
		if time.Now().Add(wait).After(deadline) {
			return err
		}
		c.Log.WithError(err).WithField("attempt", n).WithField("retry_in", wait.String()).Warn(what + " failed; retrying")
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait + time.Duration(rand.Int64N(int64(wait)/2+1))):
		}
		if wait *= 2; wait > 60*time.Second {
			wait = 60 * time.Second
		}
	}
}

// Heartbeat is one heartbeat.
type Heartbeat struct {
	CallbackURL   string `json:"callback_url"`
	AgentToken    string `json:"agent_token"`
	AgentVersion  string `json:"agent_version"`
	AgentVerifyCA string `json:"agent_verify_ca,omitempty"`
}

// Heartbeat posts a heartbeat; the conductor answers 202.
func (c *Client) Heartbeat(ctx context.Context, nodeUUID string, hb Heartbeat) error {
	_, err := c.do(ctx, http.MethodPost, "/v1/heartbeat/"+url.PathEscape(nodeUUID), "1.68", hb, nil)
	return err
}
