package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/ferric-metal/ferric/bootchost"
)

// State is the stand-in's state file: the BootcHost document `bootc status` prints, plus the boot it was last
// finalized on. Real bootc derives the document from ostree's deployment list; the stand-in keeps the document
// itself and models ostree's finalize-on-shutdown by comparing boot ids (Finalize).
type State struct {
	// BootID is /proc/sys/kernel/random/boot_id of the boot the state was last finalized on; empty after an
	// install, so the first boot of the installed system only records its id.
	BootID string         `json:"boot_id"`
	Host   bootchost.Host `json:"host"`
}

// errNotBooted is bootc's refusal of day-2 commands on a system it did not boot (a container, a live ramdisk).
var errNotBooted = errors.New("this command requires a booted host system")

// NewState is the state an install leaves: spec follows target, booted is the installed image.
func NewState(target bootchost.ImageReference, installed bootchost.ImageStatus) State {
	typ := "bootcHost"
	return State{Host: bootchost.Host{
		APIVersion: bootchost.APIVersionV1, Kind: bootchost.Kind, Metadata: bootchost.Metadata{Name: "host"},
		Spec:   bootchost.HostSpec{Image: &target, BootOrder: "default"},
		Status: bootchost.HostStatus{Booted: entry(installed), Type: &typ},
	}}
}

// entry is the deployment ostree makes of an image. The ostree checksum is derived from the image digest (the
// real one is the merged commit's), so two deployments of one image look alike, as they do in bootc.
func entry(img bootchost.ImageStatus) *bootchost.BootEntry {
	store := "ostreeContainer"
	sum := sha256.Sum256([]byte(img.ImageDigest))
	return &bootchost.BootEntry{Image: &img, Store: &store,
		Ostree: &bootchost.Ostree{Stateroot: "default", Checksum: hex.EncodeToString(sum[:]), DeploySerial: 0}}
}

// Finalize records that the system runs boot bootID. When that is not the boot the state was last finalized on,
// the machine rebooted in between, and the reboot did what ostree's finalize-on-shutdown and the bootloader
// entries it wrote do: a staged deployment is now booted (the old booted becomes the rollback), or else a queued
// rollback swapped booted and rollback. It reports whether anything changed.
func (s *State) Finalize(bootID string) bool {
	if bootID == "" || bootID == s.BootID {
		return false
	}
	st := &s.Host.Status
	switch {
	case st.Staged != nil:
		st.Rollback, st.Booted, st.Staged = st.Booted, st.Staged, nil
	case st.RollbackQueued && st.Rollback != nil:
		st.Rollback, st.Booted = st.Booted, st.Rollback
	}
	st.RollbackQueued = false
	s.Host.Spec.BootOrder = "default"
	if st.Booted != nil {
		// What bootc caches is an update for the deployment it checked from; the new boot has not checked.
		st.Booted.CachedUpdate = nil
		// bootc's spec follows the booted deployment's image after a rollback.
		if st.Booted.Image != nil {
			ref := st.Booted.Image.Image
			s.Host.Spec.Image = &ref
		}
	}
	s.BootID = bootID
	return true
}

// upgradeResult is what `bootc upgrade` did; --apply reboots after upgradeStaged and upgradeStagedBefore.
type upgradeResult int

const (
	upgradeNone upgradeResult = iota
	upgradeStaged
	upgradeStagedBefore
)

// Upgrade applies a pulled image for `bootc upgrade`: it returns bootc's message and what it did. An image
// already staged or already booted stages nothing, as bootc compares manifest digests. A deployment with local
// rpm-ostree changes (incompatible) is refused, as bootc refuses it.
func (s *State) Upgrade(fetched bootchost.ImageStatus) (string, upgradeResult, error) {
	st := &s.Host.Status
	if st.Booted == nil {
		return "", upgradeNone, errNotBooted
	}
	if st.Booted.Incompatible || (st.Staged != nil && st.Staged.Incompatible) {
		return "", upgradeNone, errors.New("Deployment contains local rpm-ostree modifications; cannot upgrade via bootc. " +
			"You can run `rpm-ostree reset` to undo the modifications.")
	}
	if st.Staged != nil && st.Staged.Image != nil && st.Staged.Image.ImageDigest == fetched.ImageDigest {
		return "Staged update present, not changed.", upgradeStagedBefore, nil
	}
	if st.Booted.Image != nil && st.Booted.Image.ImageDigest == fetched.ImageDigest {
		return "No update available.", upgradeNone, nil
	}
	s.stage(fetched)
	return queuedMessage(fetched), upgradeStaged, nil
}

