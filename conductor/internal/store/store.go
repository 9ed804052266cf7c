// Package store owns the conductor's persistent state: nodes, ports, node reservations (the per-node exclusive
// lock) and deploy logs. One Store interface, backed by SQLite (embedded default, pure Go, WAL) or PostgreSQL (pgx);
// both run the same SQL through database/sql with per-dialect migrations, and one conformance suite tests both.
package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Sentinel errors. Callers test them with errors.Is.
var (
	ErrNotFound  = errors.New("not found")
	ErrDuplicate = errors.New("already exists")
	// ErrNotHolder: a node write was refused because the writer does not hold the node's reservation (it never
	// took it, or the reservation was broken and maybe taken by another holder since). Nothing was written; the
	// operation must reserve the node again and redo its work on the node as Reserve returns it.
	ErrNotHolder = errors.New("reservation not held by the writer")
	// ErrSchemaTooNew: the database was migrated by a newer conductor past what this one can run beside.
	ErrSchemaTooNew = errors.New("database schema too new")
)

// LockedError says a node is reserved by another holder. Holder is "" when a write found the node unreserved
// (its writer's reservation was broken and nobody took it since).
type LockedError struct {
	Node   string
	Holder string
}

// Error words a held node as Ironic's NodeLocked does (the API's 409 body shows it to clients); a lost
// reservation (Holder "") gets a sentence of its own that names the likely causes.
func (e *LockedError) Error() string {
	if e.Holder == "" {
		return fmt.Sprintf("Node %s lost its reservation during the operation (it was released by another conductor or at a restart), please retry.", e.Node)
	}
	return fmt.Sprintf("Node %s is locked by host %s, please retry after the current operation is completed.", e.Node, e.Holder)
}

// Node is a bare-metal node with every field the API exposes. Maps are never nil once loaded from the store.
type Node struct {
	ID   int64  `json:"-"`
	UUID string `json:"uuid"`
	Name string `json:"name,omitempty"`

	Driver             string            `json:"driver"`
	DriverInfo         map[string]any    `json:"driver_info"`
	DriverInternalInfo map[string]any    `json:"driver_internal_info"`
	Properties         map[string]any    `json:"properties"`
	InstanceInfo       map[string]any    `json:"instance_info"`
	Extra              map[string]any    `json:"extra"`
	NetworkData        map[string]any    `json:"network_data"`
	InstanceUUID       string            `json:"instance_uuid,omitempty"`
	InstanceName       string            `json:"instance_name,omitempty"`
	Interfaces         map[string]string `json:"interfaces"` // kind ("boot", "deploy", ...) -> interface name

	PowerState           string     `json:"power_state,omitempty"`
	TargetPowerState     string     `json:"target_power_state,omitempty"`
	ProvisionState       string     `json:"provision_state"`
	TargetProvisionState string     `json:"target_provision_state,omitempty"`
	ProvisionUpdatedAt   *time.Time `json:"provision_updated_at,omitempty"`
	LastError            string     `json:"last_error,omitempty"`

	Maintenance       bool   `json:"maintenance"`
	MaintenanceReason string `json:"maintenance_reason,omitempty"`
	Fault             string `json:"fault,omitempty"`
	Reservation       string `json:"-"` // column only; owned by Reserve/Release; UpdateNode is fenced by it
	ConsoleEnabled    bool   `json:"console_enabled"`

	CleanStep        map[string]any `json:"clean_step"`
	DeployStep       map[string]any `json:"deploy_step"`
	ServiceStep      map[string]any `json:"service_step"`
	RAIDConfig       map[string]any `json:"raid_config"`
	TargetRAIDConfig map[string]any `json:"target_raid_config"`
	Traits           []string       `json:"traits"`

	ResourceClass   string `json:"resource_class,omitempty"`
	ConductorGroup  string `json:"conductor_group"`
	Owner           string `json:"owner,omitempty"`
	Lessee          string `json:"lessee,omitempty"`
	Shard           string `json:"shard,omitempty"`
	Description     string `json:"description,omitempty"`
	ParentNode      string `json:"parent_node,omitempty"`
	ChassisUUID     string `json:"chassis_uuid,omitempty"`
	AllocationUUID  string `json:"allocation_uuid,omitempty"` // written only with its allocation (SetAllocationNode)
	AutomatedClean  *bool  `json:"automated_clean,omitempty"`
	Protected       bool   `json:"protected"`
	ProtectedReason string `json:"protected_reason,omitempty"`
	Retired         bool   `json:"retired"`
	RetiredReason   string `json:"retired_reason,omitempty"`
	DisablePowerOff bool   `json:"disable_power_off"`
	BootMode        string `json:"boot_mode,omitempty"`
	SecureBoot      *bool  `json:"secure_boot,omitempty"`

	InspectionStartedAt  *time.Time `json:"inspection_started_at,omitempty"`
	InspectionFinishedAt *time.Time `json:"inspection_finished_at,omitempty"`
	CreatedAt            time.Time  `json:"created_at"`
	UpdatedAt            *time.Time `json:"updated_at,omitempty"`
}

