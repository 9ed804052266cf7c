package driver

// Virtual media a client attaches by hand (Ironic API 1.89 POST/DELETE /v1/nodes/{node}/vmedia, 1.93 GET): an
// optional capability of the management interface, as in Ironic (ManagementInterface.attach_virtual_media,
// detach_virtual_media, get_virtual_media). An interface without it is refused with UnsupportedError.

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// Device types a client attaches (Ironic's boot_devices.VMEDIA_DEVICES). Redfish drivers map them to the BMC's
// media types as Ironic's redfish management does: cdrom -> CD (or DVD), floppy -> Floppy, disk -> USBStick.
const (
	VMediaDisk   = "disk"
	VMediaCDROM  = "cdrom"
	VMediaFloppy = "floppy"
)

// Image download sources of an attach (Ironic's image_download_source): http hands image_url to the BMC; local
// makes the conductor download the image and serve it; swift is a Glance/Swift temporary URL.
const (
	DownloadHTTP  = "http"
	DownloadLocal = "local"
	DownloadSwift = "swift"
)

// VMediaDevices lists the device types in Ironic's order (its error messages list them so).
func VMediaDevices() []string { return []string{VMediaDisk, VMediaCDROM, VMediaFloppy} }

// CheckVMediaDevices refuses device types Ironic does not know, with its message.
func CheckVMediaDevices(types []string) error {
	var bad []string
	for _, t := range types {
		if !slices.Contains(VMediaDevices(), t) {
			bad = append(bad, t)
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("Invalid device type(s) %s (valid are %s): %w", strings.Join(bad, ", "),
			strings.Join(VMediaDevices(), ", "), ErrInvalid)
	}
	return nil
}

// VMedia is one virtual media device as GET /v1/nodes/{node}/vmedia lists it (Ironic's redfish get_vmedia):
// the Redfish media types it takes, whether a medium is inserted, and the image URL (null when none).
type VMedia struct {
	MediaTypes []string `json:"media_types"`
	Inserted   bool     `json:"inserted"`
	Image      *string  `json:"image"`
}

// VMediaAttach is one attach request, already validated by the API (device type, URL scheme, source).
type VMediaAttach struct {
	DeviceType     string
	ImageURL       string
	DownloadSource string
}

// VirtualMedia is the optional capability of a management interface to attach, detach and list virtual media.
// The node is reserved by the caller for Attach and Detach; what the interface records in it is saved by the
// caller.
type VirtualMedia interface {
	// VirtualMedia lists the node's virtual media devices.
	VirtualMedia(ctx context.Context, n *store.Node) ([]VMedia, error)
	// AttachVirtualMedia inserts the image into the device of that type, ejecting what it held first.
	AttachVirtualMedia(ctx context.Context, n *store.Node, a VMediaAttach) error
	// DetachVirtualMedia ejects the media of the given types; nil or empty ejects every device.
	DetachVirtualMedia(ctx context.Context, n *store.Node, types []string) error
}
