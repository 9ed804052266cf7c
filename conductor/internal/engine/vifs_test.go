package engine

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// TestChooseTarget: Ironic's free port-like object choice without physical networks, case by case.
func TestChooseTarget(t *testing.T) {
	port := func(uuid string, pxe bool, group, vif string) *store.Port {
		p := &store.Port{UUID: uuid, PXEEnabled: pxe, PortgroupUUID: group}
		p.Normalize()
		if vif != "" {
			p.InternalInfo[tenantVIFKey] = vif
		}
		return p
	}
	group := func(uuid, vif string) *store.Portgroup {
		g := &store.Portgroup{UUID: uuid}
		g.Normalize()
		if vif != "" {
			g.InternalInfo[tenantVIFKey] = vif
		}
		return g
	}
	smart := port("smart", true, "", "")
	smart.IsSmartNIC = true // without port_id and hostname in its link: unusable
	linked := port("linked", true, "", "")
	linked.LocalLinkConnection = map[string]any{"port_id": "p", "hostname": "h"} // Smart NIC link on a plain port
	infiniband := port("ib", false, "", "")
	infiniband.Extra["client-id"] = "ff:00"
	infiniband.IsSmartNIC = true
	tests := []struct {
		name    string
		ports   []*store.Port
		groups  []*store.Portgroup
		req     VIFRequest
		want    string // UUID of the chosen port or portgroup
		wantErr string
		invalid bool // the error is a 400 (else 409)
	}{
		{"creation order among equals", []*store.Port{port("a", true, "", ""), port("b", true, "", "")}, nil,
			VIFRequest{ID: "v"}, "a", "", false},
		{"PXE first", []*store.Port{port("a", false, "", ""), port("b", true, "", "")}, nil, VIFRequest{ID: "v"}, "b", "", false},
		{"portgroup first", []*store.Port{port("a", true, "", ""), port("m", true, "g", "")}, []*store.Portgroup{group("g", "")},
			VIFRequest{ID: "v"}, "g", "", false},
		{"empty portgroup skipped", []*store.Port{port("a", false, "", "")}, []*store.Portgroup{group("g", "")},
			VIFRequest{ID: "v"}, "a", "", false},
		{"members of a portgroup with a VIF on a port", []*store.Port{port("m1", false, "g", "x"), port("m2", false, "g", "")},
			[]*store.Portgroup{group("g", "")}, VIFRequest{ID: "v"}, "m2", "", false},
		{"busy ports skipped", []*store.Port{port("a", true, "", "x"), port("b", false, "", "")}, nil, VIFRequest{ID: "v"}, "b", "", false},
		{"port_uuid", []*store.Port{port("a", true, "", ""), port("b", false, "", "")}, nil,
			VIFRequest{ID: "v", PortUUID: "b"}, "b", "", false},
		{"portgroup_uuid", []*store.Port{port("a", true, "", ""), port("m", true, "g", ""), port("n", true, "h", "")},
			[]*store.Portgroup{group("g", ""), group("h", "")}, VIFRequest{ID: "v", PortgroupUUID: "h"}, "h", "", false},
		{"Smart NIC rules", []*store.Port{smart, linked, infiniband}, nil, VIFRequest{ID: "v"}, "ib", "", false},
		{"already on a port", []*store.Port{port("a", true, "", "v")}, nil, VIFRequest{ID: "v"}, "",
			"Unable to attach VIF because VIF v is already attached to Ironic Port a", false},
		{"already on a portgroup", []*store.Port{port("m", true, "g", "")}, []*store.Portgroup{group("g", "v")},
			VIFRequest{ID: "v"}, "", "already attached to Ironic Portgroup g", false},
		{"nothing free", []*store.Port{port("a", true, "", "x")}, nil, VIFRequest{ID: "v"}, "",
			"Unable to attach VIF v, not enough free physical ports.", true},
		{"no ports", nil, nil, VIFRequest{ID: "v"}, "", "not enough free physical ports", true},
		{"port_uuid of a portgroup member", []*store.Port{port("m", true, "g", "")}, []*store.Portgroup{group("g", "")},
			VIFRequest{ID: "v", PortUUID: "m"}, "", "not enough free physical ports", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := chooseTarget(tc.ports, tc.groups, tc.req)
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.wantErr)
				assert.Equal(t, tc.invalid, errors.Is(err, ErrInvalidInput))
				assert.Equal(t, !tc.invalid, errors.Is(err, ErrConflict))
				return
			}
			require.NoError(t, err)
			uuid := ""
			if got.port != nil {
				uuid = got.port.UUID
			} else {
				uuid = got.group.UUID
			}
			assert.Equal(t, tc.want, uuid)
		})
	}
}
