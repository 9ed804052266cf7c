package api

// Virtual media of a node (Ironic API 1.89 attach/detach, 1.93 list), as Ironic's NodeVmediaController:
//
//	POST   /v1/nodes/{node}/vmedia {"device_type", "image_url", "image_download_source"?}  -> 204
//	DELETE /v1/nodes/{node}/vmedia[?device_types=cdrom,disk] or /vmedia/{device_type}     -> 204
//	GET    /v1/nodes/{node}/vmedia                                                           -> 200, a JSON list
//
// Older versions get 404 before anything else is looked at (Ironic's _lookup). The body is checked against
// Ironic's schema (device_type in disk/cdrom/floppy, image_url a string, image_download_source in
// http/local/swift, nothing else) and the URL scheme against http/https/nfs/cifs/smb before the node is looked
// up, in Ironic's order. The engine does the work under the node's reservation (engine/vmedia.go).

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"

	"github.com/gorilla/mux"

	"github.com/ferric-metal/ferric/conductor/internal/driver"
)

// Microversions of the virtual media endpoints.
const (
	vmediaAttachVersion = 89
	vmediaGetVersion    = 93
)

// vmediaURLSchemes are the image_url schemes Ironic accepts (image_publisher.VMEDIA_SUPPORTED_URL_SCHEMES).
func vmediaURLSchemes() []string { return []string{"http", "https", "nfs", "cifs", "smb"} }

// vmediaRoutes registers the endpoints, the management's inject_nmi (nmi.go), the conductors (conductors.go) and
// the drivers' RAID logical disk properties (drivers_raid.go): the calls gophercloud has that Ferric lacked.
func (s *Server) vmediaRoutes(v *mux.Router) {
	s.conductorsRoutes(v, nowUTC())
	v.HandleFunc("/drivers/{driver}/raid/logical_disk_properties", s.getRAIDDiskProperties).Methods(http.MethodGet)
	v.HandleFunc("/nodes/{node}/management/inject_nmi", s.putInjectNMI).Methods(http.MethodPut)
	v.HandleFunc("/nodes/{node}/vmedia", s.getVMedia).Methods(http.MethodGet)
	v.HandleFunc("/nodes/{node}/vmedia", s.postVMedia).Methods(http.MethodPost)
	v.HandleFunc("/nodes/{node}/vmedia", s.deleteVMedia).Methods(http.MethodDelete)
	v.HandleFunc("/nodes/{node}/vmedia/{device_type}", s.deleteVMedia).Methods(http.MethodDelete)
}

// vmediaGate answers 404 below the endpoint's version, as Ironic does before it looks at the node.
func vmediaGate(r *http.Request, minor int) error {
	if versionOf(r) < minor {
		return notFound("The resource could not be found.")
	}
	return nil
}

// getVMedia lists the node's virtual media devices.
func (s *Server) getVMedia(w http.ResponseWriter, r *http.Request) {
	ident := mux.Vars(r)["node"]
	if err := vmediaGate(r, vmediaGetVersion); err != nil {
		s.writeError(w, r, err)
		return
	}
	media, err := s.eng.VirtualMedia(r.Context(), ident)
	if err != nil {
		s.writeError(w, r, lockedOr404(ident, err))
		return
	}
	writeJSON(w, http.StatusOK, media)
}

