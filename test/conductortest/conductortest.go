// Package conductortest runs a real ferric-conductor in-process for tests: SQLite in a temp dir (or a given
// database), the API on 127.0.0.1 at a free port, and gophercloud clients pointed at it.
package conductortest

import (
	"context"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/noauth"
	"github.com/sirupsen/logrus"

	"github.com/ferric-metal/ferric/conductor"
)

// Conductor is a running conductor.
type Conductor struct {
	// URL is the public base URL (http://127.0.0.1:PORT).
	URL string
	// Config is the configuration it was started with (DB included), reused by Restart.
	Config conductor.Config
	// Log collects the conductor's log output.
	Log *logrus.Logger

	// t is the test that started it: failures to start or stop fail that test. addr is the bound address, kept
	// across Restart; cancel ends Run (nil once stopped) and done receives Run's error.
	t      testing.TB
	addr   string
	cancel context.CancelFunc
	done   chan error
}

// Start runs a conductor until the test ends. mutate may adjust the configuration.
// A failure to start fails the test (t.Fatalf): callers get a serving conductor or never return. Each call has
// its own database and address, so parallel tests do not share state; mutate runs after the defaults are set,
// so it may replace DB with a PostgreSQL URL or set Listen.
func Start(t testing.TB, mutate ...func(*conductor.Config)) *Conductor {
	t.Helper()
	// Its own iPXE directory: a conductor deletes, at start, the prepared boots of nodes its store does not know.
	cfg := conductor.Config{DB: "sqlite://" + filepath.Join(t.TempDir(), "ferric.db"), Host: "test-conductor",
		IPXEDir: filepath.Join(t.TempDir(), "ipxe")}
	for _, m := range mutate {
		m(&cfg)
	}
	c := &Conductor{Config: cfg, t: t}
	c.start()
	t.Cleanup(func() { c.Stop() })
	return c
}

// start listens, runs conductor.Run in a goroutine and waits for its Ready callback, so that the API answers
// when start returns. It fails the test when Run returns first or stays silent for 30 s.
func (c *Conductor) start() {
	c.t.Helper()
	addr := "127.0.0.1:0"
	if c.Config.Listen != "" {
		addr = c.Config.Listen // a fixed address (agents in VMs must know it in advance)
	}
	if c.addr != "" {
		addr = c.addr // a restart keeps the address agents call back to
	}
	var (
		ln  net.Listener
		err error
	)
	// A restart (or a fixed Listen) may find the port still held for a moment: retry for up to 5 s.
	for i := 0; i < 50; i++ {
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		c.t.Fatalf("listen: %v", err)
	}
	c.addr = ln.Addr().String()
	cfg := c.Config
	cfg.Listener = ln
	// The conductor is given the bound listener itself (no second bind) and the public URL with the port actually
	// bound: its default, from Listen, could not know it. Clients, agents and BMCs use that URL.
	cfg.PublicURL = "http://" + c.addr
	ready := make(chan string, 1)
	cfg.Ready = func(u string) { ready <- u }
	c.Log = logrus.New()
	// Logs go to t.Log only with -v: a failing test then shows the conductor's side next to its own output.
	c.Log.SetOutput(io.Discard)
	if testing.Verbose() {
		c.Log.SetOutput(testWriter{c.t})
	}
	// A fresh logger per start: Log of a restarted conductor holds only the new run's output.
	c.Log.SetLevel(logrus.DebugLevel)
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	c.done = make(chan error, 1)
	go func() { c.done <- conductor.Run(ctx, cfg, logrus.NewEntry(c.Log)) }()
	select {
	case u := <-ready:
		c.URL = u
	case err := <-c.done:
		c.t.Fatalf("conductor did not start: %v", err)
	case <-time.After(30 * time.Second):
		c.t.Fatal("conductor did not start within 30 s")
	}
}

// Stop shuts the conductor down gracefully and returns Run's error. It is safe to call twice.
func (c *Conductor) Stop() error {
	if c.cancel == nil {
		return nil
	}
	c.cancel()
	// cancel is cleared before the wait, so that the t.Cleanup registered by Start finds it stopped after an
	// explicit Stop or Restart.
	c.cancel = nil
	select {
	case err := <-c.done:
		return err
	// A conductor that does not stop within 90 s marks the test failed (t.Error) and is left running.
	case <-time.After(90 * time.Second):
		c.t.Error("conductor did not stop within 90 s")
		return nil
	}
}

// Restart stops the conductor and starts it again on the same database and address.
func (c *Conductor) Restart() {
	c.t.Helper()
	if err := c.Stop(); err != nil {
		c.t.Fatalf("stop: %v", err)
	}
	c.start()
}

// Client returns a gophercloud bare-metal client (noauth) at the given microversion ("" = none sent).
func (c *Conductor) Client(microversion string) *gophercloud.ServiceClient {
	c.t.Helper()
	cl, err := noauth.NewBareMetalNoAuth(noauth.EndpointOpts{IronicEndpoint: c.URL + "/v1"})
	if err != nil {
		c.t.Fatalf("client: %v", err)
	}
	// The client sends X-OpenStack-Ironic-API-Version only when microversion is set: "" exercises the API's
	// default (the minimum version, as Ironic answers a request without the header).
	cl.Microversion = microversion
	return cl
}

// testWriter sends each log line to t.Log; logrus writes one entry per Write, so lines stay whole.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
