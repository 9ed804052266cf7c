// Package ipmi owns the ipmi hardware type: power and management (boot device) of a node through its BMC over
// IPMI 2.0 lanplus (RMCP+), spoken by github.com/bougou/go-ipmi. It reads Ironic's ipmitool driver_info keys,
// refuses what it cannot do (bridging, IPMI 1.5, Kg keys, forced boot devices) when the node is validated without
// touching the BMC, bounds every BMC exchange by a deadline, retries as Ironic's ipmitool driver does
// ([ipmi]command_retry_timeout, min_command_interval) and names the BMC and the operation in every error, never
// the password. Boot interfaces for ipmi nodes (ipxe, next) live in packages of their own beside this one; this
// package only builds the hardware type that lists them.
package ipmi

import (
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"

	"github.com/bougou/go-ipmi/pkg/types"

	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// Name is the hardware type's name and its power and management interfaces' name, as in Ironic.
const Name = "ipmi"

// Hardware returns the ipmi hardware type: power and management ipmi; deploy and boot as given (default first);
// inspect agent (default) or no-inspect (Ironic's ipmi type has no out-of-band inspection); rescue, bios,
// firmware and raid as the other types have them (no-*, agent rescue added by driver.EnableAgentRescue).
func Hardware(deploy, boot []string) *driver.HardwareType {
	h := driver.NewHardwareType(Name, deploy, boot)
	h.Defaults["inspect"] = driver.InspectAgent
	h.Enabled["inspect"] = []string{driver.InspectAgent, driver.InspectNone}
	h.Properties = Properties()
	return h
}

// Properties describes the driver_info keys this package reads (Ironic's ipmitool COMMON_PROPERTIES, with what
// Ferric refuses said).
func Properties() map[string]string {
	return map[string]string{
		"ipmi_address":              "IP address or hostname of the node. Required.",
		"ipmi_port":                 "remote IPMI RMCP port (623). Optional.",
		"ipmi_username":             "username; default is NULL user. Optional.",
		"ipmi_password":             "password. Optional.",
		"ipmi_priv_level":           "privilege level; default is ADMINISTRATOR. One of ADMINISTRATOR, CALLBACK, OPERATOR, USER. Optional.",
		"ipmi_cipher_suite":         "The number of a cipher suite to use (17 or 3); unset: 17, then 3. Optional.",
		"ipmi_protocol_version":     "the version of the IPMI protocol; only \"2.0\" (the default). Optional.",
		"ipmi_bridging":             "bridging_type; only \"no\" (the default): bridging is not supported. Optional.",
		"ipmi_terminal_port":        "node's UDP port for the serial console (stored; no console interface yet). Optional.",
		"ipmi_disable_boot_timeout": "send the BMC \"do not clear the boot flags after 60 s\" with every boot device change (default true). Optional.",
		"ipmi_force_boot_device":    "only false (the default): not supported. Optional.",
	}
}

// Info is a node's parsed ipmi driver_info. Password is never printed: Info has no String method on purpose,
// and errors built from it use Address only.
type Info struct {
	Address      string // IP address or host name of the BMC
	Port         int    // UDP port of the BMC's RMCP+ service (623)
	Username     string // "" is the null user, as ipmitool without -U
	Password     string
	Priv         types.PrivilegeLevel
	PrivName     string               // ADMINISTRATOR, CALLBACK, OPERATOR or USER
	CipherSuite  *types.CipherSuiteID // nil: try 17, then 3
	TerminalPort int                  // stored for the console interface (none yet); 0 when unset
	// DisableBootTimeout sends "do not clear the boot flags after 60 s" with every boot device change, as
	// Ironic's [ipmi]disable_boot_timeout (default true) and driver_info.ipmi_disable_boot_timeout.
	DisableBootTimeout bool
}

// target is how errors name the BMC: address and port, never credentials.
func (i *Info) target() string { return net.JoinHostPort(i.Address, strconv.Itoa(i.Port)) }

var privLevels = map[string]types.PrivilegeLevel{
	"ADMINISTRATOR": types.PrivilegeLevelAdministrator,
	"CALLBACK":      types.PrivilegeLevelCallback,
	"OPERATOR":      types.PrivilegeLevelOperator,
	"USER":          types.PrivilegeLevelUser,
}

// hostname is RFC 1123's host name (Ironic's is_hostname_safe): labels of letters, digits and inner hyphens.
var hostname = regexp.MustCompile(`^(?i)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*\.?$`)

// ParseInfo reads and checks a node's ipmi driver_info without talking to the BMC (Ironic's _parse_driver_info:
// validate is called often and BMCs are fragile). Every problem found is named with its fix, all at once.
func ParseInfo(n *store.Node) (*Info, error) {
	di := n.DriverInfo
	info := &Info{Port: 623, Priv: types.PrivilegeLevelAdministrator, PrivName: "ADMINISTRATOR", DisableBootTimeout: true}
	var problems []string
	bad := func(format string, a ...any) { problems = append(problems, fmt.Sprintf(format, a...)) }

	info.Address = strings.TrimSpace(str(di["ipmi_address"]))
	switch {
	case info.Address == "":
		bad("driver_info.ipmi_address is missing: set it to the BMC's IP address or host name")
	case net.ParseIP(info.Address) == nil && !hostname.MatchString(info.Address):
		bad("driver_info.ipmi_address %q is neither an IP address nor a host name: set the BMC's address alone, without scheme or port", info.Address)
	}
	info.Username, info.Password = str(di["ipmi_username"]), str(di["ipmi_password"])
	if len(info.Username) > 16 {
		bad("driver_info.ipmi_username is longer than IPMI's 16 characters: use the BMC user's name")
	}
	if len(info.Password) > 20 {
		// The length is safe to say; the value is not.
		bad("driver_info.ipmi_password is longer than IPMI 2.0's 20 characters: set the BMC user's password")
	}
	if v, ok := di["ipmi_port"]; ok && v != nil {
		p, err := port(v)
		if err != nil {
			bad("driver_info.ipmi_port %v %s: set the BMC's UDP port (623 by default) or remove the key", v, err)
		}
		info.Port = p
	}
	if v, ok := di["ipmi_terminal_port"]; ok && v != nil {
		p, err := port(v)
		if err != nil {
			bad("driver_info.ipmi_terminal_port %v %s: set a TCP port for the serial console or remove the key", v, err)
		}
		info.TerminalPort = p
	}
	if v, ok := di["ipmi_priv_level"]; ok && v != nil {
		info.PrivName = str(v)
		lvl, known := privLevels[info.PrivName]
		if !known {
			bad("driver_info.ipmi_priv_level %q is not one of ADMINISTRATOR, CALLBACK, OPERATOR, USER: set one of them (ADMINISTRATOR by default)", info.PrivName)
		}
		info.Priv = lvl
	}
	parseProtocol(di, info, bad)
	parseBoolKeys(di, info, bad)
	if len(problems) > 0 {
		return nil, fmt.Errorf("%s: %w", strings.Join(problems, "; "), driver.ErrInvalid)
	}
	return info, nil
}

// parseProtocol checks the keys that choose how the session is set up: the protocol version, the cipher suite,
// bridging and the Kg key.
func parseProtocol(di map[string]any, info *Info, bad func(string, ...any)) {
	version := "2.0"
	if v, ok := di["ipmi_protocol_version"]; ok && v != nil {
		version = str(v)
	}
	switch version {
	case "2.0":
	case "1.5":
		bad("driver_info.ipmi_protocol_version 1.5 is not supported (IPMI 1.5 sends credentials without encryption): enable IPMI 2.0 (lanplus) on the BMC and set 2.0 or remove the key")
	default:
		bad("driver_info.ipmi_protocol_version %q is not one of 1.5, 2.0: set 2.0 or remove the key", version)
	}
	if v, ok := di["ipmi_cipher_suite"]; ok && v != nil {
		id, err := strconv.Atoi(strings.TrimSpace(str(v)))
		switch {
		case err != nil:
			bad("driver_info.ipmi_cipher_suite %v is not a number: set 17 (AES-128 with SHA256) or 3 (AES-128 with SHA1), or remove the key to negotiate", v)
		case id < 0 || id > int(types.CipherSuiteID19):
			bad("driver_info.ipmi_cipher_suite %d is not an IPMI 2.0 cipher suite (0-19): set 17 or 3, or remove the key to negotiate", id)
		default:
			cs := types.CipherSuiteID(id)
			info.CipherSuite = &cs
		}
	}
	if v, ok := di["ipmi_bridging"]; ok && v != nil && str(v) != "no" {
		bad("driver_info.ipmi_bridging %q is not supported (Ferric talks to the BMC directly, without IPMB bridging): set \"no\" or remove the key", str(v))
	}
	if v := str(di["ipmi_hex_kg_key"]); v != "" {
		bad("driver_info.ipmi_hex_kg_key is not supported (two-key RMCP+ logins): clear the BMC's Kg key and remove the key")
	}
}

// parseBoolKeys reads the boolean keys Ironic's ipmitool driver honours.
func parseBoolKeys(di map[string]any, info *Info, bad func(string, ...any)) {
	if v, ok := di["ipmi_disable_boot_timeout"]; ok && v != nil {
		b, err := boolValue(v)
		if err != nil {
			bad("driver_info.ipmi_disable_boot_timeout %v is not a boolean: set true or false", v)
		}
		info.DisableBootTimeout = b
	}
	if v, ok := di["ipmi_force_boot_device"]; ok && v != nil {
		b, err := boolValue(v)
		if err != nil || b {
			bad("driver_info.ipmi_force_boot_device %v is not supported (Ferric relies on the BMC keeping a persistent boot device): set false or remove the key", v)
		}
	}
}

// str renders a driver_info value as text: JSON numbers arrive as float64 and mean their integer.
func str(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case float64:
		if x == float64(int64(x)) {
			return strconv.FormatInt(int64(x), 10)
		}
	}
	return fmt.Sprint(v)
}

// port reads a network port (Ironic's validate_network_port: an integer 1-65535, as a number or a string).
func port(v any) (int, error) {
	p, err := strconv.Atoi(strings.TrimSpace(str(v)))
	if err != nil {
		return 0, fmt.Errorf("is not a number")
	}
	if p < 1 || p > 65535 {
		return 0, fmt.Errorf("is not a port (1-65535)")
	}
	return p, nil
}

// boolValue reads a boolean as oslo's bool_from_string does for the usual spellings.
func boolValue(v any) (bool, error) {
	if b, ok := v.(bool); ok {
		return b, nil
	}
	switch strings.ToLower(strings.TrimSpace(str(v))) {
	case "true", "yes", "1", "on", "y", "t":
		return true, nil
	case "false", "no", "0", "off", "n", "f":
		return false, nil
	}
	return false, fmt.Errorf("not a boolean")
}
