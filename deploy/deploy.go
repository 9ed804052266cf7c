// Package deploy is the contract between the conductor and the ramdisk agent: the agent command names, the
// parameters and results of the bootc install, the progress report, and IPA's command result shape. Both sides
// import it; it imports nothing of Ferric.
package deploy

import (
	"encoding/json"
	"strings"
	"sync"
	"time"
)

// Agent commands ("<extension>.<command>") as IPA names them, plus Ferric's progress extension.
const (
	CmdBootcInstall      = "standby.execute_bootc_install"
	CmdGetDeploySteps    = "deploy.get_deploy_steps"
	CmdExecuteDeployStep = "deploy.execute_deploy_step"
	CmdPowerOff          = "standby.power_off"
	CmdSync              = "standby.sync"
	CmdCollectLogs       = "log.collect_system_logs"
	// CmdProgress returns the Progress of the running (or last) command at once; Ferric's extension.
	CmdProgress = "ferric.progress"
	// CmdWipeDisk erases partition tables and filesystem signatures of the target disk (automated cleaning).
	CmdWipeDisk = "ferric.wipe_disk"
	// CmdInventory returns the body the agent posts to /v1/continue_inspection: IPA's inventory and plugin data.
	CmdInventory = "ferric.inventory"

	// IPA's clean and service step extensions: get_*_steps lists the steps the agent offers (by hardware
	// manager), execute_*_step runs one asynchronously.
	CmdGetCleanSteps      = "clean.get_clean_steps"
	CmdExecuteCleanStep   = "clean.execute_clean_step"
	CmdGetServiceSteps    = "service.get_service_steps"
	CmdExecuteServiceStep = "service.execute_service_step"
	// CmdFinalizeRescue sets the rescue user's password (hashed) and ends the agent's lookup/heartbeat loop.
	CmdFinalizeRescue = "rescue.finalize_rescue"

	// StepBootcInstall is the in-band deploy step Ironic's bootc interface calls.
	StepBootcInstall = "execute_bootc_install"
	// StepEraseDevicesMetadata wipes partition tables and signatures (Ironic's default automated clean step).
	StepEraseDevicesMetadata = "erase_devices_metadata"
	// StepEraseDevices erases every byte of the node's disks.
	StepEraseDevices = "erase_devices"
	// StepWriteImage is the in-band deploy step Ironic's direct (agent) interface calls from its out-of-band
	// write_image step: it streams a whole-disk image onto the install disk and writes the config drive.
	StepWriteImage = "write_image"
)

// Command statuses.
const (
	StatusRunning   = "RUNNING"
	StatusSucceeded = "SUCCEEDED"
	StatusFailed    = "FAILED"
)

// BootcInstallParams are the params of standby.execute_bootc_install (IPA's names).
type BootcInstallParams struct {
	// ImageSource is oci://host/repo:tag or oci://host/repo@sha256:... (the conductor pins a digest).
	ImageSource string `json:"image_source"`
	// InstanceInfo is the node's instance_info: bootc_* options, and bootc_target_imgref (the tag) from Ferric.
	InstanceInfo map[string]any `json:"instance_info"`
	// PullSecret is base64 of the registry secret (a docker "auth" value, user:password, or a token), as Ironic
	// sends it; nil for anonymous pulls. It never reaches a file.
	PullSecret *string `json:"pull_secret"`
	// ConfigDrive is Ironic's string form (gzip+base64 ISO, or an http(s) URL); nil when none.
	ConfigDrive *string `json:"configdrive"`
	// ImagePlatform is the OCI platform ("linux/arm64") of the node's properties.cpu_arch, whose manifest digest
	// ImageSource pins; the agent pulls for it and refuses a machine of another architecture. Ferric's addition:
	// empty (a conductor that predates it) means linux/amd64, the only platform such a conductor resolved.
	ImagePlatform string `json:"image_platform,omitempty"`
}

