package vbmc

// The BIOS attribute registry: what each Bios attribute is (type, allowed values, bounds, read-only, reset
// required), found as Redfish clients find it (sushy, gofish): the Bios names its AttributeRegistry, the service
// root's Registries collection holds a MessageRegistryFile whose Registry is that name, and the file's
// Location[].Uri serves the AttributeRegistry itself. Ironic's redfish bios interface caches these fields per
// setting (GET /v1/nodes/{node}/bios?detail=true).

import (
	"net/http"
	"strings"
)

const (
	registriesPath = "/redfish/v1/Registries"
	// biosRegistryID is the Bios resource's AttributeRegistry and the registry file's id.
	biosRegistryID = "BiosAttributeRegistry.v1_0_0"
)

// biosRegistryEntries describes every attribute of biosDefaults (bios.go).
func biosRegistryEntries() []any {
	enum := func(name, display string, values ...string) map[string]any {
		var vs []any
		for _, v := range values {
			vs = append(vs, map[string]string{"ValueName": v, "ValueDisplayName": v})
		}
		return map[string]any{"AttributeName": name, "DisplayName": display, "Type": "Enumeration", "Value": vs,
			"ReadOnly": false, "ResetRequired": true, "IsSystemUniqueProperty": false}
	}
	return []any{
		enum("BootMode", "Boot mode", "Uefi", "Bios"),
		enum("ProcVirtualization", "Processor virtualization", "Enabled", "Disabled"),
		enum("SecureBoot", "Secure boot", "Enabled", "Disabled"),
		// The vCPU count is the VM's configuration, not a setting: read-only, as a BMC reports hardware facts.
		map[string]any{"AttributeName": "NumCores", "DisplayName": "Number of cores", "Type": "Integer",
			"LowerBound": 1, "UpperBound": 64, "ReadOnly": true, "ResetRequired": true, "IsSystemUniqueProperty": false},
	}
}

// registries serves the Registries collection, the BIOS registry's file, and the registry. The registry is the
// same for every VM, so no lock is needed.
func registries(w http.ResponseWriter, path string) {
	file := registriesPath + "/" + biosRegistryID
	uri := file + "/" + biosRegistryID + ".json"
	switch strings.TrimSuffix(path, "/") {
	case registriesPath:
		writeJSON(w, 200, collection(registriesPath, "Registry files", []string{file}))
	case file:
		writeJSON(w, 200, map[string]any{"@odata.id": file, "@odata.type": "#MessageRegistryFile.v1_1_0.MessageRegistryFile",
			"Id": biosRegistryID, "Name": "BIOS attribute registry file", "Registry": biosRegistryID,
			"Languages": []string{"en"}, "Location": []any{map[string]string{"Language": "en", "Uri": uri}}})
	case uri:
		writeJSON(w, 200, map[string]any{"@odata.id": uri, "@odata.type": "#AttributeRegistry.v1_3_0.AttributeRegistry",
			"Id": biosRegistryID, "Name": "BIOS attribute registry", "Language": "en", "OwningEntity": "Ferric",
			"RegistryVersion": "1.0.0", "RegistryEntries": map[string]any{"Attributes": biosRegistryEntries()}})
	default:
		redfishError(w, 404, "no such registry: "+path)
	}
}
