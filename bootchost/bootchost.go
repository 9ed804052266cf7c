// Package bootchost is the contract between the conductor and ferric-hostd, the reporter that runs on deployed
// image-mode hosts: the shape of `bootc status --format=json` (bootc's BootcHost schema, crates/lib/src/spec.rs),
// the reporter's HTTP paths and bodies, and the day-2 action states. Both sides import it; it imports nothing of
// Ferric, like package deploy does for the ramdisk agent.
package bootchost

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// bootc names its schema with these apiVersions; versions before 1.0 emit v1alpha1, which must still be read.
const (
	APIVersionV1       = "org.containers.bootc/v1"
	APIVersionV1Alpha1 = "org.containers.bootc/v1alpha1"
	Kind               = "BootcHost"
)

// Host is bootc's BootcHost document. Fields Ferric does not read are kept by the raw report the conductor
// stores, so the schema can grow without this type following every field.
type Host struct {
	APIVersion string     `json:"apiVersion"`
	Kind       string     `json:"kind"`
	Metadata   Metadata   `json:"metadata"`
	Spec       HostSpec   `json:"spec"`
	Status     HostStatus `json:"status"`
}

// Metadata is the object metadata; bootc always names the host "host".
type Metadata struct {
	Name string `json:"name,omitempty"`
}

// HostSpec is what the host is set to follow: the image `bootc upgrade` pulls and the boot order.
type HostSpec struct {
	Image *ImageReference `json:"image"`
	// BootOrder is "default" or "rollback" (a queued rollback).
	BootOrder string `json:"bootOrder,omitempty"`
}

// ImageReference names an image with its containers-image transport (registry, oci, containers-storage, ...).
type ImageReference struct {
	Image     string `json:"image"`
	Transport string `json:"transport"`
	// Signature is "insecure", "containerPolicy" or {"ostreeRemote": "name"}: kept raw.
	Signature json.RawMessage `json:"signature,omitempty"`
}

// HostStatus lists the deployments: the booted one, the one staged for the next boot, and the rollback target.
type HostStatus struct {
	Staged           *BootEntry  `json:"staged"`
	Booted           *BootEntry  `json:"booted"`
	Rollback         *BootEntry  `json:"rollback"`
	OtherDeployments []BootEntry `json:"otherDeployments,omitempty"`
	RollbackQueued   bool        `json:"rollbackQueued"`
	Type             *string     `json:"type"`
}

// BootEntry is one deployment.
type BootEntry struct {
	Image        *ImageStatus `json:"image"`
	CachedUpdate *ImageStatus `json:"cachedUpdate"`
	// Incompatible is set when the deployment carries local changes (layered packages) bootc cannot carry over.
	Incompatible      bool    `json:"incompatible"`
	Pinned            bool    `json:"pinned"`
	SoftRebootCapable bool    `json:"softRebootCapable"`
	DownloadOnly      bool    `json:"downloadOnly"`
	Store             *string `json:"store,omitempty"`
	Ostree            *Ostree `json:"ostree,omitempty"`
}

// ImageStatus is the image a deployment came from, with the digest that was pulled.
type ImageStatus struct {
	Image        ImageReference `json:"image"`
	Version      *string        `json:"version"`
	Timestamp    *time.Time     `json:"timestamp"`
	ImageDigest  string         `json:"imageDigest"`
	Architecture string         `json:"architecture,omitempty"`
}

// Ostree is the ostree side of a deployment.
type Ostree struct {
	Stateroot    string `json:"stateroot"`
	Checksum     string `json:"checksum"`
	DeploySerial int    `json:"deploySerial"`
}

// ErrInvalid marks a document that is not a BootcHost Ferric can read.
var ErrInvalid = errors.New("invalid bootc status")

// Parse reads `bootc status --format=json` output. It accepts both apiVersions and refuses anything that is not a
// BootcHost, naming the field, so a reporter running the wrong command is told so.
func Parse(b []byte) (*Host, error) {
	var h Host
	if err := json.Unmarshal(b, &h); err != nil {
		return nil, fmt.Errorf("%w: not JSON of bootc's host schema (%v); run `bootc status --format=json`", ErrInvalid, err)
	}
	if h.APIVersion != APIVersionV1 && h.APIVersion != APIVersionV1Alpha1 {
		return nil, fmt.Errorf("%w: apiVersion %q is neither %s nor %s", ErrInvalid, h.APIVersion, APIVersionV1, APIVersionV1Alpha1)
	}
	if h.Kind != Kind {
		return nil, fmt.Errorf("%w: kind %q is not %s", ErrInvalid, h.Kind, Kind)
	}
	return &h, nil
}

// IsBootc says whether the host runs a bootc deployment (bootc's own test: a booted entry exists).
func (h *Host) IsBootc() bool { return h.Status.Booted != nil }

// BootedImage returns the booted image's reference and digest ("" when unknown).
func (h *Host) BootedImage() (ref, digest string) {
	return entryImage(h.Status.Booted)
}

// StagedImage returns the staged image's reference and digest ("" when nothing is staged).
func (h *Host) StagedImage() (ref, digest string) {
	return entryImage(h.Status.Staged)
}

// RollbackImage returns the rollback image's reference and digest ("" when there is none).
func (h *Host) RollbackImage() (ref, digest string) {
	return entryImage(h.Status.Rollback)
}

func entryImage(e *BootEntry) (ref, digest string) {
	if e == nil || e.Image == nil {
		return "", ""
	}
	return e.Image.Image.Image, e.Image.ImageDigest
}
