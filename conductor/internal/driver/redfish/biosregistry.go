package redfish

// The BIOS attribute registry, read as Ironic's redfish bios interface reads it (through sushy's
// get_attribute_registry): the Bios resource names its AttributeRegistry, the service root's Registries
// collection holds the file whose Registry (or Id) is that name, and the file's Location gives the registry's
// URI. Each cached BIOS setting takes its entry's fields; a setting without an entry keeps them null.

import (
	"fmt"
	"strings"

	"github.com/stmcginnis/gofish/schemas"

	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// biosRegistry returns the registry's attributes by name; nil when the Bios names no registry or the BMC does
// not serve it.
func biosRegistry(s *session, bios *schemas.Bios) (map[string]*schemas.Attributes, error) {
	name := bios.AttributeRegistry
	if name == "" {
		return nil, nil
	}
	files, err := s.client.Service.Registries()
	if err != nil {
		return nil, fmt.Errorf("read the Registries collection: %w", err)
	}
	for _, f := range files {
		// The Bios names the registry with or without its version; both are matched, as sushy does.
		if f.Registry != name && f.ID != name && !strings.HasPrefix(f.Registry, name+".") {
			continue
		}
		uri := ""
		for _, l := range f.Location {
			if uri == "" || l.Language == "en" {
				uri = l.URI
			}
		}
		if uri == "" {
			return nil, fmt.Errorf("registry file %s has no Location URI", f.ODataID)
		}
		reg, err := schemas.GetAttributeRegistry(s.client, uri)
		if err != nil {
			return nil, fmt.Errorf("read the attribute registry %s: %w", uri, err)
		}
		out := map[string]*schemas.Attributes{}
		for i := range reg.RegistryEntries.Attributes {
			a := &reg.RegistryEntries.Attributes[i]
			out[a.AttributeName] = a
		}
		return out, nil
	}
	return nil, fmt.Errorf("no registry file for %s in the Registries collection", name)
}

// applyRegistry fills a setting's registry fields from its entry (Ironic's registry_fields): attribute_type,
// allowable_values (each value's ValueName, else its ValueDisplayName), bounds, lengths, read_only,
// reset_required and unique.
func applyRegistry(st *store.BIOSSetting, a *schemas.Attributes) {
	b := func(v bool) *bool { return &v }
	bound := func(v *uint64) *int {
		if v == nil {
			return nil
		}
		i := int(*v)
		return &i
	}
	st.AttributeType = string(a.Type)
	for _, v := range a.Value {
		name := v.ValueName
		if name == "" {
			name = v.ValueDisplayName
		}
		if name != "" {
			st.AllowableValues = append(st.AllowableValues, name)
		}
	}
	st.LowerBound, st.UpperBound = bound(a.LowerBound), bound(a.UpperBound)
	st.MinLength, st.MaxLength = a.MinLength, a.MaxLength
	st.ReadOnly, st.ResetRequired, st.Unique = b(a.ReadOnly), b(a.ResetRequired), b(a.IsSystemUniqueProperty)
}