// ImageInfo is args.image_info of the write_image deploy step, with the names Ironic's agent deploy sends and
// IPA reads (ironic/drivers/modules/agent.py write_image, ironic_python_agent/extensions/standby.py). Fields
// this agent does not use (container_format, stream_raw_images: it always streams) are kept for the record.
type ImageInfo struct {
	// ID is the image's name for messages (the last path element of image_source).
	ID string `json:"id"`
	// URLs are tried in order until one answers 200 (instance_info.image_url).
	URLs []string `json:"urls"`
	// DiskFormat is instance_info.image_disk_format: "raw", "qcow2", or empty to detect it.
	DiskFormat      string `json:"disk_format,omitempty"`
	ContainerFormat string `json:"container_format,omitempty"`
	// Checksum is instance_info.image_checksum: a hex digest whose length names the algorithm (64 sha256,
	// 128 sha512, 32 md5), or an http(s) URL of a checksum file.
	Checksum string `json:"checksum,omitempty"`
	// OSHashAlgo and OSHashValue (instance_info.image_os_hash_*) win over Checksum when both are set.
	OSHashAlgo  string `json:"os_hash_algo,omitempty"`
	OSHashValue string `json:"os_hash_value,omitempty"`
	// ImageType is "partition" for partition images (not written by this agent) or empty/"whole-disk".
	ImageType       string `json:"image_type,omitempty"`
	NodeUUID        string `json:"node_uuid,omitempty"`
	StreamRawImages bool   `json:"stream_raw_images,omitempty"`
	// ImageServerAuthStrategy "http_basic" (Ironic's [deploy]image_server_auth_strategy) makes the download use
	// ImageServerUser and ImageServerPassword. Secrets: never logged.
	ImageServerAuthStrategy string `json:"image_server_auth_strategy,omitempty"`
	ImageServerUser         string `json:"image_server_user,omitempty"`
	ImageServerPassword     string `json:"image_server_password,omitempty"`
	// ImageRequestAuthorization is base64 of an Authorization header value (instance_info.
	// image_request_authorization_secret); it wins over the basic credentials, as in IPA. Secret.
	ImageRequestAuthorization string `json:"image_request_authorization,omitempty"`
	// Proxies maps "http"/"https" to a proxy URL (driver_info.image_http(s)_proxy), NoProxy is image_no_proxy;
	// when set they replace the site's proxies for the image download. Proxy URLs may hold credentials.
	Proxies map[string]string `json:"proxies,omitempty"`
	NoProxy string            `json:"no_proxy,omitempty"`
}

// WriteImageResult is deploy_result of a successful write_image step.
type WriteImageResult struct {
	Message      string `json:"result"`
	Device       string `json:"device"`
	DeviceReason string `json:"device_reason"`
	// URL is the URL the image was read from, without credentials or query.
	URL         string `json:"url"`
	Format      string `json:"format"`                // "raw" or "qcow2"
	Compression string `json:"compression,omitempty"` // "gzip", "zstd", "xz" or ""
	Method      string `json:"method"`                // "stream" or "qemu-img"
	Downloaded  int64  `json:"downloaded_bytes"`
	Written     int64  `json:"written_bytes"`
	Checksum    string `json:"checksum"` // "algo:hex" of the bytes downloaded, verified
	// GPT says what was done to the image's GPT: "backup header moved to the end of the disk", "valid", or ""
	// for an MBR disk.
	GPT         string  `json:"gpt,omitempty"`
	ConfigDrive string  `json:"configdrive,omitempty"` // where the config drive went
	Seconds     float64 `json:"seconds"`
	Phases      []Phase `json:"phases"`
}

// DeployStepParams are the params of deploy.execute_deploy_step (how Ironic calls in-band steps).
type DeployStepParams = StepParams

// StepParams are the params of clean.execute_clean_step, deploy.execute_deploy_step and
// service.execute_service_step (IPA's shape): the step, the node (Ironic sends it with secrets masked; Ferric's
// conductor sends only its uuid and properties) and its ports, plus the version map of the hardware managers the
// conductor saw (IPA refuses a step when they changed; Ferric's agent has one manager and ignores it).
type StepParams struct {
	Step           Step              `json:"step"`
	Node           map[string]any    `json:"node"`
	Ports          []any             `json:"ports"`
	CleanVersion   map[string]string `json:"clean_version,omitempty"`
	DeployVersion  map[string]string `json:"deploy_version,omitempty"`
	ServiceVersion map[string]string `json:"service_version,omitempty"`
}

// GetStepsParams are the params of clean.get_clean_steps and friends.
type GetStepsParams struct {
	Node  map[string]any `json:"node"`
	Ports []any          `json:"ports"`
}

// Step names a step and its arguments, as the agent reports it (get_*_steps) and is asked to run it.
type Step struct {
	Interface      string         `json:"interface"`
	Step           string         `json:"step"`
	Args           map[string]any `json:"args,omitempty"`
	Priority       int            `json:"priority"`
	RebootRequired bool           `json:"reboot_requested"`
	Abortable      bool           `json:"abortable"`
}

