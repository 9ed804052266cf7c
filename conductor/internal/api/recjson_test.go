package api

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// The UUIDs of the fixtures.
const fixUUID1, fixUUID2, fixUUID3 = "1be26c0b-03f2-4d2e-ae87-c02d7f33c123", "2be26c0b-03f2-4d2e-ae87-c02d7f33c123",
	"3be26c0b-03f2-4d2e-ae87-c02d7f33c123"

// recCase is one resource of TestRecordEncoderBytes: its records rendered both ways as a page, at a version
// with a field set: want by the render function (the reference), got by the list encoder.
type recCase struct {
	name      string
	fieldSets [][]string
	want      func(version int, fields []string) []any
	got       func(version int, fields []string) pyAppender
}

// TestRecordEncoderBytes checks that recjson.go's list encoder writes exactly what encodePy writes of each
// resource's render function: every microversion, with and without fields= (asked in another order than
// Ironic's, twice, with and without links), on a full record and an empty one.
func TestRecordEncoderBytes(t *testing.T) {
	s := newAllocFix(t, nil).srv
	fx := newRecFixtures()
	ports, groups, chassis, templates := fx.ports, fx.groups, fx.chassis, fx.templates
	allocs, connectors, targets := fx.allocs, fx.connectors, fx.targets
	cases := []recCase{
		{"ports", [][]string{{"address", "uuid"}, {"local_link_connection", "links", "name", "name"}},
			func(v int, f []string) []any {
				return renderAll(ports, func(p *store.Port) any { return s.renderPort(p, v, f) })
			},
			func(v int, f []string) pyAppender { p, _, _ := s.recs.ports.page(ports, v, f); return p }},
		{"portgroups", [][]string{{"name", "address", "uuid"}, {"ports", "mode"}},
			func(v int, f []string) []any {
				return renderAll(groups, func(g *store.Portgroup) any { return s.renderPortgroup(g, v, f) })
			},
			func(v int, f []string) pyAppender { p, _, _ := s.recs.portgroups.page(groups, v, f); return p }},
		{"chassis", [][]string{{"description"}, {"nodes", "uuid", "links"}},
			func(v int, f []string) []any {
				return renderAll(chassis, func(c *store.Chassis) any { return s.renderChassis(c, f) })
			},
			func(v int, f []string) pyAppender { p, _, _ := s.recs.chassis.page(chassis, v, f); return p }},
		{"deploy_templates", [][]string{{"uuid", "name"}, {"steps", "extra"}},
			func(v int, f []string) []any {
				return renderAll(templates, func(t *store.DeployTemplate) any { return s.renderTemplate(t, f) })
			},
			func(v int, f []string) pyAppender { p, _, _ := s.recs.templates.page(templates, v, f); return p }},
		{"allocations", [][]string{{"owner", "uuid", "links"}, {"traits", "candidate_nodes", "state", "links"}},
			func(v int, f []string) []any {
				return renderAll(allocs, func(a *store.Allocation) any { return s.renderAllocation(a, v, f) })
			},
			func(v int, f []string) pyAppender { p, _, _ := s.recs.allocs.page(allocs, v, f); return p }},
		{"connectors", [][]string{connectorKind.defaults, {"extra", "links"}},
			func(v int, f []string) []any {
				return renderAll(connectors, func(c *store.VolumeConnector) any { return s.renderVolumeConnector(c, v, f) })
			},
			func(v int, f []string) pyAppender { p, _, _ := s.recs.connectors.page(connectors, v, f); return p }},
		{"targets", [][]string{targetKind.defaults, {"properties", "uuid"}},
			func(v int, f []string) []any {
				return renderAll(targets, func(x *store.VolumeTarget) any { return s.renderVolumeTarget(x, v, f) })
			},
			func(v int, f []string) pyAppender { p, _, _ := s.recs.targets.page(targets, v, f); return p }},
	}
	for _, c := range cases {
		for version := MinVersion; version <= MaxVersion; version++ {
			for _, fields := range append([][]string{nil}, c.fieldSets...) {
				want := string(encodePy(nil, c.want(version, fields)))
				got := string(encodePy(nil, c.got(version, fields)))
				require.Equal(t, want, got, "%s, 1.%d, fields %v", c.name, version, fields)
			}
		}
	}
	// The masked fields are masked, and the page names its last record for the next link.
	got := string(encodePy(nil, cases[6].got(MaxVersion, nil)))
	assert.True(t, strings.Contains(got, `"auth_password": "******"`), got)
	_, n, last := s.recs.ports.page(ports, MaxVersion, nil)
	assert.Equal(t, 2, n)
	assert.Equal(t, fixUUID2, last)
	_, n, last = s.recs.ports.page(nil, MaxVersion, nil)
	assert.Equal(t, 0, n)
	assert.Empty(t, last)
}

