// Package bootc runs the bootc CLI for ferric-hostd: `bootc status --format=json` and the day-2 commands, each
// bounded by a deadline, with bootc's stderr kept (trimmed) for the failed action report.
package bootc

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/ferric-metal/ferric/bootchost"
)

// MaxErrorBytes bounds the stderr carried into an error: the end of it, where bootc prints the cause.
const MaxErrorBytes = 4 << 10

// Runner runs one bootc binary.
type Runner struct {
	// Path is the binary ("bootc" on PATH by default).
	Path string
	// Env is added to hostd's environment (e.g. a proxy for registry pulls).
	Env []string
	// StatusTimeout bounds `bootc status`; CommandTimeout bounds upgrade/switch/rollback, which pull images.
	StatusTimeout, CommandTimeout time.Duration
}

// Error is a bootc command that failed: Stderr is bootc's error output, trimmed.
type Error struct {
	Args   []string
	Err    error
	Stderr string
}

func (e *Error) Error() string {
	if e.Stderr == "" {
		return fmt.Sprintf("bootc %s: %v", strings.Join(e.Args, " "), e.Err)
	}
	return fmt.Sprintf("bootc %s: %v: %s", strings.Join(e.Args, " "), e.Err, e.Stderr)
}

func (e *Error) Unwrap() error { return e.Err }

// Status runs `bootc status --format=json` and returns its verbatim output and the parsed document.
func (r Runner) Status(ctx context.Context) ([]byte, *bootchost.Host, error) {
	out, err := r.run(ctx, r.StatusTimeout, "status", "--format=json")
	if err != nil {
		return nil, nil, err
	}
	h, err := bootchost.Parse(out)
	if err != nil {
		return nil, nil, err
	}
	return out, h, nil
}

// Run runs a day-2 command and returns its stdout.
func (r Runner) Run(ctx context.Context, args ...string) (string, error) {
	out, err := r.run(ctx, r.CommandTimeout, args...)
	return string(out), err
}

func (r Runner) run(ctx context.Context, timeout time.Duration, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	path := r.Path
	if path == "" {
		path = "bootc"
	}
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = append(os.Environ(), r.Env...)
	// A killed bootc may leave children holding the pipes; WaitDelay stops waiting for them.
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() == context.DeadlineExceeded {
			err = fmt.Errorf("no answer within %s: %w", timeout, ctx.Err())
		}
		return nil, &Error{Args: args, Err: err, Stderr: Trim(stderr.String())}
	}
	return stdout.Bytes(), nil
}

// Trim keeps the last MaxErrorBytes of s, without surrounding blank space.
func Trim(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > MaxErrorBytes {
		s = "..." + s[len(s)-MaxErrorBytes:]
	}
	return s
}
