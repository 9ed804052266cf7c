package api

// The field tables of recjson.go's list encoder, one per resource: each writes what the resource's render
// function shows (renderPort, renderPortgroup, renderChassis, renderTemplate, renderAllocation,
// renderVolumeConnector, renderVolumeTarget), field by field.

import (
	"time"

	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// recEncoders holds the list encoder of every resource, built once per server (links need its public URL).
type recEncoders struct {
	ports      *recEncoder[*store.Port]
	portgroups *recEncoder[*store.Portgroup]
	chassis    *recEncoder[*store.Chassis]
	templates  *recEncoder[*store.DeployTemplate]
	allocs     *recEncoder[*store.Allocation]
	connectors *recEncoder[*store.VolumeConnector]
	targets    *recEncoder[*store.VolumeTarget]
}

// newRecEncoders builds every table; base is the public URL the links start with.
func newRecEncoders(base string) *recEncoders {
	return &recEncoders{ports: portEncoder(base), portgroups: portgroupEncoder(base), chassis: chassisEncoder(base),
		templates: templateEncoder(base), allocs: allocationEncoder(base), connectors: connectorEncoder(base),
		targets: targetEncoder(base)}
}

// common gives the writers of the fields every resource has: uuid, created_at, updated_at, extra and links.
// extra is shown as stored, as the render functions show it (only nodes' and targets' JSON fields are masked);
// updated_at is null until the first change.
func common[T any](puts map[string]recPut[T], base, kind string, uuid func(T) string, created func(T) time.Time,
	updated func(T) *time.Time, extra func(T) map[string]any) map[string]recPut[T] {
	puts["uuid"] = putStr(uuid)
	puts["created_at"] = putTime(created)
	puts["updated_at"] = putTimeOrNull(updated)
	puts["extra"] = putAny(extra)
	puts["links"] = putLinks(base, kind, uuid, "")
	return puts
}

// portEncoder writes renderPort's fields: the optional strings (physical_network, name, description,
// portgroup_uuid) null when unset, the JSON fields as stored (Ironic does not mask a port's extra).
func portEncoder(base string) *recEncoder[*store.Port] {
	uuid := func(p *store.Port) string { return p.UUID }
	puts := map[string]recPut[*store.Port]{
		"address":          putStr(func(p *store.Port) string { return p.Address }),
		"internal_info":    putAny(func(p *store.Port) map[string]any { return p.InternalInfo }),
		"is_smartnic":      putBool(func(p *store.Port) bool { return p.IsSmartNIC }),
		"physical_network": putStrOrNull(func(p *store.Port) string { return p.PhysicalNetwork }),
		"pxe_enabled":      putBool(func(p *store.Port) bool { return p.PXEEnabled }),
		"node_uuid":        putStr(func(p *store.Port) string { return p.NodeUUID }),
		"name":             putStrOrNull(func(p *store.Port) string { return p.Name }),
		"description":      putStrOrNull(func(p *store.Port) string { return p.Description }),
		"portgroup_uuid":   putStrOrNull(func(p *store.Port) string { return p.PortgroupUUID }),
		// Before 1.90 a link with OVN VTEP switches is shown empty, as renderPort does.
		"local_link_connection": func(b []byte, p *store.Port, version int) []byte {
			_, vtep := p.LocalLinkConnection["vtep-logical-switch"]
			if _, phys := p.LocalLinkConnection["vtep-physical-switch"]; (vtep || phys) && version < 90 {
				return append(b, "{}"...)
			}
			return encodePy(b, p.LocalLinkConnection)
		},
	}
	common(puts, base, "ports", uuid, func(p *store.Port) time.Time { return p.CreatedAt },
		func(p *store.Port) *time.Time { return p.UpdatedAt }, func(p *store.Port) map[string]any { return p.Extra })
	return newRecEncoder(portDefs, uuid, puts)
}

// portgroupEncoder writes renderPortgroup's fields, with the link to the group's ports (1.24).
func portgroupEncoder(base string) *recEncoder[*store.Portgroup] {
	uuid := func(g *store.Portgroup) string { return g.UUID }
	puts := map[string]recPut[*store.Portgroup]{
		"address":       putStrOrNull(func(g *store.Portgroup) string { return g.Address }),
		"internal_info": putAny(func(g *store.Portgroup) map[string]any { return g.InternalInfo }),
		"mode":          putStr(func(g *store.Portgroup) string { return g.Mode }),
		"name":          putStrOrNull(func(g *store.Portgroup) string { return g.Name }),
		"properties":    putAny(func(g *store.Portgroup) map[string]any { return g.Properties }),
		"standalone_ports_supported": putBool(func(g *store.Portgroup) bool {
			return g.StandalonePortsSupported
		}),
		"node_uuid": putStr(func(g *store.Portgroup) string { return g.NodeUUID }),
		"ports":     putLinks(base, "portgroups", uuid, "ports"),
	}
	common(puts, base, "portgroups", uuid, func(g *store.Portgroup) time.Time { return g.CreatedAt },
		func(g *store.Portgroup) *time.Time { return g.UpdatedAt },
		func(g *store.Portgroup) map[string]any { return g.Extra })
	return newRecEncoder(portgroupDefs, uuid, puts)
}

// sinceAll gives names the table form with no microversion gate (version 0 shows them all).
func sinceAll(names []string) []fieldDef {
	defs := make([]fieldDef, len(names))
	for i, n := range names {
		defs[i] = fieldDef{n, 0}
	}
	return defs
}

// chassisEncoder writes renderChassis's fields, with the link to the chassis's nodes; a chassis's fields have
// no microversion of their own.
func chassisEncoder(base string) *recEncoder[*store.Chassis] {
	uuid := func(c *store.Chassis) string { return c.UUID }
	puts := map[string]recPut[*store.Chassis]{
		"description": putStrOrNull(func(c *store.Chassis) string { return c.Description }),
		"nodes":       putLinks(base, "chassis", uuid, "nodes"),
	}
	common(puts, base, "chassis", uuid, func(c *store.Chassis) time.Time { return c.CreatedAt },
		func(c *store.Chassis) *time.Time { return c.UpdatedAt }, func(c *store.Chassis) map[string]any { return c.Extra })
	return newRecEncoder(sinceAll(chassisFieldNames()), uuid, puts)
}

// templateEncoder writes renderTemplate's fields (no microversion of their own: the endpoint has one).
func templateEncoder(base string) *recEncoder[*store.DeployTemplate] {
	uuid := func(t *store.DeployTemplate) string { return t.UUID }
	puts := map[string]recPut[*store.DeployTemplate]{
		"name":  putStr(func(t *store.DeployTemplate) string { return t.Name }),
		"steps": putSteps,
	}
	common(puts, base, "deploy_templates", uuid, func(t *store.DeployTemplate) time.Time { return t.CreatedAt },
		func(t *store.DeployTemplate) *time.Time { return t.UpdatedAt },
		func(t *store.DeployTemplate) map[string]any { return t.Extra })
	return newRecEncoder(sinceAll(templateFields()), uuid, puts)
}

// putSteps writes a template's steps as renderTemplate orders them, with their arguments' secrets masked.
func putSteps(b []byte, t *store.DeployTemplate, _ int) []byte {
	b = append(b, '[')
	for i, st := range t.Steps {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = append(b, `{"interface": `...)
		b = appendString(b, st.Interface)
		b = append(b, `, "step": `...)
		b = appendString(b, st.Step)
		b = append(b, `, "args": `...)
		b = appendMasked(b, st.Args, 0)
		b = append(b, `, "priority": `...)
		b = encodePy(b, st.Priority)
		b = append(b, '}')
	}
	return append(b, ']')
}

// allocationEncoder writes renderAllocation's fields: candidate_nodes and traits as lists ([] when empty),
// the optional strings null when unset.
func allocationEncoder(base string) *recEncoder[*store.Allocation] {
	uuid := func(a *store.Allocation) string { return a.UUID }
	puts := map[string]recPut[*store.Allocation]{
		"candidate_nodes": putAny(func(a *store.Allocation) []string { return a.CandidateNodes }),
		"last_error":      putStrOrNull(func(a *store.Allocation) string { return a.LastError }),
		"name":            putStrOrNull(func(a *store.Allocation) string { return a.Name }),
		"owner":           putStrOrNull(func(a *store.Allocation) string { return a.Owner }),
		"resource_class":  putStrOrNull(func(a *store.Allocation) string { return a.ResourceClass }),
		"state":           putStr(func(a *store.Allocation) string { return a.State }),
		"traits":          putAny(func(a *store.Allocation) []string { return a.Traits }),
		"node_uuid":       putStrOrNull(func(a *store.Allocation) string { return a.NodeUUID }),
	}
	common(puts, base, "allocations", uuid, func(a *store.Allocation) time.Time { return a.CreatedAt },
		func(a *store.Allocation) *time.Time { return a.UpdatedAt },
		func(a *store.Allocation) map[string]any { return a.Extra })
	// allocationFieldNames of the newest version is the whole table; owner is gated as there.
	defs := sinceAll(allocationFieldNames(verAllocationOwner))
	for i := range defs {
		if defs[i].name == "owner" {
			defs[i].since = verAllocationOwner
		}
	}
	return newRecEncoder(defs, uuid, puts)
}

// connectorEncoder writes renderVolumeConnector's fields.
func connectorEncoder(base string) *recEncoder[*store.VolumeConnector] {
	uuid := func(c *store.VolumeConnector) string { return c.UUID }
	puts := map[string]recPut[*store.VolumeConnector]{
		"connector_id": putStr(func(c *store.VolumeConnector) string { return c.ConnectorID }),
		"type":         putStr(func(c *store.VolumeConnector) string { return c.Type }),
		"node_uuid":    putStr(func(c *store.VolumeConnector) string { return c.NodeUUID }),
	}
	common(puts, base, "volume/connectors", uuid, func(c *store.VolumeConnector) time.Time { return c.CreatedAt },
		func(c *store.VolumeConnector) *time.Time { return c.UpdatedAt },
		func(c *store.VolumeConnector) map[string]any { return c.Extra })
	return newRecEncoder(volumeConnectorDefs, uuid, puts)
}

// targetEncoder writes renderVolumeTarget's fields, the properties with their secrets masked (Ironic's
// target_sanitize).
func targetEncoder(base string) *recEncoder[*store.VolumeTarget] {
	uuid := func(v *store.VolumeTarget) string { return v.UUID }
	puts := map[string]recPut[*store.VolumeTarget]{
		"boot_index":  putAny(func(v *store.VolumeTarget) int { return v.BootIndex }),
		"properties":  putMasked(func(v *store.VolumeTarget) map[string]any { return v.Properties }),
		"volume_id":   putStr(func(v *store.VolumeTarget) string { return v.VolumeID }),
		"volume_type": putStr(func(v *store.VolumeTarget) string { return v.VolumeType }),
		"node_uuid":   putStr(func(v *store.VolumeTarget) string { return v.NodeUUID }),
	}
	common(puts, base, "volume/targets", uuid, func(v *store.VolumeTarget) time.Time { return v.CreatedAt },
		func(v *store.VolumeTarget) *time.Time { return v.UpdatedAt },
		func(v *store.VolumeTarget) map[string]any { return v.Extra })
	return newRecEncoder(volumeTargetDefs, uuid, puts)
}