// Normalize replaces nil maps and slices with empty ones so the API renders {} and [].
func (n *Node) Normalize() {
	for _, m := range []*map[string]any{&n.DriverInfo, &n.DriverInternalInfo, &n.Properties, &n.InstanceInfo,
		&n.Extra, &n.NetworkData, &n.CleanStep, &n.DeployStep, &n.ServiceStep, &n.RAIDConfig, &n.TargetRAIDConfig} {
		if *m == nil {
			*m = map[string]any{}
		}
	}
	if n.Interfaces == nil {
		n.Interfaces = map[string]string{}
	}
	if n.Traits == nil {
		n.Traits = []string{}
	}
}

// Port is a NIC of a node, identified by its MAC address.
type Port struct {
	ID                  int64          `json:"-"`
	UUID                string         `json:"uuid"`
	Address             string         `json:"address"`
	NodeUUID            string         `json:"node_uuid"`
	Name                string         `json:"name,omitempty"`
	Description         string         `json:"description,omitempty"`
	Extra               map[string]any `json:"extra"`
	InternalInfo        map[string]any `json:"internal_info"`
	LocalLinkConnection map[string]any `json:"local_link_connection"`
	PhysicalNetwork     string         `json:"physical_network,omitempty"`
	PXEEnabled          bool           `json:"pxe_enabled"`
	IsSmartNIC          bool           `json:"is_smartnic"`
	PortgroupUUID       string         `json:"portgroup_uuid,omitempty"`
	CreatedAt           time.Time      `json:"created_at"`
	UpdatedAt           *time.Time     `json:"updated_at,omitempty"`
}

// Normalize replaces nil maps with empty ones.
func (p *Port) Normalize() {
	for _, m := range []*map[string]any{&p.Extra, &p.InternalInfo, &p.LocalLinkConnection} {
		if *m == nil {
			*m = map[string]any{}
		}
	}
}

// NodeFilter selects nodes in ListNodes. Empty strings and nil pointers mean "any".
type NodeFilter struct {
	ProvisionState string
	Driver         string
	Maintenance    *bool
	Associated     *bool
	ResourceClass  *string
	ConductorGroup *string
	Owner          string
	InstanceUUID   string
	Reserved       *bool
	ChassisUUID    string
	// Shards and children (API 1.82/1.83, sql_shards.go): Shards lists the shards to match, Sharded selects
	// nodes with (true) or without (false) a shard. ParentNode lists the children of that node UUID; HideChildren
	// (the API's default) leaves out nodes that have a parent; IncludeChildren overrides both.
	Shards          []string
	Sharded         *bool
	ParentNode      string
	HideChildren    bool
	IncludeChildren bool
	// Filters on fields of the node's JSON body (sql_nodefilters.go), matched in SQL so that limit and marker
	// pages are exact. Fault and Lessee match the field exactly (an empty value matches nodes without it);
	// Project matches the owner or the lessee; DescriptionContains is a case-sensitive substring of the
	// description; Retired matches the retired flag.
	Fault               *string
	Lessee              *string
	Project             *string
	DescriptionContains *string
	Retired             *bool
	// Booted-image filters (Ferric's extension, sql_bootc.go): nodes whose reporter last reported this booted
	// image reference or digest.
	BootcImage  *string
	BootcDigest *string
}

