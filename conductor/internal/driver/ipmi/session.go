package ipmi

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/bougou/go-ipmi/pkg/client"
	"github.com/bougou/go-ipmi/pkg/types"
	"github.com/sirupsen/logrus"

	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// Driver implements driver.Power and driver.Management over IPMI 2.0 lanplus.
//
// Sessions: one RMCP+ session per BMC operation (open, a few commands, close), the way Ironic runs one ipmitool
// process per command. BMCs have few session slots (often four) and drop idle sessions on their own timers, so a
// cached session would hold a slot between the conductor's rare calls and need revalidation (and a keep-alive)
// before each use; a session costs four round trips, which the minimum interval between commands dwarfs.
type Driver struct {
	// RetryTimeout bounds the retries of one operation (Ironic's [ipmi]command_retry_timeout, 60 s).
	RetryTimeout time.Duration
	// MinCommandInterval is the least time between two operations sent to one BMC (Ironic's
	// [ipmi]min_command_interval, 5 s): some BMCs crash when polled faster.
	MinCommandInterval time.Duration
	// CallTimeout bounds one attempt: session setup, the commands and the close (default 20 s).
	CallTimeout time.Duration
	// ExchangeTimeout bounds one UDP request/response; the library resends 4 times (default 1 s, ipmitool's).
	ExchangeTimeout time.Duration
	// PowerTimeout bounds waiting for a power state change (Ironic's [conductor]power_state_change_timeout, 60 s).
	PowerTimeout time.Duration
	// SoftPowerOffTimeout bounds a soft power off when the request gives none ([conductor]soft_power_off_timeout,
	// 600 s).
	SoftPowerOffTimeout time.Duration
	// RebootSettle is the pause after a reset before polling (Ironic sleeps 15 s after "power reset").
	RebootSettle time.Duration
	// PollInterval is the first wait between power state reads; it doubles up to MaxPollInterval (Ironic's
	// BackOffLoopingCall starts at 1 s and doubles).
	PollInterval, MaxPollInterval time.Duration
	// Log receives retry warnings (nil: logrus' standard logger). Never the password.
	Log *logrus.Entry

	once sync.Once
	mu   sync.Mutex
	next map[string]time.Time // BMC address:port -> earliest time of its next operation
}

// defaults fills the unset settings once, at the first operation: a Driver's zero value works. The settings are
// read without a lock afterwards, so set them before the first use.
func (d *Driver) defaults() { d.once.Do(d.setDefaults) }

// setDefaults applies Ironic's defaults (see the fields) to every setting left zero.
func (d *Driver) setDefaults() {
	set := func(p *time.Duration, v time.Duration) {
		if *p == 0 {
			*p = v
		}
	}
	set(&d.RetryTimeout, 60*time.Second)
	set(&d.MinCommandInterval, 5*time.Second)
	set(&d.CallTimeout, 20*time.Second)
	set(&d.ExchangeTimeout, time.Second)
	set(&d.PowerTimeout, 60*time.Second)
	set(&d.SoftPowerOffTimeout, 600*time.Second)
	set(&d.RebootSettle, 15*time.Second)
	set(&d.PollInterval, time.Second)
	set(&d.MaxPollInterval, 10*time.Second)
	if d.Log == nil {
		d.Log = logrus.NewEntry(logrus.StandardLogger())
	}
	d.next = map[string]time.Time{}
}

// Validate checks the node's driver_info without contacting the BMC, as Ironic's IPMIPower.validate.
func (d *Driver) Validate(_ context.Context, n *store.Node) error {
	_, err := ParseInfo(n)
	return err
}

// throttle waits until the BMC may receive the next operation and books the slot after it, so that concurrent
// operations on one BMC are spaced too (Ironic's LAST_CMD_TIME per address).
func (d *Driver) throttle(ctx context.Context, info *Info) error {
	d.mu.Lock()
	now := time.Now()
	if len(d.next) > 4096 {
		// Forget BMCs whose slot has passed, so that a conductor that saw many addresses does not keep them all.
		for k, t := range d.next {
			if t.Before(now) {
				delete(d.next, k)
			}
		}
	}
	at := d.next[info.target()]
	if at.Before(now) {
		at = now
	}
	d.next[info.target()] = at.Add(d.MinCommandInterval)
	d.mu.Unlock()
	return sleep(ctx, time.Until(at))
}

// sleep pauses for d unless ctx ends first (its error then); d <= 0 only reports whether ctx has ended.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// call runs fn in a fresh session to the node's BMC, retrying the whole attempt on errors that may pass (no
// answer, BMC busy) until RetryTimeout; what names the operation in errors ("power on", "set boot device pxe").
func (d *Driver) call(ctx context.Context, n *store.Node, what string, fn func(ctx context.Context, c *client.Client) error) error {
	d.defaults()
	info, err := ParseInfo(n)
	if err != nil {
		return err
	}
	end := time.Now().Add(d.RetryTimeout)
	for attempt := 1; ; attempt++ {
		if err := d.throttle(ctx, info); err != nil {
			return bmcError(info, what, err)
		}
		err = d.attempt(ctx, info, fn)
		if err == nil {
			return nil
		}
		// No retry that could not start before RetryTimeout: the next attempt waits MinCommandInterval (throttle) first.
		if !retryable(err) || ctx.Err() != nil || time.Now().Add(d.MinCommandInterval).After(end) {
			return bmcError(info, what, err)
		}
		d.Log.WithField("bmc", info.target()).Warnf("IPMI %s failed (attempt %d), retrying: %v", what, attempt,
			scrub(err, info))
	}
}

