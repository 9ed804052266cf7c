package vbmc

// The BIOS attribute registry: what each Bios attribute is (type, allowed values, bounds, read-only, reset
// required), found as Redfish clients find it (sushy, gofish): the Bios names its AttributeRegistry, the service
// root's Registries collection holds a MessageRegistryFile whose Registry is that name, and the file's
// Location[].Uri serves the AttributeRegistry itself. Ironic's redfish bios interface caches these fields per
// setting (GET /v1/nodes/{node}/bios?detail=true).

import (
	"net/http"

	"github.com/gorilla/mux"
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

// registryRoutes registers the Registries collection, the BIOS registry's file, and the registry on p. The
// registry is the same for every VM, so no lock is needed.
func registryRoutes(p *mux.Router, methodsGet []string) {
	file := registriesPath + "/" + biosRegistryID
	uri := file + "/" + biosRegistryID + ".json"
	p.HandleFunc(registriesPath, func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, 200, collection(registriesPath, "Registry files", []string{file}))
	}).Methods(methodsGet...)
	p.HandleFunc(file, func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, 200, map[string]any{"@odata.id": file, "@odata.type": "#MessageRegistryFile.v1_1_0.MessageRegistryFile",
			"Id": biosRegistryID, "Name": "BIOS attribute registry file", "Registry": biosRegistryID,
			"Languages": []string{"en"}, "Location": []any{map[string]string{"Language": "en", "Uri": uri}}})
	}).Methods(methodsGet...)
	p.HandleFunc(uri, func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, 200, map[string]any{"@odata.id": uri, "@odata.type": "#AttributeRegistry.v1_3_0.AttributeRegistry",
			"Id": biosRegistryID, "Name": "BIOS attribute registry", "Language": "en", "OwningEntity": "Ferric",
			"RegistryVersion": "1.0.0", "RegistryEntries": map[string]any{"Attributes": biosRegistryEntries()}})
	}).Methods(methodsGet...)
}
