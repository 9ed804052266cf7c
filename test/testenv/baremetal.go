package testenv

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// CLI is OpenStack's own `baremetal` client (Debian's python3-ironicclient) pointed at one endpoint without
// authentication, as the client tests drive Ferric with it. Every call starts Python (about a second), so tests
// keep their calls few and do the other cases in table tests.
type CLI struct {
	t              testing.TB
	bin, endpoint  string
	home           string
	defaultTimeout time.Duration
}

// Baremetal requires the `baremetal` command (skipped loudly, or failed in CI, when it is missing) and returns it
// aimed at endpoint (the API's base URL, e.g. an httptest server's). HOME is a fresh directory, so no user's
// clouds.yaml or cache leaks into the test.
func Baremetal(t testing.TB, endpoint string) *CLI {
	return &CLI{t: t, bin: Tool(t, "baremetal", "python3-ironicclient"), endpoint: endpoint, home: t.TempDir(),
		defaultTimeout: time.Minute}
}

// Try runs `baremetal args...` (bounded to a minute) and returns its combined output and exit error.
func (c *CLI) Try(args ...string) (string, error) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), c.defaultTimeout)
	defer cancel()
	full := append([]string{"--os-endpoint", c.endpoint, "--os-auth-type", "none"}, args...)
	cmd := exec.CommandContext(ctx, c.bin, full...)
	cmd.Env = append(os.Environ(), "HOME="+c.home)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// Run is Try for a call that must succeed: a failure ends the test with the command and its output.
func (c *CLI) Run(args ...string) string {
	c.t.Helper()
	out, err := c.Try(args...)
	if err != nil {
		c.t.Fatalf("baremetal %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}