// ListOptions pages and sorts a listing. Marker is the UUID of the last item of the previous page.
type ListOptions struct {
	Limit   int
	Marker  string
	SortKey string // a column from NodeSortKeys / PortSortKeys; "" = id
	SortDir string // "asc" (default) or "desc"
}

// NodeSortKeys are the node fields a listing may be sorted by.
func NodeSortKeys() []string {
	return []string{"id", "uuid", "name", "created_at", "updated_at", "provision_state", "driver", "power_state",
		"maintenance", "resource_class", "conductor_group", "owner", "instance_uuid", "provision_updated_at"}
}

// PortSortKeys are the port fields a listing may be sorted by.
func PortSortKeys() []string {
	return []string{"id", "uuid", "address", "created_at", "updated_at"}
}

// PortFilter selects ports in ListPorts.
type PortFilter struct {
	NodeUUID      string
	Address       string
	PortgroupUUID string
}

// Store is the conductor's persistence.
type Store interface {
	CreateNode(ctx context.Context, n *Node) error
	// GetNode finds a node by UUID or name.
	GetNode(ctx context.Context, ident string) (*Node, error)
	ListNodes(ctx context.Context, f NodeFilter, o ListOptions) ([]*Node, error)
	// UpdateNode writes every field of n except the reservation, and sets UpdatedAt, only while n.Reservation (the
	// holder Reserve returned) still holds the node: otherwise nothing is written and the error matches both
	// ErrNotHolder and *LockedError (naming the current holder, "" when none). A node the caller has not
	// reserved (n.Reservation "") is never written. Writing a node in a provision state that ends or is outside
	// a deploy (anything but deploying, wait call-back, deploy hold) deletes its config drive in the same
	// transaction.
	UpdateNode(ctx context.Context, n *Node) error
	// UpdateNodeIfUnchanged writes n, read without a reservation, only if nobody holds the node and nobody wrote
	// it since it was read (its updated_at and provision_state are still n's): a compare-and-swap for a write
	// that cannot conflict with anything but a concurrent writer, such as a heartbeat that only stamps its time.
	// false: the node changed or is held, and nothing was written.
	UpdateNodeIfUnchanged(ctx context.Context, n *Node) (bool, error)
	// NodeNames returns the names of the given nodes by UUID in one read, for pages that show many nodes by name
	// (a rollout's). Nodes without a name and unknown ones (deleted since) are absent: callers show the UUID.
	NodeNames(ctx context.Context, uuids []string) (map[string]string, error)
	// DeleteNode removes a node with its ports, config drive, inventory and deploy logs.
	DeleteNode(ctx context.Context, uuid string) error
	// Reserve takes the node's exclusive lock for holder with one atomic conditional update; it returns the node as
	// stored at that update, with Reservation = holder, or a *LockedError naming the current holder.
	Reserve(ctx context.Context, ident, holder string) (*Node, error)
	// Release drops the lock if holder still holds it.
	Release(ctx context.Context, uuid, holder string) error
	// ReleaseAll drops every lock held by holder (conductor start and shutdown) and returns how many.
	ReleaseAll(ctx context.Context, holder string) (int, error)

	CreatePort(ctx context.Context, p *Port) error
	GetPort(ctx context.Context, uuid string) (*Port, error)
	ListPorts(ctx context.Context, f PortFilter, o ListOptions) ([]*Port, error)
	UpdatePort(ctx context.Context, p *Port) error
	DeletePort(ctx context.Context, uuid string) error
	// NodeByMACs returns the node owning a port with one of the addresses.
	NodeByMACs(ctx context.Context, macs []string) (*Node, error)

	// AppendDeployLog adds lines to a node's log for one deploy (run), kept after the deploy ends. A run keeps at
	// most Limits.LogLinesPerRun lines and Limits.LogBytesPerRun bytes of messages, then one final "log
	// truncated" line; later lines are dropped without error. The first append of a new run prunes the node's
	// older runs to the newest Limits.LogRunsPerNode (the new one included).
	AppendDeployLog(ctx context.Context, nodeUUID, run string, lines []LogLine) error
	// DeployLog returns the lines of a node's run ("" = the latest run).
	DeployLog(ctx context.Context, nodeUUID, run string) ([]LogLine, error)

	// PutConfigDrive keeps the config drive of a node's deploy (Ironic's string form or its dict form, as the
	// provision request gave it), replacing any previous one. It lives apart from the node so that it is
	// never part of a node as the API renders it, and only while the deploy runs (see UpdateNode).
	PutConfigDrive(ctx context.Context, nodeUUID string, drive any) error
	// ConfigDrive returns the node's config drive (a string or a map[string]any), ErrNotFound when none.
	ConfigDrive(ctx context.Context, nodeUUID string) (any, error)
	// DeleteConfigDrive forgets the node's config drive; it is not an error when there is none.
	DeleteConfigDrive(ctx context.Context, nodeUUID string) error

	// PutInventory keeps a node's hardware inventory and inspection plugin_data (JSON objects), replacing the
	// previous ones; ErrNotFound when the node does not exist. They go with the node.
	PutInventory(ctx context.Context, nodeUUID string, inv Inventory) error
	// Inventory returns the node's inventory, ErrNotFound when it has none.
	Inventory(ctx context.Context, nodeUUID string) (*Inventory, error)

	Close() error

	// Deploy templates (issue 15 B; Ironic's deploy_templates, API 1.55). Node traits need no methods of their
	// own: they are the node's Traits, written with the node under its reservation.
	// CreateDeployTemplate inserts a template (UUID and CreatedAt set by the caller); a UUID or name in use is a
	// *DuplicateError (matching ErrDuplicate) naming the field.
	CreateDeployTemplate(ctx context.Context, t *DeployTemplate) error
	// GetDeployTemplate finds a template by UUID or name.
	GetDeployTemplate(ctx context.Context, ident string) (*DeployTemplate, error)
	ListDeployTemplates(ctx context.Context, o ListOptions) ([]*DeployTemplate, error)
	// DeployTemplatesByNames returns the templates with these names, in name order (unknown names are skipped).
	DeployTemplatesByNames(ctx context.Context, names []string) ([]*DeployTemplate, error)
	// UpdateDeployTemplate writes name, steps and extra of the template with t.UUID and sets UpdatedAt.
	UpdateDeployTemplate(ctx context.Context, t *DeployTemplate) error
	DeleteDeployTemplate(ctx context.Context, uuid string) error
	// Chassis (sql_chassis.go). A node names its chassis in Node.ChassisUUID; the store refuses a node naming a
	// chassis that does not exist and the deletion of a chassis that holds nodes (ErrChassisNotEmpty).
	CreateChassis(ctx context.Context, c *Chassis) error
	GetChassis(ctx context.Context, uuid string) (*Chassis, error)
	ListChassis(ctx context.Context, o ListOptions) ([]*Chassis, error)
	UpdateChassis(ctx context.Context, c *Chassis) error
	DeleteChassis(ctx context.Context, uuid string) error
	// Allocations (API 1.52). An allocation and the node it holds are always written together: the node's
	// allocation_uuid and instance_uuid and the allocation's node_uuid change in one transaction, fenced by the
	// node's reservation as UpdateNode is. An allocation goes with its node (DeleteNode), and UpdateNode of a
	// node whose AllocationUUID is "" deletes the allocation bound to it in the same transaction.

	// CreateAllocation inserts an allocation without a node; UUID, State and CreatedAt must be set. A UUID or
	// name already used is ErrDuplicate (the error names which).
	CreateAllocation(ctx context.Context, a *Allocation) error
	// GetAllocation finds an allocation by UUID or name.
	GetAllocation(ctx context.Context, ident string) (*Allocation, error)
	ListAllocations(ctx context.Context, f AllocationFilter, o ListOptions) ([]*Allocation, error)
	// UpdateAllocation writes a's name and extra (PATCH) onto the allocation as stored, sets UpdatedAt, and
	// leaves a as stored. Each write of an allocation changes only its own fields, in a transaction that holds
	// the row, so a PATCH and a concurrent bind or failure never undo each other.
	UpdateAllocation(ctx context.Context, a *Allocation) error
	// SetAllocationNode writes a's state and last_error with a.NodeUUID = n.UUID and the reserved node n (whose
	// AllocationUUID and InstanceUUID the caller set) in one transaction, fenced by n.Reservation (ErrNotHolder,
	// as UpdateNode). ErrDuplicate when another node already has a.UUID as instance_uuid or another allocation
	// holds n. n nil records an outcome without a node (state error): node_uuid cleared. a is left as stored.
	SetAllocationNode(ctx context.Context, n *Node, a *Allocation) error
	// DeleteAllocation removes an allocation. When n is not nil (the reserved node it held, with AllocationUUID
	// and InstanceUUID cleared by the caller), n is written in the same transaction, fenced by its reservation.
	DeleteAllocation(ctx context.Context, uuid string, n *Node) error
	// Portgroups (issue 15): a node's bonded ports. GetPortgroup takes a UUID or a name; Create and Update
	// answer ErrDuplicate naming the UUID, name or address that is taken, ErrNotFound for an unknown node;
	// DeletePortgroup refuses while ports still refer to the portgroup (callers refuse that first).
	CreatePortgroup(ctx context.Context, g *Portgroup) error
	GetPortgroup(ctx context.Context, ident string) (*Portgroup, error)
	ListPortgroups(ctx context.Context, f PortgroupFilter, o ListOptions) ([]*Portgroup, error)
	UpdatePortgroup(ctx context.Context, g *Portgroup) error
	DeletePortgroup(ctx context.Context, uuid string) error
	// Node history (issue 15, API 1.78): events recorded about a node, newest kept. AddNodeHistory prunes the
	// node's oldest records beyond keep in the same transaction (keep <= 0: no limit); ErrNotFound for an unknown
	// node. GetNodeHistory finds an event of that node only.
	AddNodeHistory(ctx context.Context, h *HistoryEvent, keep int) error
	ListNodeHistory(ctx context.Context, nodeUUID string, o ListOptions) ([]*HistoryEvent, error)
	GetNodeHistory(ctx context.Context, nodeUUID, eventUUID string) (*HistoryEvent, error)
	// Shards (issue 15, API 1.82): nodes counted per shard, largest first; nodes without one count as "None".
	ListShards(ctx context.Context) ([]ShardCount, error)
	// BIOS settings and firmware components (issue 15 E, sql_bios.go): what a node's bios and firmware interfaces
	// last reported, cached at manage and clean as Ironic does; both go with the node. ErrNotFound for an unknown
	// node. SetBIOSSettings replaces the whole set; SetFirmwareComponents keeps initial_version of known components.
	SetBIOSSettings(ctx context.Context, nodeUUID string, settings []BIOSSetting) error
	BIOSSettings(ctx context.Context, nodeUUID string) ([]BIOSSetting, error)
	SetFirmwareComponents(ctx context.Context, nodeUUID string, comps []FirmwareComponent) error
	FirmwareComponents(ctx context.Context, nodeUUID string) ([]FirmwareComponent, error)
	// Volume connectors and targets (issue 15 H, API 1.32, sql_volumes.go): both go with their node. Get takes a
	// UUID; List takes a node UUID ("" for all). Create and Update answer ErrDuplicate with Ironic's message for a
	// taken (type, connector_id) or (node, boot_index) and for a taken UUID, ErrNotFound for an unknown node.
	CreateVolumeConnector(ctx context.Context, c *VolumeConnector) error
	GetVolumeConnector(ctx context.Context, uuid string) (*VolumeConnector, error)
	ListVolumeConnectors(ctx context.Context, nodeUUID string, o ListOptions) ([]*VolumeConnector, error)
	UpdateVolumeConnector(ctx context.Context, c *VolumeConnector) error
	DeleteVolumeConnector(ctx context.Context, uuid string) error
	CreateVolumeTarget(ctx context.Context, v *VolumeTarget) error
	GetVolumeTarget(ctx context.Context, uuid string) (*VolumeTarget, error)
	ListVolumeTargets(ctx context.Context, nodeUUID string, o ListOptions) ([]*VolumeTarget, error)
	UpdateVolumeTarget(ctx context.Context, v *VolumeTarget) error
	DeleteVolumeTarget(ctx context.Context, uuid string) error

	// Node summaries (issue 15's list speed, sql_nodecols.go). ListNodeColumns lists like ListNodes (same
	// filters, paging and order) but reads only the node's columns, not its JSON body: the nodes it returns
	// hold ID, UUID, Name, Driver, ProvisionState, PowerState, Maintenance, InstanceUUID, ResourceClass,
	// ConductorGroup, Owner, Reservation, CreatedAt, UpdatedAt and ProvisionUpdatedAt, every other field empty.
	// GET /v1/nodes without detail needs nothing else.
	ListNodeColumns(ctx context.Context, f NodeFilter, o ListOptions) ([]*Node, error)

	// Conductor membership (issue 17, sql_conductors.go). RegisterConductor inserts or takes over the row of
	// c.Hostname (a conductor restarted under its old name continues it, as Ironic's register_conductor with
	// update_existing), marks it online and stamps updated_at; HeartbeatConductor moves updated_at and reports
	// ErrNotFound when the row is gone; UnregisterConductor marks it offline at a clean stop. ReleaseHeldBy
	// breaks the reservation of node uuid if holder still holds it, and reports whether it did.
	RegisterConductor(ctx context.Context, c *Conductor) error
	HeartbeatConductor(ctx context.Context, hostname string) error
	UnregisterConductor(ctx context.Context, hostname string) error
	ListConductors(ctx context.Context) ([]*Conductor, error)
	ReleaseHeldBy(ctx context.Context, uuid, holder string) (bool, error)
	// CountNodesByState counts every node by provision state and power state (sql_counts.go): one GROUP BY over
	// two indexed-or-small columns, never the nodes' bodies, so the metrics scrape of a large fleet stays cheap.
	CountNodesByState(ctx context.Context) (map[NodeStateKey]int, error)

	// Node jobs (issue 17, sql_jobs.go): API-started work handed to the conductor that drives the node.
	// CreateJob queues a job; ClaimJob gives its arguments to exactly one claimer ((nil, nil) when it is no longer
	// queued); FinishJob records the claimer's answer; ListClaimedJobs lists one claimer's unanswered ones;
	// CancelJob withdraws a job nobody claimed; ExpireJobs cancels, fails and deletes old ones; ListenJobs
	// delivers PostgreSQL notifications (ErrNoNotify on SQLite).
	CreateJob(ctx context.Context, j *Job) error
	ClaimJob(ctx context.Context, id, host string) (*Job, error)
	FinishJob(ctx context.Context, id, host, state, errKind, errMsg string) error
	CancelJob(ctx context.Context, id string) (bool, error)
	GetJob(ctx context.Context, id string) (*Job, error)
	ListQueuedJobs(ctx context.Context) ([]*Job, error)
	ListClaimedJobs(ctx context.Context, host string) ([]*Job, error)
	ExpireJobs(ctx context.Context, queuedBefore, finishedBefore time.Time) (int64, error)
	ListenJobs(ctx context.Context, fn func(payload string)) error

	// Reboot coordination (issue 18, sql_fleetlock.go): FleetLock's semaphore per reboot group. AcquireFleetLock
	// never lets a group's holders outnumber its slots (the override, else defaultSlots), even with conductors
	// acquiring at once; a holder acquiring again gets nil, a full group ErrFleetLockFull. ReleaseFleetLock
	// reports whether id held a slot. PutFleetLockGroup creates the group or changes what u sets.
	AcquireFleetLock(ctx context.Context, group, id string, defaultSlots int) error
	ReleaseFleetLock(ctx context.Context, group, id string) (bool, error)
	PutFleetLockGroup(ctx context.Context, group string, u FleetLockUpdate) (*FleetLockGroup, error)
	GetFleetLockGroup(ctx context.Context, group string) (*FleetLockGroup, error)
	ListFleetLockGroups(ctx context.Context) ([]*FleetLockGroup, error)

	// Image-mode host reporters (issue 18, sql_bootc.go): one per node deployed with a reporter credential, gone
	// with the node. Only the credential's SHA-256 (hex) is stored. SetBootcCredential starts afresh (a deploy);
	// the others answer ErrNotFound for a node without a reporter.
	SetBootcCredential(ctx context.Context, nodeUUID, hash string) error
	DeleteBootcReporter(ctx context.Context, nodeUUID string) error
	BootcReporter(ctx context.Context, nodeUUID string) (*BootcReporter, error)
	// BootcReporters reads the reporters of many nodes at once (a list page), by node UUID; nodes without one
	// are absent from the map.
	BootcReporters(ctx context.Context, nodeUUIDs []string) (map[string]*BootcReporter, error)
	ConfirmBootcCredential(ctx context.Context, nodeUUID, hash string) error
	RotateBootcCredential(ctx context.Context, nodeUUID, used, next string) error
	RevokeBootcCredential(ctx context.Context, nodeUUID string) error
	RequestBootcRotation(ctx context.Context, nodeUUID string) error
	PutBootcReport(ctx context.Context, nodeUUID string, r BootcReport) error
	ListBootcImages(ctx context.Context, digest string) ([]BootcImage, error)
	ListBootcNodes(ctx context.Context, digest string, o ListOptions) ([]BootcNode, error)

	// Day-2 actions on image-mode hosts (issue 18, sql_bootc_actions.go). CreateBootcAction queues one
	// (ErrActionOpen while the node has an unfinished one); OpenBootcAction returns the unfinished one
	// (ErrNotFound: none); MoveBootcAction changes its state only from the state the caller saw.
	CreateBootcAction(ctx context.Context, a *BootcAction) error
	OpenBootcAction(ctx context.Context, nodeUUID string) (*BootcAction, error)
	GetBootcAction(ctx context.Context, nodeUUID, id string) (*BootcAction, error)
	ListBootcActions(ctx context.Context, nodeUUID string, limit int) ([]*BootcAction, error)
	MoveBootcAction(ctx context.Context, nodeUUID, id, from, to, errText string) (bool, error)

	// Rollouts of a bootc image in waves (issue 18, sql_bootc_rollouts.go). UpdateBootcRollout writes only while
	// the rollout is still in the state the caller saw; BootcDeadEnd returns "" for a digest that is not one.
	CreateBootcRollout(ctx context.Context, r *BootcRollout, nodes []BootcRolloutNode) error
	GetBootcRollout(ctx context.Context, id string) (*BootcRollout, error)
	ListBootcRollouts(ctx context.Context, state string) ([]*BootcRollout, error)
	UpdateBootcRollout(ctx context.Context, r *BootcRollout, from string) (bool, error)
	ListBootcRolloutNodes(ctx context.Context, id string, wave int) ([]BootcRolloutNode, error)
	UpdateBootcRolloutNode(ctx context.Context, n *BootcRolloutNode) error
	PutBootcDeadEnd(ctx context.Context, digest, image string) error
	BootcDeadEnd(ctx context.Context, digest string) (string, error)

	// The images view's tag resolutions, shared by the conductors (sql_bootc_resolutions.go). PutBootcResolution
	// never replaces an answer with an older one; GetBootcResolution answers ErrNotFound for an unknown key.
	PutBootcResolution(ctx context.Context, r *BootcResolution) error
	GetBootcResolution(ctx context.Context, key string) (*BootcResolution, error)
	PruneBootcResolutions(ctx context.Context, before time.Time) (int64, error)
}

