package ipmi_test

import (
	"context"
	"testing"

	"github.com/bougou/go-ipmi/pkg/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/driver/ipmi"
	"github.com/ferric-metal/ferric/conductor/internal/store"
)

func node(di map[string]any) *store.Node {
	return &store.Node{UUID: "1be26c0b-03f2-4d2e-ae87-c02d7f33c123", Driver: "ipmi", DriverInfo: di}
}

// TestValidate checks driver_info the way Ironic's _parse_driver_info does, without a BMC: every bad key is named
// with its fix, and the password never appears in an error.
func TestValidate(t *testing.T) {
	base := func(extra map[string]any) map[string]any {
		di := map[string]any{"ipmi_address": "10.0.0.5", "ipmi_username": "admin", "ipmi_password": "hunter2-secret"}
		for k, v := range extra {
			if v == nil {
				delete(di, k)
				continue
			}
			di[k] = v
		}
		return di
	}
	cases := []struct {
		name string
		di   map[string]any
		want []string // substrings of the error; none = valid
	}{
		{"minimal", base(nil), nil},
		{"address only (null user, as ipmitool)", map[string]any{"ipmi_address": "bmc-1.example.com"}, nil},
		{"ipv6 address", base(map[string]any{"ipmi_address": "fd00::5"}), nil},
		{"all keys", base(map[string]any{"ipmi_port": "6230", "ipmi_priv_level": "OPERATOR", "ipmi_cipher_suite": 17.0,
			"ipmi_bridging": "no", "ipmi_terminal_port": 8023.0, "ipmi_protocol_version": "2.0", "ipmi_disable_boot_timeout": "false",
			"ipmi_force_boot_device": false}), nil},
		{"missing address", base(map[string]any{"ipmi_address": nil}), []string{"driver_info.ipmi_address is missing"}},
		{"address with scheme", base(map[string]any{"ipmi_address": "https://10.0.0.5"}), []string{"ipmi_address \"https://10.0.0.5\" is neither"}},
		{"port not a number", base(map[string]any{"ipmi_port": "abc"}), []string{"ipmi_port abc is not a number"}},
		{"port out of range", base(map[string]any{"ipmi_port": 70000.0}), []string{"ipmi_port 70000 is not a port"}},
		{"terminal port bad", base(map[string]any{"ipmi_terminal_port": "0"}), []string{"ipmi_terminal_port 0 is not a port"}},
		{"priv level", base(map[string]any{"ipmi_priv_level": "root"}), []string{"ipmi_priv_level \"root\" is not one of ADMINISTRATOR, CALLBACK, OPERATOR, USER"}},
		{"cipher suite text", base(map[string]any{"ipmi_cipher_suite": "aes"}), []string{"ipmi_cipher_suite aes is not a number"}},
		{"cipher suite range", base(map[string]any{"ipmi_cipher_suite": 42.0}), []string{"ipmi_cipher_suite 42 is not an IPMI 2.0 cipher suite"}},
		{"bridging single", base(map[string]any{"ipmi_bridging": "single"}), []string{"ipmi_bridging \"single\" is not supported"}},
		{"bridging dual", base(map[string]any{"ipmi_bridging": "dual"}), []string{"ipmi_bridging \"dual\" is not supported"}},
		{"protocol 1.5", base(map[string]any{"ipmi_protocol_version": "1.5"}), []string{"ipmi_protocol_version 1.5 is not supported"}},
		{"protocol 1.5 as number", base(map[string]any{"ipmi_protocol_version": 1.5}), []string{"ipmi_protocol_version 1.5 is not supported"}},
		{"protocol 3", base(map[string]any{"ipmi_protocol_version": "3"}), []string{"ipmi_protocol_version \"3\" is not one of 1.5, 2.0"}},
		{"kg key", base(map[string]any{"ipmi_hex_kg_key": "0011"}), []string{"ipmi_hex_kg_key is not supported"}},
		{"force boot device", base(map[string]any{"ipmi_force_boot_device": "true"}), []string{"ipmi_force_boot_device true is not supported"}},
		{"disable boot timeout bad", base(map[string]any{"ipmi_disable_boot_timeout": "maybe"}), []string{"ipmi_disable_boot_timeout maybe is not a boolean"}},
		{"username too long", base(map[string]any{"ipmi_username": "a-very-long-user-name"}), []string{"ipmi_username is longer than IPMI's 16 characters"}},
		{"password too long", base(map[string]any{"ipmi_password": "hunter2-secret-hunter2-secret"}), []string{"ipmi_password is longer than IPMI 2.0's 20 characters"}},
		{"every problem at once", map[string]any{"ipmi_port": "x", "ipmi_bridging": "dual", "ipmi_protocol_version": "1.5"},
			[]string{"ipmi_address is missing", "ipmi_port x", "ipmi_bridging", "ipmi_protocol_version 1.5"}},
	}
	d := &ipmi.Driver{}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := d.Validate(context.Background(), node(c.di))
			if c.want == nil {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.ErrorIs(t, err, driver.ErrInvalid, "a 400, not a conductor failure")
			for _, w := range c.want {
				assert.Contains(t, err.Error(), w)
			}
			assert.NotContains(t, err.Error(), "hunter2-secret")
		})
	}
}

// TestParseInfoDefaults checks Ironic's defaults: port 623, ADMINISTRATOR, the library's negotiation, boot timeout
// disabled.
func TestParseInfoDefaults(t *testing.T) {
	info, err := ipmi.ParseInfo(node(map[string]any{"ipmi_address": "10.0.0.5"}))
	require.NoError(t, err)
	assert.Equal(t, 623, info.Port)
	assert.Equal(t, types.PrivilegeLevelAdministrator, info.Priv)
	assert.Nil(t, info.CipherSuite)
	assert.True(t, info.DisableBootTimeout)

	info, err = ipmi.ParseInfo(node(map[string]any{"ipmi_address": "10.0.0.5", "ipmi_cipher_suite": "3", "ipmi_port": 6230.0,
		"ipmi_priv_level": "USER", "ipmi_terminal_port": "8023"}))
	require.NoError(t, err)
	require.NotNil(t, info.CipherSuite)
	assert.Equal(t, types.CipherSuiteID3, *info.CipherSuite)
	assert.Equal(t, 6230, info.Port)
	assert.Equal(t, 8023, info.TerminalPort)
	assert.Equal(t, types.PrivilegeLevelUser, info.Priv)
}

// TestHardware checks the hardware type's interfaces and defaults.
func TestHardware(t *testing.T) {
	h := ipmi.Hardware([]string{"autodetect", "bootc", "direct", "fake"}, []string{"fake", "local-agent"})
	assert.Equal(t, "ipmi", h.Name)
	for kind, want := range map[string]string{"power": "ipmi", "management": "ipmi", "deploy": "autodetect", "boot": "fake",
		"inspect": "agent", "rescue": "no-rescue", "bios": "no-bios", "raid": "no-raid", "firmware": "no-firmware",
		"network": "noop", "storage": "noop", "console": "no-console", "vendor": "no-vendor"} {
		assert.Equal(t, want, h.Defaults[kind], kind)
		assert.Contains(t, h.Enabled[kind], want, kind)
	}
	assert.Equal(t, []string{"agent", "no-inspect"}, h.Enabled["inspect"])
}