// HardwareManager is the name under which the agent reports its steps, and HardwareManagerVersion its version
// (IPA's GenericHardwareManager, version 1.2).
const (
	HardwareManager        = "GenericHardwareManager"
	HardwareManagerVersion = "1.2"
)

// EraseResult is the result of erase_devices: how each device was erased.
type EraseResult struct {
	Device  string  `json:"device"`
	Method  string  `json:"method"`
	Bytes   int64   `json:"bytes"`
	Seconds float64 `json:"seconds"`
}

// Phase is one timed phase of an install.
type Phase struct {
	Name    string  `json:"name"`
	Seconds float64 `json:"seconds"`
}

// InstallResult is the command_result of a successful bootc install.
type InstallResult struct {
	Message      string  `json:"result"`
	Device       string  `json:"device"`
	DeviceReason string  `json:"device_reason"`
	ImageRef     string  `json:"image_ref"`
	ImageDigest  string  `json:"image_digest"`
	RootSizeMiB  int64   `json:"root_size_mib"`
	ConfigDrive  string  `json:"configdrive,omitempty"` // where it went, e.g. "/dev/vda3 (iso9660)"
	Phases       []Phase `json:"phases"`
}

// Progress reports a running command: phase, bytes and recent log lines.
type Progress struct {
	CommandID  string    `json:"command_id"`
	Command    string    `json:"command"`
	Status     string    `json:"status"`
	Phase      string    `json:"phase"`
	BytesDone  int64     `json:"bytes_done"`
	BytesTotal int64     `json:"bytes_total"`
	Percent    float64   `json:"percent"`
	Started    time.Time `json:"started"`
	// Lines are log lines since LineOffset (the caller passes the offset it has seen as params.since).
	Lines      []string `json:"lines"`
	LineOffset int      `json:"line_offset"`
	Phases     []Phase  `json:"phases"`
}

// CommandError is IPA's serialised error of a failed command.
type CommandError struct {
	Type    string `json:"type"`
	Code    int    `json:"code"`
	Message string `json:"message"`
	Details string `json:"details"`
}

// CommandResult is IPA's command result JSON.
type CommandResult struct {
	ID            string          `json:"id"`
	CommandName   string          `json:"command_name"`
	CommandStatus string          `json:"command_status"`
	CommandError  *CommandError   `json:"command_error"`
	CommandResult json.RawMessage `json:"command_result"`
}

// Failure returns the failure text of a failed command ("" otherwise), with its details when they add to it.
func (r *CommandResult) Failure() string {
	if r.CommandError == nil {
		return ""
	}
	msg := r.CommandError.Message
	if d := r.CommandError.Details; d != "" && !strings.Contains(msg, d) {
		msg += ": " + d
	}
	return msg
}

// FinalizeRescueParams are the params of rescue.finalize_rescue as Ironic sends them: the crypt(3) hash of the
// rescue password and hashed=true (the conductor never sends the clear password; the agent refuses hashed=false).
type FinalizeRescueParams struct {
	RescuePassword string `json:"rescue_password"`
	Hashed         bool   `json:"hashed"`
}

// PhaseTimer times the phases of an agent command for its result (Phases) and reports each phase as it starts
// (to the command's progress), so the conductor shows the phase while it runs. Safe for concurrent use: a
// download goroutine may start a phase while the command's own goroutine does.
type PhaseTimer struct {
	mu     sync.Mutex
	report func(name string)
	list   []Phase
	cur    string
	start  time.Time
}

// NewPhaseTimer returns a timer that reports each phase start to report (nil: reports nothing).
func NewPhaseTimer(report func(name string)) *PhaseTimer { return &PhaseTimer{report: report} }

// Begin ends the running phase, if any, and starts name.
func (p *PhaseTimer) Begin(name string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.endLocked()
	p.cur, p.start = name, time.Now()
	if p.report != nil {
		p.report(name)
	}
}

// endLocked records the running phase's duration; p.mu is held.
func (p *PhaseTimer) endLocked() {
	if p.cur != "" {
		p.list = append(p.list, Phase{Name: p.cur, Seconds: time.Since(p.start).Seconds()})
		p.cur = ""
	}
}

// Done ends the last phase and returns them all, in order.
func (p *PhaseTimer) Done() []Phase {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.endLocked()
	return p.list
}
