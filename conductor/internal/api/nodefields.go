package api

import (
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// nodeField is a node field of the API: its name, the microversion that introduced it, and how to read it.
type nodeField struct {
	name  string
	since int
	get   func(v *nodeView) any
}

// nodeView is what rendering needs besides the node.
type nodeView struct {
	n    *store.Node
	base string
	host string
	ring Membership // nil: one conductor, host drives every node
}

// conductor is the conductor that drives the node: the ring's owner among the alive conductors of the node's
// group (null when none is alive, as Ironic shows it), or this one when it is alone.
func (v *nodeView) conductor() any {
	if v.ring == nil {
		return v.host
	}
	return strOrNil(v.ring.Owner(v.n.UUID, v.n.ConductorGroup))
}

func strOrNil(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func timeOrNil(t *time.Time) any {
	if t == nil || t.IsZero() {
		return nil
	}
	return isoTime(*t)
}

// isoTime formats as Ironic does: microseconds and a numeric UTC offset.
func isoTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000-07:00") }

func links(base, kind, id, sub string) []map[string]string {
	p := kind + "/" + id
	if sub != "" {
		p += "/" + sub
	}
	return []map[string]string{{"href": base + "/v1/" + p, "rel": "self"}, {"href": base + "/" + p, "rel": "bookmark"}}
}

func iface(kind string) func(v *nodeView) any {
	return func(v *nodeView) any { return strOrNil(v.n.Interfaces[kind]) }
}

// nodeFields lists the node fields in Ironic's output order.
func nodeFields() []nodeField {
	return []nodeField{
		{"uuid", 1, func(v *nodeView) any { return v.n.UUID }},
		{"created_at", 1, func(v *nodeView) any { return isoTime(v.n.CreatedAt) }},
		{"updated_at", 1, func(v *nodeView) any { return timeOrNil(v.n.UpdatedAt) }},
		{"automated_clean", 47, func(v *nodeView) any {
			if v.n.AutomatedClean == nil {
				return nil
			}
			return *v.n.AutomatedClean
		}},
		{"bios_interface", 40, iface("bios")},
		{"boot_interface", 31, iface("boot")},
		{"boot_mode", 75, func(v *nodeView) any { return strOrNil(v.n.BootMode) }},
		{"clean_step", 7, func(v *nodeView) any { return v.n.CleanStep }},
		{"conductor_group", 46, func(v *nodeView) any { return v.n.ConductorGroup }},
		{"console_enabled", 1, func(v *nodeView) any { return v.n.ConsoleEnabled }},
		{"console_interface", 31, iface("console")},
		{"deploy_interface", 31, iface("deploy")},
		{"deploy_step", 44, func(v *nodeView) any { return v.n.DeployStep }},
		{"description", 51, func(v *nodeView) any { return strOrNil(v.n.Description) }},
		{"driver", 1, func(v *nodeView) any { return v.n.Driver }},
		{"driver_info", 1, func(v *nodeView) any { return maskSecrets(v.n.DriverInfo) }},
		{"driver_internal_info", 3, func(v *nodeView) any { return maskSecrets(v.n.DriverInternalInfo) }},
		{"extra", 1, func(v *nodeView) any { return v.n.Extra }},
		{"fault", 42, func(v *nodeView) any { return strOrNil(v.n.Fault) }},
		{"firmware_interface", 86, iface("firmware")},
		{"inspection_finished_at", 6, func(v *nodeView) any { return timeOrNil(v.n.InspectionFinishedAt) }},
		{"inspection_started_at", 6, func(v *nodeView) any { return timeOrNil(v.n.InspectionStartedAt) }},
		{"inspect_interface", 31, iface("inspect")},
		{"instance_info", 1, func(v *nodeView) any { return maskSecrets(v.n.InstanceInfo) }},
		{"instance_uuid", 1, func(v *nodeView) any { return strOrNil(v.n.InstanceUUID) }},
		{"last_error", 1, func(v *nodeView) any { return strOrNil(v.n.LastError) }},
		{"lessee", 65, func(v *nodeView) any { return strOrNil(v.n.Lessee) }},
		{"maintenance", 1, func(v *nodeView) any { return v.n.Maintenance }},
		{"maintenance_reason", 1, func(v *nodeView) any { return strOrNil(v.n.MaintenanceReason) }},
		{"management_interface", 31, iface("management")},
		{"name", 5, func(v *nodeView) any { return strOrNil(v.n.Name) }},
		{"network_data", 66, func(v *nodeView) any { return v.n.NetworkData }},
		{"network_interface", 20, iface("network")},
		{"owner", 50, func(v *nodeView) any { return strOrNil(v.n.Owner) }},
		{"parent_node", 83, func(v *nodeView) any { return strOrNil(v.n.ParentNode) }},
		{"power_interface", 31, iface("power")},
		{"power_state", 1, func(v *nodeView) any { return strOrNil(v.n.PowerState) }},
		{"properties", 1, func(v *nodeView) any { return v.n.Properties }},
		{"protected", 48, func(v *nodeView) any { return v.n.Protected }},
		{"protected_reason", 48, func(v *nodeView) any { return strOrNil(v.n.ProtectedReason) }},
		{"provision_state", 1, func(v *nodeView) any { return v.n.ProvisionState }},
		{"provision_updated_at", 1, func(v *nodeView) any { return timeOrNil(v.n.ProvisionUpdatedAt) }},
		{"raid_config", 12, func(v *nodeView) any { return v.n.RAIDConfig }},
		{"raid_interface", 31, iface("raid")},
		{"rescue_interface", 38, iface("rescue")},
		{"reservation", 1, func(v *nodeView) any { return strOrNil(v.n.Reservation) }},
		{"resource_class", 21, func(v *nodeView) any { return strOrNil(v.n.ResourceClass) }},
		{"retired", 61, func(v *nodeView) any { return v.n.Retired }},
		{"retired_reason", 61, func(v *nodeView) any { return strOrNil(v.n.RetiredReason) }},
		{"secure_boot", 75, func(v *nodeView) any {
			if v.n.SecureBoot == nil {
				return nil
			}
			return *v.n.SecureBoot
		}},
		{"service_step", 89, func(v *nodeView) any { return v.n.ServiceStep }},
		{"shard", 82, func(v *nodeView) any { return strOrNil(v.n.Shard) }},
		{"storage_interface", 33, iface("storage")},
		{"target_power_state", 1, func(v *nodeView) any { return strOrNil(v.n.TargetPowerState) }},
		{"target_provision_state", 1, func(v *nodeView) any { return strOrNil(v.n.TargetProvisionState) }},
		{"target_raid_config", 12, func(v *nodeView) any { return v.n.TargetRAIDConfig }},
		{"traits", 37, func(v *nodeView) any { return v.n.Traits }},
		{"vendor_interface", 31, iface("vendor")},
		{"disable_power_off", 95, func(v *nodeView) any { return v.n.DisablePowerOff }},
		{"links", 1, func(v *nodeView) any { return links(v.base, "nodes", v.n.UUID, "") }},
		{"conductor", 49, func(v *nodeView) any { return v.conductor() }},
		{"allocation_uuid", 52, func(v *nodeView) any { return strOrNil(v.n.AllocationUUID) }},
		{"chassis_uuid", 1, func(v *nodeView) any { return strOrNil(v.n.ChassisUUID) }},
		{"ports", 1, func(v *nodeView) any { return links(v.base, "nodes", v.n.UUID, "ports") }},
		{"states", 14, func(v *nodeView) any { return links(v.base, "nodes", v.n.UUID, "states") }},
		{"portgroups", 24, func(v *nodeView) any { return links(v.base, "nodes", v.n.UUID, "portgroups") }},
		{"volume", 32, func(v *nodeView) any { return links(v.base, "nodes", v.n.UUID, "volume") }},
	}
}

// defaultListFields are the fields of a node list without detail.
func defaultListFields(version int) []string {
	f := []string{"uuid", "instance_uuid", "maintenance", "power_state", "provision_state"}
	if version >= 5 {
		f = append(f, "name")
	}
	return append(f, "links")
}

// fieldSet validates a fields= value against the version; an empty value means nil (all fields).
func fieldSet(raw string, version int) ([]string, error) {
	if raw == "" {
		return nil, nil
	}
	if version < 8 {
		return nil, notAcceptable() // Ironic's check_allow_specify_fields
	}
	known := map[string]int{}
	for _, f := range nodeFields() {
		known[f.name] = f.since
	}
	out := []string{"uuid"}
	for _, f := range strings.Split(raw, ",") {
		f = strings.TrimSpace(f)
		since, ok := known[f]
		if !ok || f == "" {
			return nil, badRequest("Field(s) \"%s\" are not valid", f)
		}
		if since > version {
			return nil, notAcceptable() // Ironic's check_allowed_fields
		}
		if f != "uuid" {
			out = append(out, f)
		}
	}
	return append(out, "links"), nil
}

// renderNode renders a node at a version; fields nil means every field of that version.
func (s *Server) renderNode(n *store.Node, version int, fields []string) *ordered {
	v := &nodeView{n: n, base: s.cfg.PublicURL, host: s.eng.Host(), ring: s.cfg.Cluster}
	want := map[string]bool{}
	for _, f := range fields {
		want[f] = true
	}
	o := newOrdered()
	all := nodeFields()
	if fields != nil {
		// Keep the caller's order, as Ironic does.
		byName := map[string]nodeField{}
		for _, f := range all {
			byName[f.name] = f
		}
		for _, name := range fields {
			o.set(name, byName[name].get(v))
		}
		return o
	}
	for _, f := range all {
		if f.since <= version {
			o.set(f.name, f.get(v))
		}
	}
	return o
}

// secretMarkers are substrings of keys whose values are never shown.
func secretMarkers() []string {
	return []string{"password", "passwd", "secret", "token", "private_key", "credential", "pull_secret"}
}

// secretKey reports whether the value under key k, in a map at depth (0: the field itself, e.g. instance_info),
// is never shown: a key containing a secret marker at any depth, and configdrive and image_url as top-level keys
// only (as words deeper down they name no secret). maskDepth and the node writer's appendMasked share it, so the
// generic renderer and the fast path cannot disagree on what is secret.
func secretKey(k string, depth int) bool {
	lk := strings.ToLower(k)
	if depth == 0 && (lk == "configdrive" || lk == "image_url") {
		return true
	}
	for _, s := range secretMarkers() {
		if strings.Contains(lk, s) {
			return true
		}
	}
	return false
}

// maskSecrets returns a copy of m with secret values replaced by "******", at every depth: nested maps and maps
// inside lists too (a pull secret in a list of registries is as secret as one at the top).
func maskSecrets(m map[string]any) map[string]any { return maskDepth(m, 0) }

// MaskSecrets is maskSecrets for the other views of a node (the web page): what the API hides, they hide too.
func MaskSecrets(m map[string]any) map[string]any { return maskSecrets(m) }

// maxMaskDepth bounds the walk: deeper values are replaced whole rather than shown unchecked (a node's JSON
// fields come from clients, and a hostile one may nest without end).
const maxMaskDepth = 32

func maskDepth(m map[string]any, depth int) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		if v != nil && secretKey(k, depth) {
			out[k] = "******"
			continue
		}
		out[k] = maskValue(v, depth+1)
	}
	return out
}

