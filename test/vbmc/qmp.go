package vbmc

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"path/filepath"
	"sync"
	"time"
)

// QEMU tells a guest reboot from a guest power-off only in its QMP SHUTDOWN event ("reason": "guest-reset" or
// "guest-shutdown"; with -no-reboot both end the process with status 0). So each QEMU gets a second QMP monitor
// (a QMP socket takes one client at a time, and the first one serves Powerdown) that the BMC holds open for the
// events: QEMU writes the SHUTDOWN event before it exits, and the BMC reads it when the socket closes. A
// restarted BMC connects to the same socket of the QEMU it adopts. The greeting on that socket is also the sign
// that QEMU has started (its options, devices and files were accepted).

// eventsSocket is the VM's QMP socket the BMC reads events from.
func eventsSocket(dir string) string { return filepath.Join(dir, "qmp-events.sock") }

// qmpEvents follows one QMP connection's SHUTDOWN events.
type qmpEvents struct {
	mu     sync.Mutex
	last   string        // reason of the last SHUTDOWN event
	closed chan struct{} // closed when the connection ends (QEMU exited)
}

// reason waits (at most wait) for the connection to end and returns the last SHUTDOWN reason ("" if none).
func (e *qmpEvents) reason(wait time.Duration) string {
	if e == nil {
		return ""
	}
	select {
	case <-e.closed:
	case <-time.After(wait):
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.last
}

// qmpHandshake reads the greeting and negotiates capabilities on a fresh QMP connection.
func qmpHandshake(c net.Conn, r *bufio.Reader) error {
	c.SetDeadline(time.Now().Add(10 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := r.ReadBytes('\n'); err != nil {
		return fmt.Errorf("qmp greeting: %w", err)
	}
	return qmpExecute(c, r, "qmp_capabilities")
}

// qmpExecute runs one command and waits for its return, skipping events.
func qmpExecute(c net.Conn, r *bufio.Reader, cmd string) error {
	b, _ := json.Marshal(map[string]string{"execute": cmd})
	if _, err := c.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("qmp %s: %w", cmd, err)
	}
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			return fmt.Errorf("qmp %s: %w", cmd, err)
		}
		var resp map[string]any
		json.Unmarshal(line, &resp)
		if e, ok := resp["error"]; ok {
			return fmt.Errorf("qmp %s: %v", cmd, e)
		}
		if _, ok := resp["return"]; ok {
			return nil
		}
	}
}

// dialEvents connects to a QMP events socket and follows it in the background until it closes.
func dialEvents(path string) (*qmpEvents, error) {
	c, err := net.DialTimeout("unix", path, 2*time.Second)
	if err != nil {
		return nil, err
	}
	r := bufio.NewReader(c)
	if err := qmpHandshake(c, r); err != nil {
		c.Close()
		return nil, err
	}
	e := &qmpEvents{closed: make(chan struct{})}
	go func() {
		defer close(e.closed)
		defer c.Close()
		for {
			line, err := r.ReadBytes('\n')
			if err != nil {
				return // QEMU exited (or closed the monitor)
			}
			var ev struct {
				Event string
				Data  struct{ Reason string }
			}
			if json.Unmarshal(line, &ev) == nil && ev.Event == "SHUTDOWN" {
				e.mu.Lock()
				e.last = ev.Data.Reason
				e.mu.Unlock()
			}
		}
	}()
	return e, nil
}

// watchEvents follows an adopted QEMU's events; nil (reasons unknown) when its socket does not answer.
func watchEvents(path string) *qmpEvents {
	e, err := dialEvents(path)
	if err != nil {
		return nil
	}
	return e
}

// qmpCommand runs one QMP command on a fresh connection to socket (bounded by 10 s).
func qmpCommand(socket, cmd string) error {
	c, err := net.DialTimeout("unix", socket, 5*time.Second)
	if err != nil {
		return fmt.Errorf("qmp: %w", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	if err := qmpHandshake(c, r); err != nil {
		return err
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return qmpExecute(c, r, cmd)
}
