// Package pending keeps ferric-hostd's one action in flight across a reboot: its id, how far it got, the boot
// it got there on and the digest the next boot must run, in a small file under /var/lib/ferric-hostd. After the
// reboot the new boot's hostd reads it and reports the action done (or failed, when another image booted).
package pending

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Action is the action in flight.
type Action struct {
	ID   string `json:"id"`
	Kind string `json:"kind"`
	// State is bootchost.StateStaged or bootchost.StateRebooting.
	State string `json:"state"`
	// BootID is the boot the action was staged on; another boot id means the reboot happened.
	BootID string `json:"boot_id"`
	// Expect is the image digest the next boot must run.
	Expect string `json:"expect_digest"`
	// Group is the FleetLock group whose reboot slot the reboot took, given back once the new boot runs.
	Group string `json:"reboot_group,omitempty"`
}

// File is the state file.
type File string

// Load returns the action in flight, or nil.
func (f File) Load() (*Action, error) {
	b, err := os.ReadFile(string(f))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var a Action
	if err := json.Unmarshal(b, &a); err != nil {
		return nil, fmt.Errorf("%s: %w (remove it to forget the action in flight)", f, err)
	}
	return &a, nil
}

// Save records a, atomically and synced: the reboot that follows must not lose it.
func (f File) Save(a Action) error {
	b, err := json.Marshal(a)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(string(f)), 0o700); err != nil {
		return err
	}
	tmp := string(f) + ".tmp"
	w, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := w.Write(b); err != nil {
		w.Close()
		return err
	}
	if err := w.Sync(); err != nil {
		w.Close()
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, string(f))
}

// Clear forgets the action in flight.
func (f File) Clear() error {
	if err := os.Remove(string(f)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