// maskValue masks the maps found in v (directly, or in lists at any depth).
func maskValue(v any, depth int) any {
	if depth > maxMaskDepth {
		switch v.(type) {
		case map[string]any, []any:
			return "******"
		}
		return v
	}
	switch x := v.(type) {
	case map[string]any:
		return maskDepth(x, depth)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = maskValue(e, depth+1)
		}
		return out
	case []map[string]any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = maskDepth(e, depth+1)
		}
		return out
	}
	return v
}

// patchableFields lists the node fields a PATCH may change at a version (Ironic's PATCH_ALLOWED_FIELDS).
func patchableFields(version int) []string {
	f := []string{"automated_clean", "bios_interface", "boot_interface", "chassis_uuid", "conductor_group",
		"console_interface", "deploy_interface", "description", "driver", "driver_info", "extra", "inspect_interface",
		"instance_info", "instance_uuid", "lessee", "maintenance", "management_interface", "name", "network_data",
		"network_interface", "owner", "power_interface", "properties", "protected", "protected_reason", "raid_interface",
		"rescue_interface", "resource_class", "retired", "retired_reason", "storage_interface", "vendor_interface"}
	if version >= 82 {
		f = append(f, "shard")
	}
	if version >= 83 {
		f = append(f, "parent_node")
	}
	if version >= 86 {
		f = append(f, "firmware_interface")
	}
	if version >= 95 {
		f = append(f, "disable_power_off")
	}
	sort.Strings(f)
	return f
}

