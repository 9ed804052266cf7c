package driver

// The fake management's virtual media (vmedia.go). Ironic's fake management has none (its calls fail with
// UnsupportedDriverExtension); Ferric's fake keeps what was attached in the node itself (driver_internal_info
// "fake_vmedia": device type -> {"image_url", "image_download_source", "fake": true}), so a client test can read
// back what it wrote and the state survives a conductor restart. Nothing is downloaded or served: the record says
// it is fake, and GET answers with the Redfish media types a redfish node would show.

import (
	"context"

	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// fakeVMediaKey is where the fake keeps its attachments in driver_internal_info.
const fakeVMediaKey = "fake_vmedia"

// fakeMediaTypes are the Redfish media types the fake's three devices report, in Ironic's device order.
func fakeMediaTypes(device string) []string {
	switch device {
	case VMediaCDROM:
		return []string{"CD", "DVD"}
	case VMediaFloppy:
		return []string{"Floppy"}
	}
	return []string{"USBStick"}
}

// fakeHeld returns the node's attachment record, created when create is set.
func fakeHeld(n *store.Node, create bool) map[string]any {
	held, _ := n.DriverInternalInfo[fakeVMediaKey].(map[string]any)
	if held == nil && create {
		if n.DriverInternalInfo == nil {
			n.DriverInternalInfo = map[string]any{}
		}
		held = map[string]any{}
		n.DriverInternalInfo[fakeVMediaKey] = held
	}
	return held
}

// VirtualMedia lists the fake's disk, cdrom and floppy devices with what is attached to each.
func (f *FakeManagement) VirtualMedia(_ context.Context, n *store.Node) ([]VMedia, error) {
	held := fakeHeld(n, false)
	out := make([]VMedia, 0, len(VMediaDevices()))
	for _, d := range VMediaDevices() {
		m := VMedia{MediaTypes: fakeMediaTypes(d)}
		if rec, ok := held[d].(map[string]any); ok {
			url, _ := rec["image_url"].(string)
			m.Inserted, m.Image = true, &url
		}
		out = append(out, m)
	}
	return out, nil
}

// AttachVirtualMedia records the attachment (replacing the device's previous one, as an insert ejects first).
func (f *FakeManagement) AttachVirtualMedia(_ context.Context, n *store.Node, a VMediaAttach) error {
	if err := CheckVMediaDevices([]string{a.DeviceType}); err != nil {
		return err
	}
	fakeHeld(n, true)[a.DeviceType] = map[string]any{"image_url": a.ImageURL, "image_download_source": a.DownloadSource,
		"fake": true}
	return nil
}

// DetachVirtualMedia drops the records of the given device types (all when none is given); detaching an empty
// device is not an error, as ejecting an empty Redfish slot is not.
func (f *FakeManagement) DetachVirtualMedia(_ context.Context, n *store.Node, types []string) error {
	if err := CheckVMediaDevices(types); err != nil {
		return err
	}
	held := fakeHeld(n, false)
	if held == nil {
		return nil
	}
	if len(types) == 0 {
		types = VMediaDevices()
	}
	for _, t := range types {
		delete(held, t)
	}
	if len(held) == 0 {
		delete(n.DriverInternalInfo, fakeVMediaKey)
	}
	return nil
}
