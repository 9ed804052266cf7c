package redfish

// The redfish management's virtual media verbs (driver.VirtualMedia), as Ironic's redfish management does them:
// the device type picks the BMC's virtual media by media type (cdrom -> CD or DVD, floppy -> Floppy, disk ->
// USBStick), an attach ejects what that device held and inserts the image by URL, a detach ejects. The devices
// are found with the boot interface's finder (systemMedia / findMedia in vmedia.go).

import (
	"context"
	"fmt"
	"slices"

	"github.com/stmcginnis/gofish/schemas"

	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// vmediaTypes maps an Ironic device type to the Redfish media types that serve it (first: the one named in errors).
func vmediaTypes(device string) []schemas.VirtualMediaType {
	switch device {
	case driver.VMediaCDROM:
		// Some BMCs (Cisco UCS) offer DVD only; Ironic uses it for a CD too.
		return []schemas.VirtualMediaType{schemas.CDVirtualMediaType, schemas.DVDVirtualMediaType}
	case driver.VMediaFloppy:
		return []schemas.VirtualMediaType{schemas.FloppyVirtualMediaType}
	case driver.VMediaDisk:
		return []schemas.VirtualMediaType{schemas.USBStickVirtualMediaType}
	}
	return nil
}

// VirtualMedia lists the system's virtual media: media types, inserted, image (null when the BMC reports none).
func (d *Driver) VirtualMedia(ctx context.Context, n *store.Node) ([]driver.VMedia, error) {
	s, err := d.connect(ctx, n)
	if err != nil {
		return nil, err
	}
	defer s.close()
	media, err := systemMedia(s)
	if err != nil {
		return nil, err
	}
	if len(media) == 0 {
		// Ironic's get_vmedia: InvalidParameterValue when the BMC has none.
		return nil, fmt.Errorf("No suitable virtual media device found on Redfish BMC %s: %w", s.info.Address, driver.ErrInvalid)
	}
	out := make([]driver.VMedia, 0, len(media))
	for _, m := range media {
		// MediaTypes is [] rather than null when the BMC lists none, and a BMC that omits Inserted reads as not inserted.
		v := driver.VMedia{MediaTypes: []string{}, Inserted: m.Inserted != nil && *m.Inserted}
		for _, t := range m.MediaTypes {
			v.MediaTypes = append(v.MediaTypes, string(t))
		}
		if m.Image != "" {
			image := m.Image
			v.Image = &image
		}
		out = append(out, v)
	}
	return out, nil
}

// AttachVirtualMedia inserts a.ImageURL into the device of a.DeviceType. The BMC downloads the URL itself
// (image_download_source http). Ironic's local (the conductor downloads and re-serves) would go through the
// conductor's image cache, which keys, verifies and serves only images with a checksum (the deploy's); an attach
// has none, so local, and swift (no Swift here), are refused before the BMC is touched.
func (d *Driver) AttachVirtualMedia(ctx context.Context, n *store.Node, a driver.VMediaAttach) error {
	types := vmediaTypes(a.DeviceType)
	// An unknown device type gets the shared check's error (driver.ErrInvalid naming the valid types), as a detach does.
	if types == nil {
		return driver.CheckVMediaDevices([]string{a.DeviceType})
	}
	if a.DownloadSource != driver.DownloadHTTP {
		return fmt.Errorf("image_download_source %s is not supported for virtual media: the conductor's image cache "+
			"serves only checksum-verified deploy images, and a virtual media attach has no checksum; pass "+
			"image_download_source http so the BMC downloads image_url itself: %w", a.DownloadSource, driver.ErrInvalid)
	}
	s, err := d.connect(ctx, n)
	if err != nil {
		return err
	}
	defer s.close()
	m, err := findMedia(s, types...)
	if err != nil {
		return err
	}
	// Eject first, as Ironic does: many BMCs refuse an insert into an occupied slot, and a stale report of an
	// inserted medium must not stand for the new one.
	if m.Inserted != nil && *m.Inserted {
		if _, err := m.EjectMedia(); err != nil {
			return bmcError(s.info, "eject the "+a.DeviceType+" medium", err)
		}
	}
	// Write-protected, as Ironic inserts media (sushy's insert_media default).
	yes := true
	if _, err := m.InsertMedia(&schemas.VirtualMediaInsertMediaParameters{Image: a.ImageURL, Inserted: &yes,
		WriteProtected: &yes}); err != nil {
		return bmcError(s.info, "insert the image into the "+a.DeviceType+" device", err)
	}
	return nil
}

// DetachVirtualMedia ejects the inserted media of the given device types (all when none is given). A device
// already empty, or a type the BMC lacks, is not an error (Ironic ejects what it finds).
func (d *Driver) DetachVirtualMedia(ctx context.Context, n *store.Node, devices []string) error {
	if err := driver.CheckVMediaDevices(devices); err != nil {
		return err
	}
	var want []schemas.VirtualMediaType
	// The device names were checked above; an empty want (no device given) matches every inserted medium.
	for _, dev := range devices {
		want = append(want, vmediaTypes(dev)...)
	}
	s, err := d.connect(ctx, n)
	if err != nil {
		return err
	}
	defer s.close()
	media, err := systemMedia(s)
	if err != nil {
		return err
	}
	for _, m := range media {
		if m.Inserted == nil || !*m.Inserted {
			continue
		}
		if len(want) > 0 && !slices.ContainsFunc(m.MediaTypes, func(t schemas.VirtualMediaType) bool {
			return slices.Contains(want, t)
		}) {
			continue
		}
		if _, err := m.EjectMedia(); err != nil {
			// The first eject the BMC refuses ends the detach: media ejected before it stay ejected.
			return bmcError(s.info, "eject virtual media "+m.ID, err)
		}
	}
	return nil
}