// attempt opens a session, runs fn and closes the session, all within CallTimeout.
func (d *Driver) attempt(ctx context.Context, info *Info, fn func(ctx context.Context, c *client.Client) error) error {
	actx, cancel := context.WithTimeout(ctx, d.CallTimeout)
	defer cancel()
	c, err := client.NewClient(info.Address, info.Port, info.Username, info.Password)
	if err != nil {
		return err
	}
	c.WithInterface(client.InterfaceLanplus).WithTimeout(d.ExchangeTimeout).WithMaxPrivilegeLevel(info.Priv)
	if info.CipherSuite != nil {
		c.WithCipherSuiteID(*info.CipherSuite)
	} else {
		// Ironic's advice: 17 (AES-128, SHA256), else 3 (AES-128, SHA1), the suites recent ipmitool tries. The
		// library's own negotiation asks the BMC for its list first, a command some BMCs (ipmi_sim) never answer.
		c.WithCipherSuiteID(types.CipherSuiteID17, types.CipherSuiteID3)
	}
	if err := c.Connect(actx); err != nil {
		// Release the socket without waiting for a BMC that may not answer.
		dead, stop := context.WithCancel(context.Background())
		stop()
		_ = c.Close(dead)
		return err
	}
	err = fn(actx, c)
	// Closing the session frees the BMC's slot; a BMC that does not answer the close must not hold us up long.
	cctx, ccancel := context.WithTimeout(context.WithoutCancel(ctx), 2*d.ExchangeTimeout)
	defer ccancel()
	_ = c.Close(cctx)
	return err
}

// retryable reports whether an attempt may succeed when repeated: Ironic retries every ipmitool failure, but
// refused credentials or privileges and requests the BMC does not implement will not heal, and repeating a
// refused login can lock the BMC user out.
func retryable(err error) bool {
	if errors.Is(err, context.Canceled) || authFailure(err) {
		return false
	}
	var re *types.ResponseError
	if errors.As(err, &re) {
		switch uint8(re.CompletionCode()) {
		case 0xc0, 0xc3, 0xc4, 0xca, 0xce, 0xcf, 0xd2, 0xff: // busy, timeout, out of space, no response, duplicate, BMC initialising, unspecified
			return true
		}
		return false
	}
	return true
}

// authFailure reports the library's ways of saying the BMC refused the login (its errors are formatted with %v,
// so the text is all there is).
func authFailure(err error) bool {
	msg := strings.ToLower(err.Error())
	for _, s := range []string{"rakp authentication", "unauthorized name", "invalid role", "insufficient privilege",
		"invalid password", "unauthorized role", "invalid name length"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// bmcError turns a library error into text naming the BMC, the operation and what to check, without the password.
func bmcError(info *Info, what string, err error) error {
	var hint string
	switch {
	case errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "deadline exceeded") ||
		strings.Contains(err.Error(), "i/o timeout") || strings.Contains(err.Error(), "read deadline"):
		hint = "the BMC did not answer in time; check that it is reachable from the conductor over UDP and that ipmi_address and ipmi_port are right"
	case errors.Is(err, context.Canceled):
		hint = "the operation was cancelled"
	case authFailure(err):
		hint = fmt.Sprintf("the BMC refused the login; check driver_info.ipmi_username, ipmi_password and ipmi_priv_level (%s)", info.PrivName)
	case strings.Contains(err.Error(), "connection refused"):
		hint = "nothing answers IPMI there; check driver_info.ipmi_address and ipmi_port, and that IPMI over LAN is enabled on the BMC"
	case strings.Contains(err.Error(), "cipher suite"):
		hint = "no cipher suite was agreed; set driver_info.ipmi_cipher_suite to one the BMC offers (17 or 3)"
	}
	// The library's error is flattened to scrubbed text, not wrapped: wrapping would keep the unscrubbed message
	// reachable through errors.Unwrap and %v of the chain.
	msg := scrub(err, info)
	if hint != "" {
		return fmt.Errorf("IPMI BMC %s: %s failed: %s (%s)", info.target(), what, hint, oneLine(msg))
	}
	return fmt.Errorf("IPMI BMC %s: %s failed: %s", info.target(), what, oneLine(msg))
}

// scrub removes the password from an error's text, should a library ever print it.
func scrub(err error, info *Info) string {
	msg := err.Error()
	if info.Password != "" {
		msg = strings.ReplaceAll(msg, info.Password, "******")
	}
	return msg
}

// oneLine keeps an error on one line: the library lists every cipher suite it tried, one per line.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// unsupported is the error for a request this driver refuses before talking to the BMC.
func unsupported(format string, a ...any) error {
	return fmt.Errorf(format+": %w", append(a, driver.ErrInvalid)...)
}