// Limits bound what the store keeps of a node's deploy logs, so that a chatty or hostile agent cannot fill the
// database. Zero fields take the defaults shown.
type Limits struct {
	LogLinesPerRun int // lines kept per deploy log run before the "log truncated" line (20,000)
	LogBytesPerRun int // bytes of messages kept per run (4 MiB)
	LogRunsPerNode int // runs kept per node; older ones are pruned when a new one starts (10)
}

// defaults fills zero and negative fields with the values listed on Limits; OpenWithLimits calls it, so a caller
// never sees an unbounded store.
func (l *Limits) defaults() {
	if l.LogLinesPerRun <= 0 {
		l.LogLinesPerRun = 20000
	}
	if l.LogBytesPerRun <= 0 {
		l.LogBytesPerRun = 4 << 20
	}
	if l.LogRunsPerNode <= 0 {
		l.LogRunsPerNode = 10
	}
}

// Inventory is what inspection learned of a node: the inventory in the shape ironic-python-agent sends (cpu,
// memory, disks, interfaces, system_vendor, boot, bmc_address) and the plugin_data of the inspection rules.
type Inventory struct {
	Inventory  map[string]any `json:"inventory"`
	PluginData map[string]any `json:"plugin_data"`
	CreatedAt  time.Time      `json:"-"`
}

