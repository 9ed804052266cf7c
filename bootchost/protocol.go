package bootchost

import (
	"encoding/json"
	"time"
)

// The reporter's endpoints on the conductor's API listener. They are public like the agent's heartbeat, and
// authenticated by the node's reporter credential: `Authorization: Bearer <credential>`. An unknown node and a
// wrong credential get the same 401, so the endpoints tell an attacker nothing about which nodes exist.
const (
	// PathReport (POST, body Report, answer 204) records the host's bootc status.
	PathReport = "/v1/bootc/hosts/{node}/report"
	// PathDesired (GET, answer Desired) tells the reporter what to do next.
	PathDesired = "/v1/bootc/hosts/{node}/desired"
	// PathAction (POST, body ActionUpdate, answer 204) reports an action's progress.
	PathAction = "/v1/bootc/hosts/{node}/actions/{action}"
	// PathCredential (POST, answer CredentialRotation) replaces the reporter's credential; the old one stays
	// valid until the new one is first used, so a lost answer does not lock the host out.
	PathCredential = "/v1/bootc/hosts/{node}/credential"
	// PathPreReboot and PathSteadyState are the conductor's FleetLock server (the protocol Fedora CoreOS's
	// Zincati speaks): before it reboots into a staged deployment the reporter takes a reboot slot of its group
	// (POST, header "fleet-lock-protocol: true", body FleetLockRequest with the node's UUID as id; 200 granted),
	// and gives it back once the new boot runs.
	PathPreReboot   = "/v1/fleetlock/v1/pre-reboot"
	PathSteadyState = "/v1/fleetlock/v1/steady-state"
)

// DefaultRebootGroup is the FleetLock group of an action that names none (Zincati's default group).
const DefaultRebootGroup = "default"

// FleetLockRequest is the FleetLock protocol's body.
type FleetLockRequest struct {
	ClientParams struct {
		ID    string `json:"id"`
		Group string `json:"group"`
	} `json:"client_params"`
}

// MaxReportBytes bounds a report body; a BootcHost document is a few KiB.
const MaxReportBytes = 256 << 10

// Report is the reporter's status report.
type Report struct {
	// Status is the verbatim `bootc status --format=json` output (a Host).
	Status json.RawMessage `json:"status"`
	// HostdVersion is the reporter's build.
	HostdVersion string `json:"hostd_version"`
	// BootID is /proc/sys/kernel/random/boot_id: it changes on every boot, so the conductor sees a reboot.
	BootID string `json:"boot_id"`
}

// Action kinds.
const (
	ActionUpgrade  = "upgrade"
	ActionSwitch   = "switch"
	ActionRollback = "rollback"
)

// Action states: queued on the conductor, then running, staged, rebooting as the reporter reports them, and one
// of the final ones.
const (
	StateQueued    = "queued"
	StateRunning   = "running"
	StateStaged    = "staged"
	StateRebooting = "rebooting"
	StateDone      = "done"
	StateFailed    = "failed"
	StateCancelled = "cancelled"
)

// Action is a day-2 action handed to the reporter.
type Action struct {
	ID   string `json:"id"`
	Kind string `json:"kind"`
	// Image is the target of a switch, pinned by digest (ref@sha256:...); empty for upgrade and rollback.
	Image string `json:"image,omitempty"`
	// RebootAllowed says the reporter may reboot into the staged deployment once it is staged; otherwise it
	// stops at staged and asks again (FleetLock or a later Desired).
	RebootAllowed bool `json:"reboot_allowed"`
	// RebootGroup is the FleetLock group whose slot the reporter takes before it reboots ("" means
	// DefaultRebootGroup).
	RebootGroup string `json:"reboot_group,omitempty"`
}

// Desired is the conductor's answer to a reporter's poll.
type Desired struct {
	// Action is the next action, or nil.
	Action *Action `json:"action"`
	// PollInterval is how long the reporter waits before it asks again, in seconds.
	PollInterval int `json:"poll_interval"`
	// RotateCredential asks the reporter to rotate its credential (PathCredential) now.
	RotateCredential bool `json:"rotate_credential"`
}

// ActionUpdate is a reporter's progress report on an action.
type ActionUpdate struct {
	State string `json:"state"`
	// Error is bootc's error output when State is failed.
	Error string    `json:"error,omitempty"`
	At    time.Time `json:"at"`
}

// CredentialRotation carries a new credential to the reporter; it is the only place it ever appears.
type CredentialRotation struct {
	Credential string `json:"credential"`
}

// HostConfig is what the deploy writes to the config drive (ferric/hostd.json on the config-2 filesystem): where
// the reporter reports and with which credential. ferric-hostd copies it to /etc/ferric/hostd.json (mode 0600)
// on first start, since /etc persists across image updates on an image-mode host.
type HostConfig struct {
	ConductorURL string `json:"conductor_url"`
	NodeUUID     string `json:"node_uuid"`
	Credential   string `json:"credential"`
	// CACert is the PEM certificate the conductor's API presents, when it is not signed by a public CA.
	CACert string `json:"ca_cert,omitempty"`
}

// ConfigDrivePath is where HostConfig sits on the config drive.
const ConfigDrivePath = "ferric/hostd.json"