// recFixtures are a full and an empty record of each resource: secrets at several depths, escapes, unset fields.
type recFixtures struct {
	ports      []*store.Port
	groups     []*store.Portgroup
	chassis    []*store.Chassis
	templates  []*store.DeployTemplate
	allocs     []*store.Allocation
	connectors []*store.VolumeConnector
	targets    []*store.VolumeTarget
}

func newRecFixtures() *recFixtures {
	var fx recFixtures
	now := time.Date(2026, 1, 2, 3, 4, 5, 678901000, time.UTC)
	later := now.Add(90 * time.Minute)
	odd := map[string]any{"rack": "r1", "none": nil, "weird": "a\"b\\c\n\u2028é\x01<>&", "n": 1.5,
		"list": []any{"x", map[string]any{"password": "p"}}}

	fx.ports = []*store.Port{{UUID: fixUUID1, Address: "52:54:00:00:00:01", NodeUUID: fixUUID2, Name: "p0", Description: "d",
		Extra: odd, InternalInfo: map[string]any{"tenant_vif_port_id": "v"}, PhysicalNetwork: "physnet1",
		LocalLinkConnection: map[string]any{"switch_id": "0a:1b:2c:3d:4e:5f", "port_id": "Eth1/1",
			"vtep-logical-switch": "ls"}, PXEEnabled: true, IsSmartNIC: true, PortgroupUUID: fixUUID3,
		CreatedAt: now, UpdatedAt: &later},
		{UUID: fixUUID2, Address: "52:54:00:00:00:02", NodeUUID: fixUUID2, CreatedAt: now}}
	fx.groups = []*store.Portgroup{{UUID: fixUUID1, Name: "bond0", Address: "52:54:00:00:00:03", NodeUUID: fixUUID2,
		StandalonePortsSupported: true, Mode: "802.3ad", Properties: map[string]any{"miimon": "100"}, Extra: odd,
		CreatedAt: now, UpdatedAt: &later}, {UUID: fixUUID2, NodeUUID: fixUUID2, Mode: "active-backup", CreatedAt: now}}
	fx.chassis = []*store.Chassis{{UUID: fixUUID1, Description: "rack 1", Extra: odd, CreatedAt: now, UpdatedAt: &later},
		{UUID: fixUUID2, CreatedAt: now}}
	fx.templates = []*store.DeployTemplate{{UUID: fixUUID1, Name: "CUSTOM_T", Extra: odd, CreatedAt: now, UpdatedAt: &later,
		Steps: []store.TemplateStep{{Interface: "bios", Step: "apply_configuration", Priority: 150,
			Args: map[string]any{"settings": []any{map[string]any{"name": "LogicalProc", "value": "Enabled"}},
				"admin_password": "x"}}, {Interface: "raid", Step: "delete_configuration"}}},
		{UUID: fixUUID2, Name: "CUSTOM_E", CreatedAt: now}}
	fx.allocs = []*store.Allocation{{UUID: fixUUID1, Name: "a", NodeUUID: fixUUID2, State: "active", LastError: "e",
		ResourceClass: "rc", Traits: []string{"CUSTOM_A"}, CandidateNodes: []string{fixUUID2, fixUUID3}, Extra: odd, Owner: "o",
		CreatedAt: now, UpdatedAt: &later}, {UUID: fixUUID2, State: "allocating", CreatedAt: now}}
	fx.connectors = []*store.VolumeConnector{{UUID: fixUUID1, NodeUUID: fixUUID2, Type: "iqn", ConnectorID: "iqn.x", Extra: odd,
		CreatedAt: now, UpdatedAt: &later}, {UUID: fixUUID2, NodeUUID: fixUUID2, Type: "ip", ConnectorID: "10.0.0.1",
		CreatedAt: now}}
	fx.targets = []*store.VolumeTarget{{UUID: fixUUID1, NodeUUID: fixUUID2, VolumeType: "iscsi", VolumeID: "v1", BootIndex: 3,
		Properties: map[string]any{"target_lun": 0.0, "auth_password": "s", "nested": map[string]any{"token": "t"}},
		Extra:      odd, CreatedAt: now, UpdatedAt: &later}, {UUID: fixUUID2, NodeUUID: fixUUID2, VolumeType: "fibre_channel",
		VolumeID: "v2", CreatedAt: now}}
	for _, x := range fx.ports {
		x.Normalize()
	}
	for _, x := range fx.groups {
		x.Normalize()
	}
	for _, x := range fx.templates {
		x.Normalize()
	}
	for _, x := range fx.allocs {
		x.Normalize()
	}
	for _, x := range fx.connectors {
		x.Normalize()
	}
	for _, x := range fx.targets {
		x.Normalize()
	}

	return &fx
}

// renderAll renders every record of a page, as the list handlers did before the list encoder.
func renderAll[T any](list []T, render func(T) any) []any {
	out := make([]any, 0, len(list))
	for _, x := range list {
		out = append(out, render(x))
	}
	return out
}
