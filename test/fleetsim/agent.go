package fleetsim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// AgentVersion is what the simulated agents report as agent_version.
const AgentVersion = "fleetsim-1.0"

// apiVersion is the microversion the agents speak, as Ferric's agent does (token, callback URL, agent_version).
const apiVersion = "1.68"

// Agent is the simulated ramdisk agent of one node boot.
type Agent struct {
	fleet *Fleet
	uuid  string
	macs  []string
	stop  context.CancelFunc
	// bootDelay is the time from Boot to the first lookup.
	bootDelay time.Duration
	// force asks the heartbeat loop for a heartbeat now (after a command finished, as IPA does).
	force chan struct{}
	// onStop, when set (the BMC's machine), learns that the agent stopped: byAgent when its own
	// standby.power_off stopped it, rather than a power off from outside.
	onStop  func(byAgent bool)
	selfOff atomic.Bool

	mu       sync.Mutex
	token    string
	history  []*command
	interval time.Duration
}

// run is the agent's life: boot delay, lookup until the node waits for it, then heartbeats until ctx ends.
func (a *Agent) run(ctx context.Context) {
	if a.onStop != nil {
		defer func() { a.onStop(a.selfOff.Load()) }()
	}
	if !sleep(ctx, a.bootDelay) {
		return
	}
	if err := a.lookup(ctx); err != nil {
		return // ctx ended
	}
	a.heartbeats(ctx)
}

// callbackURL is the agent's command API as the conductor calls it.
func (a *Agent) callbackURL() string { return a.fleet.base + "/agent/" + a.uuid }

// lookup asks the conductors for the node by MAC address until one answers with the node and its token (the
// node is not waiting for an agent before that: 404), waiting LookupRetry, doubling up to 4 times it.
func (a *Agent) lookup(ctx context.Context) error {
	wait := a.fleet.cfg.Timing.LookupRetry
	q := url.Values{"addresses": {strings.Join(a.macs, ",")}}
	for {
		var ans struct {
			Node struct {
				UUID string `json:"uuid"`
			} `json:"node"`
			Config struct {
				HeartbeatTimeout float64 `json:"heartbeat_timeout"`
				AgentToken       string  `json:"agent_token"`
			} `json:"config"`
		}
		code, err := a.call(ctx, http.MethodGet, "/v1/lookup?"+q.Encode(), nil, &ans)
		switch {
		case err == nil && code == http.StatusOK && ans.Node.UUID == a.uuid && ans.Config.AgentToken != "" &&
			ans.Config.AgentToken != "******":
			a.mu.Lock()
			a.token = ans.Config.AgentToken
			a.interval = a.fleet.cfg.Timing.Heartbeat
			if a.interval <= 0 {
				a.interval = time.Duration(ans.Config.HeartbeatTimeout * float64(time.Second))
			}
			a.mu.Unlock()
			a.fleet.lookups.Add(1)
			return nil
		case err == nil && code == http.StatusOK:
			// A masked token means an earlier lookup of this boot got it and its answer was lost; IPA would be
			// stuck too. Logged so that a run shows it; the agent keeps asking (a new deploy issues a new one).
			a.fleet.cfg.Log.WithField("node", a.uuid).WithField("answered_node", ans.Node.UUID).
				WithField("token", ans.Config.AgentToken != "").Info("lookup answered without a usable token")
		}
		if !sleep(ctx, wait) {
			return ctx.Err()
		}
		wait = min(wait*2, 4*a.fleet.cfg.Timing.LookupRetry)
	}
}

// heartbeats posts a heartbeat at once, then every interval (or sooner when forced), until ctx ends.
func (a *Agent) heartbeats(ctx context.Context) {
	for {
		a.heartbeat(ctx)
		a.mu.Lock()
		iv := a.interval
		a.mu.Unlock()
		if a.fleet.cfg.Timing.Heartbeat > 0 {
			iv = time.Duration(float64(iv) * (0.8 + 0.4*rand.Float64()))
		} else {
			iv = time.Duration(float64(iv) * (0.3 + 0.3*rand.Float64())) // IPA's rule
		}
		t := time.NewTimer(iv)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-a.force:
			t.Stop()
		case <-t.C:
		}
	}
}

// heartbeat posts one heartbeat and records its latency (202) or its failure.
func (a *Agent) heartbeat(ctx context.Context) {
	a.mu.Lock()
	body := map[string]string{"callback_url": a.callbackURL(), "agent_token": a.token, "agent_version": AgentVersion}
	a.mu.Unlock()
	start := time.Now()
	code, err := a.call(ctx, http.MethodPost, "/v1/heartbeat/"+a.uuid, body, nil)
	switch {
	case ctx.Err() != nil:
		// Powered off in the middle: not a conductor's failure.
	case err != nil || code != http.StatusAccepted:
		a.fleet.beats.Fail()
		a.fleet.cfg.Log.WithField("node", a.uuid).WithField("status", code).WithError(err).Debug("heartbeat failed")
	default:
		a.fleet.beats.Add(time.Since(start))
	}
}

// forceHeartbeat asks for a heartbeat now; one pending request is enough.
func (a *Agent) forceHeartbeat() {
	select {
	case a.force <- struct{}{}:
	default:
	}
}

// call sends one request to the conductors (round-robin, skipping refused ones) and decodes a 2xx answer into out.
func (a *Agent) call(ctx context.Context, method, path string, body, out any) (int, error) {
	var payload []byte
	if body != nil {
		var err error
		if payload, err = json.Marshal(body); err != nil {
			return 0, err
		}
	}
	resp, err := a.fleet.send(ctx, func(base string) (*http.Request, error) {
		req, err := http.NewRequest(method, base+path, bytes.NewReader(payload))
		if err != nil {
			return nil, err
		}
		req.Header.Set("X-OpenStack-Ironic-API-Version", apiVersion)
		req.Header.Set("Content-Type", "application/json")
		return req, nil
	})
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return resp.StatusCode, err
	}
	if resp.StatusCode >= 300 || out == nil {
		return resp.StatusCode, nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return resp.StatusCode, fmt.Errorf("decode the conductor's answer: %w", err)
	}
	return resp.StatusCode, nil
}

// sleep waits d or until ctx ends; false when ctx ended.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
