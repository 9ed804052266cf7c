// Package configdrive owns OpenStack config drives (config-2): building them from Ironic's dict form as ISO 9660
// (Rock Ridge) or vfat images, Ironic's gzip+base64 and URL string forms, and writing the config-2 partition at
// the end of a disk as the agent does after an install. It is a leaf package: it imports no other Ferric package.
package configdrive

import (
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"sort"
)

// MaxImageSize is the largest config drive image accepted (Ironic's MAX_CONFIG_DRIVE_SIZE_MB).
const MaxImageSize = 64 << 20

// PartitionSize is the size of the config-2 partition written at the end of a disk.
const PartitionSize = 64 << 20

// Versions are the openstack/<version>/ directories written, with identical content (Ironic's and openstacksdk's).
func Versions() []string { return []string{"2012-08-10", "latest"} }

// Label is the volume label cloud-init looks for.
const Label = "config-2"

// ErrInvalid marks a drive that cannot be built as given.
var ErrInvalid = errors.New("invalid config drive")

// Drive is Ironic's dict form of a config drive.
type Drive struct {
	MetaData    map[string]any `json:"meta_data,omitempty"`
	UserData    any            `json:"user_data,omitempty"` // string, object or array
	NetworkData map[string]any `json:"network_data,omitempty"`
	VendorData  map[string]any `json:"vendor_data,omitempty"`
}

// NodeInfo supplies the defaults Ironic injects into meta_data when they are absent.
type NodeInfo struct{ UUID, Name string }

// FromMap converts a decoded JSON dict (as stored in instance_info.configdrive) into a Drive, checking its keys.
func FromMap(m map[string]any) (Drive, error) {
	var d Drive
	for k := range m {
		switch k {
		case "meta_data", "user_data", "network_data", "vendor_data":
		default:
			return d, fmt.Errorf("config drive key %q is not supported; use meta_data, user_data, network_data, vendor_data: %w", k, ErrInvalid)
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		return d, fmt.Errorf("encode config drive: %w", err)
	}
	if err := json.Unmarshal(b, &d); err != nil {
		return d, fmt.Errorf("config drive: meta_data, network_data and vendor_data must be objects: %w", ErrInvalid)
	}
	return d, nil
}

// Files returns the drive's files (path -> content) in the layout cloud-init reads.
func Files(d Drive, node NodeInfo) (map[string][]byte, error) {
	md := map[string]any{}
	for k, v := range d.MetaData {
		md[k] = v
	}
	if _, ok := md["uuid"]; !ok && node.UUID != "" {
		md["uuid"] = node.UUID
	}
	if _, ok := md["name"]; !ok && node.Name != "" {
		md["name"] = node.Name
	}
	if u, ok := md["uuid"].(string); !ok || u == "" {
		return nil, fmt.Errorf("meta_data has no uuid and none was given for the node; cloud-init rejects such a drive (set meta_data.uuid): %w", ErrInvalid)
	}
	files := map[string][]byte{}
	put := func(name string, v any) error {
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("encode %s: %w", name, err)
		}
		for _, ver := range Versions() {
			files[path.Join("openstack", ver, name)] = b
		}
		return nil
	}
	if err := put("meta_data.json", md); err != nil {
		return nil, err
	}
	if d.NetworkData != nil {
		if err := put("network_data.json", d.NetworkData); err != nil {
			return nil, err
		}
	}
	if d.VendorData != nil {
		if err := put("vendor_data2.json", d.VendorData); err != nil {
			return nil, err
		}
	}
	switch u := d.UserData.(type) {
	case nil:
	case string:
		for _, ver := range Versions() {
			files[path.Join("openstack", ver, "user_data")] = []byte(u)
		}
	case map[string]any, []any:
		if err := put("user_data", u); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("user_data must be a string, an object or an array, not %T: %w", u, ErrInvalid)
	}
	return files, nil
}

// sortedPaths returns the file paths in order.
func sortedPaths(files map[string][]byte) []string {
	out := make([]string, 0, len(files))
	for p := range files {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// dirsOf returns every directory that must exist for the files, parents first.
func dirsOf(files map[string][]byte) []string {
	seen := map[string]bool{}
	var out []string
	for _, p := range sortedPaths(files) {
		var chain []string
		for d := path.Dir(p); d != "." && d != "/"; d = path.Dir(d) {
			chain = append([]string{d}, chain...)
		}
		for _, d := range chain {
			if !seen[d] {
				seen[d] = true
				out = append(out, d)
			}
		}
	}
	return out
}
