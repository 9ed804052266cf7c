package api

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// TestNodeEncoderBytes: the read paths' encoder writes exactly what encodePy(renderNode(...)) writes, for every
// microversion, for field sets, and for nodes with secrets at every depth, escapes and unset fields.
func TestNodeEncoderBytes(t *testing.T) {
	f := newAllocFix(t, nil)
	s := f.srv
	now := time.Date(2026, 1, 2, 3, 4, 5, 678901000, time.UTC)
	yes := true
	deep := map[string]any{"k": "v"}
	for i := 0; i < 40; i++ {
		if i%2 == 0 {
			deep = map[string]any{"level": deep}
		} else {
			deep = map[string]any{"list": []any{deep, "x"}}
		}
	}
	full := &store.Node{UUID: "1be26c0b-03f2-4d2e-ae87-c02d7f33c123", Name: "full", Driver: "fake-hardware",
		DriverInfo: map[string]any{"ipmi_password": "p", "ipmi_address": "10.0.0.1", "nested": map[string]any{
			"secret_key": "s", "list": []any{map[string]any{"token": "t", "ok": 1.5}, "plain", nil, true}},
			"deep": deep, "maps": []map[string]any{{"password": "x", "n": 3.0}}},
		DriverInternalInfo: map[string]any{"agent_secret_token": "t", "clean_steps": []any{}},
		InstanceInfo:       map[string]any{"configdrive": "cd", "image_url": "u", "image_source": "oci://r/i:1"},
		Properties:         map[string]any{"memory_mb": 4096.0, "cpus": 8.0, "ratio": 0.25, "weird": "a\"b\\c\n\u2028é\x01<>&"},
		Extra:              map[string]any{"rack": "r1", "none": nil}, Interfaces: map[string]string{"boot": "fake"},
		PowerState: "power on", ProvisionState: "active", ProvisionUpdatedAt: &now, Maintenance: true,
		MaintenanceReason: "why", Fault: "power failure", Traits: []string{"CUSTOM_A"}, Lessee: "l", Owner: "o",
		Description: "d\ttab", AutomatedClean: &yes, SecureBoot: &yes, CreatedAt: now, UpdatedAt: &now,
		Reservation: "host", InspectionStartedAt: &now, CleanStep: map[string]any{"step": "erase"}}
	empty := &store.Node{UUID: "2be26c0b-03f2-4d2e-ae87-c02d7f33c123", Driver: "fake-hardware", CreatedAt: now}
	empty.Normalize()
	full.Normalize()
	fieldSets := [][]string{nil, defaultListFields(89), defaultListFields(4),
		{"uuid", "driver_info", "links", "name", "ports", "conductor", "instance_info", "states"},
		{"uuid", "name", "links", "name", "links"}}
	for _, n := range []*store.Node{full, empty} {
		for version := MinVersion; version <= MaxVersion; version++ {
			for _, fields := range fieldSets {
				want := string(encodePy(nil, s.renderNode(n, version, fields)))
				v := &nodeView{n: n, base: s.cfg.PublicURL, host: s.eng.Host()}
				got := string(s.nodeEnc.appendNode(nil, v, version, fields))
				require.Equal(t, want, got, "node %s, 1.%d, fields %v", n.Name, version, fields)
			}
		}
	}
	// A page of nodes is the list of their objects.
	page := &nodeList{enc: s.nodeEnc, nodes: []*store.Node{full, empty}, version: 89, base: s.cfg.PublicURL,
		host: s.eng.Host()}
	want := string(encodePy(nil, []any{s.renderNode(full, 89, nil), s.renderNode(empty, 89, nil)}))
	assert.Equal(t, want, string(encodePy(nil, page)))
	assert.True(t, strings.Contains(want, `"ipmi_password": "******"`))
}
