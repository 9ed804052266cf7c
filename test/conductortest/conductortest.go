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

	t      testing.TB
	addr   string
	cancel context.CancelFunc
	done   chan error
}

// Start runs a conductor until the test ends. mutate may adjust the configuration.
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
	cfg.PublicURL = "http://" + c.addr
	ready := make(chan string, 1)
	cfg.Ready = func(u string) { ready <- u }
	c.Log = logrus.New()
	c.Log.SetOutput(io.Discard)
	if testing.Verbose() {
		c.Log.SetOutput(testWriter{c.t})
	}
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
	c.cancel = nil
	select {
	case err := <-c.done:
		return err
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
	cl.Microversion = microversion
	return cl
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