// docOf returns the patchable view of a node: the document JSON Patch operations apply to.
func docOf(n *store.Node, version int) map[string]any {
	v := &nodeView{n: n}
	byName := map[string]nodeField{}
	for _, f := range nodeFields() {
		byName[f.name] = f
	}
	doc := map[string]any{}
	for _, name := range patchableFields(version) {
		val := byName[name].get(v)
		switch name {
		case "driver_info":
			val = copyMap(n.DriverInfo)
		case "instance_info":
			val = copyMap(n.InstanceInfo)
		}
		doc[name] = val
	}
	return doc
}

func copyMap(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// applyDoc writes a node document (create body or patched document) onto n, checking types. Every key must be
// one of allowed.
func applyDoc(n *store.Node, doc map[string]any, allowed []string) error {
	ok := map[string]bool{}
	for _, a := range allowed {
		ok[a] = true
	}
	keys := make([]string, 0, len(doc))
	for k := range doc {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !ok[k] {
			return badRequest("Schema error for node: Additional properties are not allowed ('%s' was unexpected)", k)
		}
		if err := setField(n, k, doc[k]); err != nil {
			return err
		}
	}
	return nil
}

func setField(n *store.Node, k string, v any) error {
	str := func(dst *string, max int) error {
		switch x := v.(type) {
		case nil:
			*dst = ""
		case string:
			if max > 0 && len(x) > max {
				return badRequest("Invalid %s: longer than %d characters", k, max)
			}
			*dst = x
		default:
			return badRequest("Invalid %s: %v is not a string", k, v)
		}
		return nil
	}
	boolean := func(dst *bool) error {
		b, err := toBool(k, v)
		if err != nil {
			return err
		}
		*dst = b
		return nil
	}
	dict := func(dst *map[string]any) error {
		switch x := v.(type) {
		case nil:
			*dst = map[string]any{}
		case map[string]any:
			*dst = x
		default:
			return badRequest("Invalid %s: %v is not an object", k, v)
		}
		return nil
	}
	if strings.HasSuffix(k, "_interface") {
		var s string
		if err := str(&s, 255); err != nil {
			return err
		}
		n.Interfaces[strings.TrimSuffix(k, "_interface")] = s
		return nil
	}
	switch k {
	case "uuid":
		if err := str(&n.UUID, 36); err != nil {
			return err
		}
		if n.UUID != "" && !isUUID(n.UUID) {
			return badRequest("Invalid uuid %q: expected a UUID like 0862e37f-c229-4fe3-aa45-d637b29e7b5e", n.UUID)
		}
	case "name":
		if err := str(&n.Name, 255); err != nil {
			return err
		}
		if n.Name != "" && !validName(n.Name) {
			return badRequest("Expected a logical name but received %s. Names may contain letters, digits, '-', '.', '_' and '~' and must not be a UUID", n.Name)
		}
	case "driver":
		if err := str(&n.Driver, 255); err != nil {
			return err
		}
		if n.Driver == "" {
			return badRequest("Invalid driver: a driver is required")
		}
	case "driver_info":
		return dict(&n.DriverInfo)
	case "instance_info":
		return dict(&n.InstanceInfo)
	case "properties":
		return dict(&n.Properties)
	case "extra":
		return dict(&n.Extra)
	case "network_data":
		if err := checkNetworkDataField(v); err != nil {
			return err
		}
		return dict(&n.NetworkData)
	case "instance_uuid":
		if err := str(&n.InstanceUUID, 36); err != nil {
			return err
		}
		if n.InstanceUUID != "" && !isUUID(n.InstanceUUID) {
			return badRequest("Invalid instance_uuid %q: expected a UUID", n.InstanceUUID)
		}
	case "chassis_uuid":
		if x, ok := v.(string); ok && !isUUID(x) {
			return badRequest("Expected UUID for chassis_uuid: %s", x)
		}
		return str(&n.ChassisUUID, 36)
	case "instance_name":
		return str(&n.InstanceName, 255)
	case "resource_class":
		return str(&n.ResourceClass, 80)
	case "conductor_group":
		if err := str(&n.ConductorGroup, 255); err != nil {
			return err
		}
		n.ConductorGroup = strings.ToLower(n.ConductorGroup)
		return checkConductorGroup(n.ConductorGroup)
	case "owner":
		return str(&n.Owner, 255)
	case "lessee":
		return str(&n.Lessee, 255)
	case "shard":
		return str(&n.Shard, 255)
	case "description":
		if d, ok := v.(string); ok && utf8.RuneCountInString(d) > maxDescription { // characters, as Ironic's maxLength
			return badRequest("Cannot update node with description exceeding %d characters", maxDescription)
		}
		return str(&n.Description, 0)
	case "parent_node":
		return str(&n.ParentNode, 36) // Ironic's schema: a UUID or a name of at most 36 characters
	case "protected_reason":
		return str(&n.ProtectedReason, 255)
	case "retired_reason":
		return str(&n.RetiredReason, 255)
	case "maintenance":
		return boolean(&n.Maintenance)
	case "protected":
		return boolean(&n.Protected)
	case "retired":
		return boolean(&n.Retired)
	case "disable_power_off":
		return boolean(&n.DisablePowerOff)
	case "automated_clean":
		if v == nil {
			n.AutomatedClean = nil
			return nil
		}
		b, err := toBool(k, v)
		if err != nil {
			return err
		}
		n.AutomatedClean = &b
	default:
		return badRequest("Field %s cannot be set", k)
	}
	return nil
}

// toBool accepts JSON booleans and the strings "true"/"false" (gophercloud and the CLI send strings).
func toBool(k string, v any) (bool, error) {
	switch x := v.(type) {
	case bool:
		return x, nil
	case string:
		switch strings.ToLower(x) {
		case "true", "1", "yes", "on":
			return true, nil
		case "false", "0", "no", "off":
			return false, nil
		}
	case nil:
		return false, nil
	}
	return false, badRequest("Invalid %s: %v is not a boolean; use true or false", k, v)
}

func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, c := range s {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !strings.ContainsRune("0123456789abcdefABCDEF", c) {
				return false
			}
		}
	}
	return true
}

// validName is Ironic's logical name rule (RFC 3986 unreserved characters), excluding UUIDs.
func validName(s string) bool {
	if isUUID(s) {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("-._~", c)) {
			return false
		}
	}
	return true
}

// fmtList joins for messages.
func fmtList(xs []string) string { return strings.Join(xs, ", ") }
