package api

// GET /v1/drivers/{driver}/raid/logical_disk_properties (Ironic API 1.12; older versions 406, as Ironic's
// NotAcceptable): the keys a logical disk of target_raid_config takes, each with a description, for a hardware
// type whose default raid interface can build RAID. One that cannot (no-raid) is Ironic's
// UnsupportedDriverExtension, answered 404 here as Ironic does for this call.

import (
	"net/http"

	"github.com/gorilla/mux"
)

// raidPropertiesVersion is the microversion of the RAID logical disk properties.
const raidPropertiesVersion = 12

// raidDiskProperties describes the logical disk keys of Ironic's RAID configuration schema (the keys Ferric's
// target_raid_config check accepts), in Ferric's words.
func raidDiskProperties() map[string]string {
	return map[string]string{
		"raid_level":               "The RAID level: JBOD, 0, 1, 2, 5, 6, 1+0, 5+0 or 6+0. Required.",
		"size_gb":                  "The size in GiB (an integer), or MAX for the rest of the space. Required.",
		"volume_name":              "The volume's name; generated when omitted. Optional.",
		"is_root_volume":           "Whether the deploy installs onto this logical disk (default false). Optional.",
		"share_physical_disks":     "Whether other logical disks may use the same physical disks (default false). Optional.",
		"disk_type":                "The physical disk kind to prefer: hdd or ssd. Optional.",
		"interface_type":           "The physical disk interface to prefer: sata, scsi or sas. Optional.",
		"number_of_physical_disks": "How many physical disks to use; the RAID level's minimum when omitted. Optional.",
		"controller":               "The RAID controller to build on; the driver picks one when omitted. Optional.",
		"physical_disks":           "The physical disks to build on; the driver picks them when omitted. Optional.",
	}
}

// getRAIDDiskProperties answers the properties of the driver's default raid interface.
func (s *Server) getRAIDDiskProperties(w http.ResponseWriter, r *http.Request) {
	if versionOf(r) < raidPropertiesVersion {
		s.writeError(w, r, notAcceptable())
		return
	}
	name := mux.Vars(r)["driver"]
	h, err := s.eng.Registry().Hardware(name)
	if err != nil {
		s.writeError(w, r, notFound("Could not find the following driver(s) or hardware type(s): %s.", name))
		return
	}
	if raid := h.Defaults["raid"]; raid == "" || raid == "no-raid" {
		s.writeError(w, r, notFound("Driver %s does not support raid (disabled or not implemented).", name))
		return
	}
	writeJSON(w, http.StatusOK, raidDiskProperties())
}