// postVMedia attaches an image as a virtual media device.
func (s *Server) postVMedia(w http.ResponseWriter, r *http.Request) {
	ident := mux.Vars(r)["node"]
	if err := vmediaGate(r, vmediaAttachVersion); err != nil {
		s.writeError(w, r, err)
		return
	}
	a, err := readVMediaAttach(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.eng.AttachVirtualMedia(r.Context(), ident, a); err != nil {
		s.writeError(w, r, lockedOr404(ident, err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// readVMediaAttach decodes and checks the attach body with Ironic's schema and messages. image_download_source
// defaults to http, where Ironic's default is local: Ferric does not re-serve virtual media images (see the redfish
// management's AttachVirtualMedia), so a client that leaves the field out (gophercloud omits it when empty) gets
// the medium the BMC fetches itself rather than a refusal; an explicit local is refused, never quietly changed.
func readVMediaAttach(w http.ResponseWriter, r *http.Request) (driver.VMediaAttach, error) {
	body, err := readBody(w, r, maxBody)
	if err != nil {
		return driver.VMediaAttach{}, err
	}
	var doc map[string]any
	if err := json.Unmarshal(body, &doc); err != nil || doc == nil {
		return driver.VMediaAttach{}, badRequest("Invalid JSON in request body: expected an object with device_type and image_url")
	}
	keys := make([]string, 0, len(doc))
	for k := range doc {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if k != "device_type" && k != "image_url" && k != "image_download_source" {
			return driver.VMediaAttach{}, badRequest("Schema error for vmedia: Additional properties are not allowed ('%s' was unexpected)", k)
		}
	}
	enums := map[string][]string{"device_type": driver.VMediaDevices(), "image_url": nil,
		"image_download_source": {driver.DownloadHTTP, driver.DownloadLocal, driver.DownloadSwift}}
	vals := map[string]string{"image_download_source": driver.DownloadHTTP}
	for _, k := range []string{"device_type", "image_url", "image_download_source"} {
		v, ok := doc[k]
		if !ok {
			if k == "image_download_source" {
				continue
			}
			return driver.VMediaAttach{}, badRequest("Schema error for vmedia: '%s' is a required property", k)
		}
		str, ok := v.(string)
		if !ok {
			return driver.VMediaAttach{}, badRequest("Schema error for vmedia: %s is not of type 'string' (field %s)", pyRepr(v), k)
		}
		if enums[k] != nil && !slices.Contains(enums[k], str) {
			return driver.VMediaAttach{}, badRequest("Schema error for vmedia: '%s' is not one of ['%s'] (field %s)",
				str, strings.Join(enums[k], "', '"), k)
		}
		vals[k] = str
	}
	u, err := url.Parse(vals["image_url"])
	scheme := ""
	if err == nil {
		scheme = u.Scheme
	}
	if !slices.Contains(vmediaURLSchemes(), scheme) {
		return driver.VMediaAttach{}, badRequest("Unsupported or missing URL scheme: %s (image_url must be one of %s URLs)",
			scheme, strings.Join(vmediaURLSchemes(), ", "))
	}
	return driver.VMediaAttach{DeviceType: vals["device_type"], ImageURL: vals["image_url"],
		DownloadSource: vals["image_download_source"]}, nil
}

// deleteVMedia detaches the given device types, or every device.
func (s *Server) deleteVMedia(w http.ResponseWriter, r *http.Request) {
	ident := mux.Vars(r)["node"]
	if err := vmediaGate(r, vmediaAttachVersion); err != nil {
		s.writeError(w, r, err)
		return
	}
	types := vmediaDeviceTypes(r)
	if err := driver.CheckVMediaDevices(types); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.eng.DetachVirtualMedia(r.Context(), ident, types); err != nil {
		s.writeError(w, r, lockedOr404(ident, err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// vmediaDeviceTypes reads the device types to detach as Ironic's args.string_list does: the path's
// /vmedia/{device_type}, or device_types given once as a comma-separated list (trimmed, lower-cased,
// de-duplicated) or repeated (taken as they are). None means every device.
func vmediaDeviceTypes(r *http.Request) []string {
	given := r.URL.Query()["device_types"]
	if d, ok := mux.Vars(r)["device_type"]; ok {
		given = []string{d} // Ironic passes the path's element as device_types, through the same string_list
	}
	if len(given) > 1 {
		return given
	}
	var out []string
	for _, one := range given {
		for _, v := range strings.Split(one, ",") {
			v = strings.ToLower(strings.TrimSpace(v))
			if v != "" && !slices.Contains(out, v) {
				out = append(out, v)
			}
		}
	}
	return out
}