// Allocation states (Ironic's).
const (
	AllocationAllocating = "allocating"
	AllocationActive     = "active"
	AllocationError      = "error"
)

// Allocation asks for a node matching a resource class, traits, candidate nodes and owner (Ironic's
// allocation). NodeUUID is set while it holds a node (state active). Maps and slices are never nil once loaded.
type Allocation struct {
	ID             int64          `json:"-"`
	UUID           string         `json:"uuid"`
	Name           string         `json:"name,omitempty"`
	NodeUUID       string         `json:"node_uuid,omitempty"`
	State          string         `json:"state"`
	LastError      string         `json:"last_error,omitempty"`
	ResourceClass  string         `json:"resource_class,omitempty"`
	Traits         []string       `json:"traits"`
	CandidateNodes []string       `json:"candidate_nodes"` // node UUIDs, in the order asked
	Extra          map[string]any `json:"extra"`
	Owner          string         `json:"owner,omitempty"`
	CreatedAt      time.Time      `json:"created_at"`
	UpdatedAt      *time.Time     `json:"updated_at,omitempty"`
}

// Normalize replaces nil maps and slices with empty ones so the API renders {} and [].
func (a *Allocation) Normalize() {
	if a.Traits == nil {
		a.Traits = []string{}
	}
	if a.CandidateNodes == nil {
		a.CandidateNodes = []string{}
	}
	if a.Extra == nil {
		a.Extra = map[string]any{}
	}
}

// AllocationFilter selects allocations in ListAllocations. Empty strings mean "any".
type AllocationFilter struct {
	NodeUUID      string
	ResourceClass string
	State         string
	Owner         string
}

// AllocationSortKeys are the allocation fields a listing may be sorted by.
func AllocationSortKeys() []string {
	return []string{"id", "uuid", "name", "node_uuid", "state", "resource_class", "owner", "created_at", "updated_at"}
}

// LogLine is one line of a deploy log.
type LogLine struct {
	Run     string    `json:"run"`
	Time    time.Time `json:"time"`
	Source  string    `json:"source"` // "conductor" or "agent"
	Message string    `json:"message"`
}