// Check records what `bootc upgrade --check` found in the registry as the booted entry's cachedUpdate (nil when
// the registry has what is booted) and returns bootc's message.
func (s *State) Check(fetched bootchost.ImageStatus) (string, error) {
	st := &s.Host.Status
	if st.Booted == nil {
		return "", errNotBooted
	}
	name := displayRef(fetched.Image)
	if st.Booted.Image != nil && st.Booted.Image.ImageDigest == fetched.ImageDigest {
		st.Booted.CachedUpdate = nil
		return "No changes in: " + name, nil
	}
	upd := fetched
	st.Booted.CachedUpdate = &upd
	msg := "Update available for: " + name
	if fetched.Version != nil {
		msg += "\n  Version: " + *fetched.Version
	}
	return msg + "\n  Digest: " + fetched.ImageDigest, nil
}

// SwitchSpec changes what the host follows for `bootc switch`; unchanged is bootc's no-op (same reference and
// transport), in which case nothing is pulled or staged.
func (s *State) SwitchSpec(ref bootchost.ImageReference) (unchanged bool, err error) {
	if s.Host.Status.Booted == nil {
		return false, errNotBooted
	}
	if cur := s.Host.Spec.Image; cur != nil && cur.Image == ref.Image && cur.Transport == ref.Transport {
		return true, nil
	}
	s.Host.Spec.Image = &ref
	return false, nil
}

// StageSwitched stages the image a switch pulled. Unlike upgrade, bootc's switch stages even when the digest is
// the booted one: the deployment's origin (the followed reference) changes.
func (s *State) StageSwitched(fetched bootchost.ImageStatus) string {
	s.stage(fetched)
	return queuedMessage(fetched)
}

func (s *State) stage(img bootchost.ImageStatus) {
	st := &s.Host.Status
	st.Staged = entry(img)
	// A new staged deployment goes first in the boot order; a queued rollback is overridden by it.
	st.RollbackQueued = false
	s.Host.Spec.BootOrder = "default"
	if st.Booted != nil {
		st.Booted.CachedUpdate = nil
	}
}

// Rollback is `bootc rollback`: it queues the rollback deployment for the next boot, or, when one is queued
// already, reverts that (bootc swaps the boot order each time). The staged deployment is dropped, as ostree
// drops it when bootc rewrites the deployment list without it. It returns bootc's messages.
func (s *State) Rollback() (string, error) {
	st := &s.Host.Status
	if st.Booted == nil {
		return "", errNotBooted
	}
	if st.Rollback == nil {
		return "", errors.New("No rollback available")
	}
	st.Staged = nil
	if st.RollbackQueued {
		st.RollbackQueued = false
		s.Host.Spec.BootOrder = "default"
		return "notice: Reverting queued rollback state\nNext boot: current deployment", nil
	}
	st.RollbackQueued = true
	s.Host.Spec.BootOrder = "rollback"
	return "Next boot: rollback deployment", nil
}

func queuedMessage(img bootchost.ImageStatus) string {
	msg := "Queued for next boot: " + displayRef(img.Image)
	if img.Version != nil {
		msg += "\n  Version: " + *img.Version
	}
	return msg + "\n  Digest: " + img.ImageDigest
}

// displayRef prints a reference as bootc's alternate form does: a registry image without a signature policy by
// its name alone, anything else as transport:name.
func displayRef(r bootchost.ImageReference) string {
	if r.Transport == "registry" && len(r.Signature) == 0 {
		return r.Image
	}
	return fmt.Sprintf("%s:%s", r.Transport, r.Image)
}

// parseTransport checks a --transport value against the transports bootc accepts; the stand-in pulls only from
// registries, so the others are named as such.
func parseTransport(t string) error {
	switch strings.ToLower(t) {
	case "registry":
		return nil
	case "oci", "oci-archive", "containers-storage", "dir", "docker-archive":
		return fmt.Errorf("transport %s: this bootc stand-in pulls only from registries (--transport registry)", t)
	}
	return fmt.Errorf("invalid value '%s' for '--transport': expected registry, oci, oci-archive, containers-storage or dir", t)
}
